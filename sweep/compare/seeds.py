"""How many confirmation seeds each arm trains: a fixed count, or (with `confirm_seeds: {min,
max}`) one more seed for every arm of a model while a comparison of that model is undecided.

A pure function of the confirmation results that have ended, so the searcher (deciding the next
trial), the end of a sweep (counting what a complete sweep holds) and a resumed driver all agree.
Each model's count rises one look at a time: at look n its comparisons rest on the first n
confirmation seeds of its arms, judged with the whole report's family (models not yet confirmed
count as p = 1 in Holm's adjustment, which can only make a verdict more cautious than the final
report's) at the per-look alpha of stats.per_look_alpha.
"""

from __future__ import annotations

from ..spec import Arm, SweepSpec
from .stats import Comparison, Sample, Verdict, compare_all

# arm key -> {seed: final test_acc, or None when the confirmation run failed or diverged}
Ended = dict[str, dict[int, float | None]]


def sample(values: dict[int, float | None], what: str = "confirmation run") -> Sample:
    """The usable values of one side; a run that ended without a value blocks the comparison."""
    lost = sorted(seed for seed, value in values.items() if value is None)
    blocked = f"a {what} failed (seed{'s' if len(lost) > 1 else ''} {', '.join(map(str, lost))})" if lost else None
    return Sample({seed: value for seed, value in values.items() if value is not None}, blocked)


def family(spec: SweepSpec, samples: dict[str, Sample]) -> list[tuple[str, str, str, Sample, Sample]]:
    """Every comparison of the report: per model, the reference rule against each other rule
    (an arm without a sample compares as an empty one)."""
    against = spec.report.against
    if against not in spec.optimizers:
        return []
    empty = Sample({})
    return [
        (model, rule, against, samples.get(Arm(model, against).key, empty), samples.get(Arm(model, rule).key, empty))
        for model in spec.models
        for rule in spec.optimizers
        if rule != against
    ]


def judge(spec: SweepSpec, samples: dict[str, Sample]) -> list[Comparison]:
    """The verdicts of the report's comparisons on these samples."""
    return compare_all(family(spec, samples), spec.report.margin, spec.looks)


def wanted(spec: SweepSpec, chosen: set[str], ended: Ended) -> dict[str, int]:
    """Per arm key, the confirmation seeds it should train now: 0 for an arm whose search chose
    nothing; else `min`, raised a look at a time for every chosen arm of a model while all of
    them have ended their seeds and some comparison of the model is undecided yet decidable."""
    low, high = spec.confirm_range
    want = {arm.key: (low if arm.key in chosen else 0) for arm in spec.arms()}
    if low == high:
        return want
    seeds = spec.confirmation_seeds()
    for model in spec.models:
        arms = [arm.key for arm in spec.arms() if arm.model == model and arm.key in chosen]
        n = low
        while n < high and all(len(ended.get(key, {})) >= n for key in arms):
            at_look = {key: sample(values) for key, values in ended.items()}  # other models: what has ended
            for key in arms:  # this model's arms at look n: their first n seeds only
                at_look[key] = sample({s: ended[key][s] for s in seeds[:n] if s in ended[key]})
            mine = [c for c in judge(spec, at_look) if c.model == model]
            # another seed helps only an undecided comparison that has a test (a failed run or
            # a missing arm stays undecided however many seeds follow)
            if not any(c.verdict == Verdict.UNDECIDED and c.test is not None for c in mine):
                break
            n += 1
        for key in arms:
            want[key] = n
    return want
