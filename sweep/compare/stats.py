"""The statistics and verdicts of a report: a reference rule (normally SAM-GNS) against each other rule on one model,
from the final test accuracies (percent) of their runs, keyed by training seed.

Paired by seed. Every rule trains the same seeds, and the seed fixes the initial weights and the batch order, so two
runs of one seed share much of their luck: the seed is a block. The t test on the per-seed differences removes that
shared part; Welch's test on the two samples is the fallback when fewer than two seeds are common to both sides.

Holm over the family. A report makes one comparison per (model, rule); at a fixed alpha each, some would come out
"better" or "worse" by chance alone. Holm's step-down adjustment keeps the chance of any false better/worse in the
whole family at or under alpha, whatever the dependence between comparisons (they share the reference's runs), and it
rejects everything Bonferroni rejects, often more. An "equivalent" verdict rests on its comparison's own interval.

Alpha split over looks. An adaptive sweep adds seeds and looks again until the verdicts settle; testing each look at
the full alpha would make a false verdict likelier with every look (optional stopping). Each look is tested at alpha
divided by the planned looks: by the union bound the error rate stays at or under alpha however the looks stop. It is
cruder than group-sequential boundaries, which need the looks' sizes fixed in advance, and costs little at the few
looks a sweep makes.

Pure standard library, numpy and scipy: the searcher, the driver and the report all import it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05  # family-wise error rate of one report
NO_SPREAD = "no spread between seeds: no interval"
# Spread below this (relative to the accuracies' size) is float rounding: 91.3 - 90.3 and 92.3 - 91.3 differ in the
# last bits, and a t test on that would report p = 0 and an interval of zero width, a certainty no data gives.
_TIE = 1e-9


class Verdict:
    BETTER = "better"
    WORSE = "worse"
    EQUIVALENT = "equivalent"
    UNDECIDED = "undecided"


def label(verdict: str, against: str) -> str:
    """The verdict as the report prints it: better and worse name the reference rule they describe."""
    if verdict in (Verdict.BETTER, Verdict.WORSE):
        return f"{against} {verdict}"
    return verdict


class Test:
    PAIRED = "paired"
    WELCH = "welch"


@dataclass(frozen=True)
class Sample:
    values: dict[int, float]  # seed -> final test accuracy (%) of the run trained with that seed
    blocked: str | None = None  # why this side cannot be compared (e.g. a confirmation run failed); None if usable


@dataclass(frozen=True)
class Comparison:
    model: str
    rule: str  # the rule compared with
    against: str  # the reference rule; diff = against minus rule
    test: str | None  # Test.PAIRED, Test.WELCH, or None when no test could be made
    n: int  # pairs (paired) or runs on both sides together (welch); 0 when no test was chosen
    diff: float | None  # paired: mean of per-seed differences; welch: difference of means
    ci_low: float | None  # interval of diff at `level`
    ci_high: float | None
    p: float | None  # two-sided, H0: diff = 0
    p_holm: float | None  # Holm-adjusted over the family passed to compare_all
    verdict: str
    reason: str  # what the verdict rests on, or why there is none
    level: float  # the interval's confidence level

    def to_json(self) -> dict:
        return asdict(self)  # every field is already a str, int, float or None


def _num(x) -> float | None:
    """scipy answers nan (and sometimes inf) where it has no answer: the report shows nothing there, not 'nan'."""
    x = float(x)
    return x if math.isfinite(x) else None


def _flat(x: np.ndarray, scale: float) -> bool:
    return float(np.ptp(x)) <= _TIE * max(1.0, scale)


def compare(
    against: Sample, other: Sample, level: float
) -> tuple[str | None, int, float | None, float | None, float | None, float | None, str]:
    """(test, n, diff, ci_low, ci_high, p, reason) for one pair of samples; no verdict, no multiplicity.

    Paired t on the common seeds when there are at least two, else Welch when each side has two runs, else no test.
    No spread (equal differences, or both Welch sides constant) gives no interval and no p, never one of zero width:
    the test and n are still given, since the data say what was tried.
    """
    blocked = against.blocked or other.blocked
    if blocked:
        return None, 0, None, None, None, None, blocked
    a_all = np.array(list(against.values.values()), dtype=float)
    b_all = np.array(list(other.values.values()), dtype=float)
    scale = float(np.max(np.abs(np.concatenate([a_all, b_all])), initial=0.0))
    common = sorted(against.values.keys() & other.values.keys())
    if len(common) >= 2:
        a = np.array([against.values[seed] for seed in common], dtype=float)
        b = np.array([other.values[seed] for seed in common], dtype=float)
        diff = _num(np.mean(a - b))
        if _flat(a - b, scale):
            return Test.PAIRED, len(common), diff, None, None, None, NO_SPREAD
        result = stats.ttest_rel(a, b)
        ci = result.confidence_interval(confidence_level=level)
        return Test.PAIRED, len(common), diff, _num(ci.low), _num(ci.high), _num(result.pvalue), f"paired t, {len(common)} pairs"
    if len(a_all) >= 2 and len(b_all) >= 2:
        n = len(a_all) + len(b_all)
        diff = _num(np.mean(a_all) - np.mean(b_all))
        if _flat(a_all, scale) and _flat(b_all, scale):
            return Test.WELCH, n, diff, None, None, None, NO_SPREAD
        with warnings.catch_warnings():
            # one constant side (every run at the same accuracy) is exact data, not the cancellation scipy warns of
            warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
            result = stats.ttest_ind(a_all, b_all, equal_var=False)
            ci = result.confidence_interval(confidence_level=level)
        reason = f"Welch t, {len(a_all)} and {len(b_all)} runs (under 2 common seeds)"
        return Test.WELCH, n, diff, _num(ci.low), _num(ci.high), _num(result.pvalue), reason
    if len(common) == 1:
        seed = common[0]
        return None, 0, _num(against.values[seed] - other.values[seed]), None, None, None, "too few seeds (1 pair)"
    diff = _num(np.mean(a_all) - np.mean(b_all)) if len(a_all) and len(b_all) else None
    return None, 0, diff, None, None, None, f"too few seeds ({len(a_all)} and {len(b_all)} runs)"


def holm(pvalues: list[float | None], m: int | None = None) -> list[float | None]:
    """Holm's step-down adjustment, in the input's order: the i-th smallest of m p-values becomes
    max over j <= i of min(1, (m - j + 1) p_(j)). A None (no test) stays None and does not count in m,
    unless `m` is given: the family's size, its untested members counted as p = 1 (which only makes
    the others' adjustment more cautious)."""
    ranked = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(ranked) if m is None else max(m, len(ranked))
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for j, (p, i) in enumerate(ranked):  # j counts from 0, so (m - j) is the step-down factor m - j + 1 of the formula
        running = max(running, min(1.0, (m - j) * p))
        adjusted[i] = running
    return adjusted


def decide(
    diff: float | None, ci_low: float | None, ci_high: float | None, p_holm: float | None, margin: float, alpha: float
) -> str:
    """Significance first: a difference both significant and small is better or worse, and diff shows how small.
    Equivalent when the interval lies inside +-margin; undecided otherwise, including whenever there is no interval."""
    if p_holm is not None and diff is not None and p_holm < alpha:
        if diff > 0:
            return Verdict.BETTER
        if diff < 0:
            return Verdict.WORSE
    if ci_low is not None and ci_high is not None and -margin <= ci_low and ci_high <= margin:
        return Verdict.EQUIVALENT
    return Verdict.UNDECIDED


def per_look_alpha(alpha: float, looks: int) -> float:
    """Alpha split evenly over the planned looks (Bonferroni over looks): whichever look the sweep stops at, the chance
    that any look gave a false verdict is at most the sum, alpha. looks = 1 for a fixed number of seeds."""
    if looks < 1:
        raise ValueError(f"looks must be at least 1, got {looks}")
    return alpha / looks


def compare_all(
    items: list[tuple[str, str, str, Sample, Sample]], margin: float, looks: int = 1, alpha: float = ALPHA
) -> list[Comparison]:
    """One Comparison per (model, rule, against, against_sample, rule_sample), in the items' order; the p-values are
    Holm-adjusted together, at the alpha of one look. The family is every item, tested or not: a comparison
    that has no test yet (an arm still to confirm) counts as p = 1, so a verdict reached early is one the
    complete report keeps."""
    look_alpha = per_look_alpha(alpha, looks)
    level = 1 - look_alpha
    tests = [compare(against_sample, rule_sample, level) for _, _, _, against_sample, rule_sample in items]
    adjusted = holm([p for *_, p, _ in tests], m=len(items))
    comparisons = []
    for (model, rule, against, _, _), (test, n, diff, low, high, p, reason), p_holm in zip(items, tests, adjusted):
        verdict = decide(diff, low, high, p_holm, margin, look_alpha)
        comparisons.append(Comparison(model, rule, against, test, n, diff, low, high, p, p_holm, verdict, reason, level))
    return comparisons


def _g(x: float) -> str:
    return f"{x:.6g}"


def procedure(looks: int, comparisons: int, margin: float, alpha: float = ALPHA) -> str:
    """The procedure in a sentence or two, for the report's reader."""
    look_alpha = per_look_alpha(alpha, looks)
    count = f"{comparisons} comparison{'' if comparisons == 1 else 's'}"
    equivalent = f"'equivalent' = interval inside ±{_g(margin)} points."
    if looks == 1:
        return (
            f"{count}, Holm-adjusted together at family-wise alpha {_g(alpha)}; {_g(100 * (1 - alpha))}% intervals; {equivalent}"
        )
    return (
        f"{count}, Holm-adjusted together at family-wise alpha {_g(alpha)}; {equivalent} "
        f"Seeds were added adaptively over up to {looks} looks; alpha is split evenly over the looks "
        f"({_g(look_alpha)} per look, {_g(100 * (1 - look_alpha))}% intervals), "
        f"which keeps the error rate at or under {_g(alpha)} under optional stopping."
    )
