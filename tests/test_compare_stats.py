"""The report's statistics: the tests and intervals equal scipy's and a hand computation, Holm equals an independent
adjustment, the verdicts follow their rules, and the error rate holds under optional stopping (by simulation)."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from sweep.compare.stats import (
    ALPHA,
    NO_SPREAD,
    Sample,
    Test,
    Verdict,
    compare,
    compare_all,
    decide,
    holm,
    label,
    per_look_alpha,
    procedure,
)

MARGIN = 0.5
close = lambda x: pytest.approx(x, rel=1e-9, abs=1e-12)


def sample(values, seeds=None) -> Sample:
    return Sample(dict(zip(seeds if seeds is not None else range(len(values)), (float(v) for v in values))))


def holm_by_definition(pvalues):
    """Holm from its definition, not from compare.stats's loop: each p's adjusted value is the largest
    min(1, (m - rank) p_(rank)) over the p-values at or below it (ranks from 0), None left out of m."""
    present = sorted(p for p in pvalues if p is not None)
    m = len(present)
    return [None if p is None else max(min(1.0, (m - r) * q) for r, q in enumerate(present) if q <= p) for p in pvalues]


def hand_paired(a, b, level):
    d = np.asarray(a) - np.asarray(b)
    n = len(d)
    se = d.std(ddof=1) / math.sqrt(n)
    t = d.mean() / se
    half = stats.t.ppf(0.5 + level / 2, n - 1) * se
    return d.mean(), d.mean() - half, d.mean() + half, 2 * stats.t.sf(abs(t), n - 1)


def hand_welch(a, b, level):
    a, b = np.asarray(a), np.asarray(b)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    diff = a.mean() - b.mean()
    half = stats.t.ppf(0.5 + level / 2, df) * se
    return diff, diff - half, diff + half, 2 * stats.t.sf(abs(diff / se), df)


def test_paired_equals_scipy_and_a_hand_computation_and_holm_covers_the_family():
    rng = np.random.default_rng(0)
    base = 90 + rng.normal(0, 1, 6)
    against = base + rng.normal(0, 0.3, 6)
    rules = {
        rule: base - shift + rng.normal(0, 0.3, 6) for rule, shift in (("sgd", 1.0), ("ugd", 0.4), ("sam", 0.1), ("asam", -0.6))
    }
    items = [("resnet18", rule, "sam_gns", sample(against), sample(values)) for rule, values in rules.items()]
    results = compare_all(items, MARGIN)
    pvalues = []
    for result, values in zip(results, rules.values()):
        assert (result.test, result.n, result.level, result.reason) == (Test.PAIRED, 6, 0.95, "paired t, 6 pairs")
        scipy_result = stats.ttest_rel(against, values)
        scipy_ci = scipy_result.confidence_interval(confidence_level=0.95)
        diff, low, high, p = hand_paired(against, values, 0.95)
        assert (result.diff, result.ci_low, result.ci_high, result.p) == (close(diff), close(low), close(high), close(p))
        assert (result.ci_low, result.ci_high, result.p) == (
            close(scipy_ci.low),
            close(scipy_ci.high),
            close(scipy_result.pvalue),
        )
        pvalues.append(scipy_result.pvalue)
    assert len({round(-math.log10(p)) for p in pvalues}) > 1  # the family's p-values differ enough for Holm to matter
    assert [r.p_holm for r in results] == [close(p) for p in holm_by_definition(pvalues)]
    assert json.loads(json.dumps(results[0].to_json())) == results[0].to_json()
    assert results[0].to_json()["rule"] == "sgd"


def test_welch_when_the_seeds_differ_equals_scipy_and_welch_satterthwaite():
    a, b = [91.2, 90.4, 92.0, 90.9], [89.8, 90.1, 88.7]
    test, n, diff, low, high, p, reason = compare(sample(a, [0, 1, 2, 3]), sample(b, [10, 11, 12]), 0.99)
    assert (test, n) == (Test.WELCH, 7)
    assert reason.startswith("Welch t")
    scipy_result = stats.ttest_ind(a, b, equal_var=False)
    scipy_ci = scipy_result.confidence_interval(confidence_level=0.99)
    assert (low, high, p) == (close(scipy_ci.low), close(scipy_ci.high), close(scipy_result.pvalue))
    assert (diff, low, high, p) == tuple(close(x) for x in hand_welch(a, b, 0.99))


def test_partly_overlapping_seeds_are_paired_on_the_common_seeds():
    against = sample([90.0, 91.5, 89.2, 90.7, 92.1, 90.3], seeds=[0, 1, 2, 3, 4, 5])
    other = sample([89.1, 89.9, 90.2, 88.0, 91.0, 89.5, 90.0], seeds=[3, 4, 5, 6, 7, 8, 9])
    test, n, diff, low, high, p, reason = compare(against, other, 0.95)
    assert (test, n, reason) == (Test.PAIRED, 3, "paired t, 3 pairs")
    common_a, common_b = [90.7, 92.1, 90.3], [89.1, 89.9, 90.2]
    assert (diff, low, high, p) == tuple(close(x) for x in hand_paired(common_a, common_b, 0.95))
    # one common seed is too few to pair: the two samples are compared whole, by Welch
    assert compare(sample([90.0, 91.0], [0, 1]), sample([89.0, 89.5], [1, 2]), 0.95)[:2] == (Test.WELCH, 4)


def test_no_spread_gives_no_interval_and_no_p_never_a_zero_width_one():
    against = [90.1, 91.3, 92.7, 89.9]
    exact = compare_all([("m", "sgd", "sam_gns", sample(against), sample([x - 1.0 for x in against]))], MARGIN)[0]
    # differences of 0.7 that differ in the last bits only: scipy alone would say p = 3e-43 on a zero-width interval
    rounded = compare(sample([93.13, 94.13, 91.07, 92.29]), sample([92.43, 93.43, 90.37, 91.59]), 0.95)
    assert np.ptp(np.array([93.13, 94.13, 91.07, 92.29]) - [92.43, 93.43, 90.37, 91.59]) > 0
    welch = compare(sample([90.0, 90.0], [0, 1]), sample([89.0, 89.0], [2, 3]), 0.95)
    assert (exact.test, exact.n, exact.diff) == (Test.PAIRED, 4, close(1.0))
    assert (exact.ci_low, exact.ci_high, exact.p, exact.p_holm, exact.verdict) == (None, None, None, None, Verdict.UNDECIDED)
    assert exact.reason == NO_SPREAD
    assert rounded[3:] == (None, None, None, NO_SPREAD)
    assert welch == (Test.WELCH, 4, 1.0, None, None, None, NO_SPREAD)
    # one constant side is not "no spread": the other side's spread gives Welch its interval
    assert None not in compare(sample([90.0, 90.0], [0, 1]), sample([89.0, 89.6], [2, 3]), 0.95)[3:6]


def test_too_few_seeds_and_blocked_samples_give_no_test():
    one_pair = compare_all([("m", "sgd", "sam_gns", sample([90.0]), sample([88.5]))], MARGIN)[0]
    assert (one_pair.test, one_pair.n, one_pair.diff, one_pair.p, one_pair.verdict) == (None, 0, 1.5, None, Verdict.UNDECIDED)
    assert one_pair.reason == "too few seeds (1 pair)"
    assert compare(sample([90.0], [0]), sample([89.0, 88.0], [1, 2]), 0.95) == (
        None,
        0,
        1.5,
        None,
        None,
        None,
        "too few seeds (1 and 2 runs)",
    )
    assert compare(sample([]), sample([89.0, 88.0]), 0.95)[2] is None

    good = (sample([90.0, 91.0, 92.5]), sample([89.0, 89.6, 91.0]))
    blocked = Sample({0: 90.0, 1: 91.0, 2: 92.5}, blocked="a confirmation run failed (seed 7)")
    results = compare_all([("m", "sgd", "sam_gns", *good), ("m", "sam", "sam_gns", blocked, good[1])], MARGIN)
    assert (results[1].test, results[1].p, results[1].p_holm) == (None, None, None)
    assert (results[1].verdict, results[1].reason) == (Verdict.UNDECIDED, "a confirmation run failed (seed 7)")
    # the blocked comparison still belongs to the family, as p = 1: Holm's m is 2
    assert results[0].p_holm == close(min(1.0, 2 * results[0].p))
    assert holm([0.01, None]) == [0.01, None] and holm([0.01, None], m=2) == [0.02, None]


def test_decide():
    assert decide(1.2, 0.6, 1.8, 0.001, MARGIN, ALPHA) == Verdict.BETTER
    assert decide(-1.2, -1.8, -0.6, 0.001, MARGIN, ALPHA) == Verdict.WORSE
    assert decide(0.1, -0.3, 0.4, 0.40, MARGIN, ALPHA) == Verdict.EQUIVALENT
    assert decide(0.4, -0.3, 1.1, 0.20, MARGIN, ALPHA) == Verdict.UNDECIDED
    assert decide(0.2, 0.1, 0.3, 0.001, MARGIN, ALPHA) == Verdict.BETTER  # significant and small: significance wins
    assert decide(1.0, 0.01, 1.99, ALPHA, MARGIN, ALPHA) == Verdict.UNDECIDED  # p must be below alpha
    assert decide(0.1, None, None, None, MARGIN, ALPHA) == Verdict.UNDECIDED
    assert (label(Verdict.BETTER, "sam_gns"), label(Verdict.WORSE, "sam_gns")) == ("sam_gns better", "sam_gns worse")
    assert label(Verdict.EQUIVALENT, "sam_gns") == Verdict.EQUIVALENT


def test_holm_skips_none_is_monotone_and_capped():
    assert holm([0.01, 0.04, 0.03, 0.005]) == [close(0.03), close(0.06), close(0.06), close(0.02)]  # a worked example
    assert holm([0.01, None, 0.04, None]) == [close(0.02), None, close(0.04), None]  # m = 2, not 4
    assert holm([None, None]) == [None, None]
    assert holm([]) == []
    rng = np.random.default_rng(3)
    for _ in range(50):
        pvalues = [None if rng.random() < 0.2 else float(rng.random() ** 3) for _ in range(7)]
        adjusted = holm(pvalues)
        assert adjusted == [None if p is None else close(p) for p in holm_by_definition(pvalues)]
        ranked = sorted((p, a) for p, a in zip(pvalues, adjusted) if p is not None)
        assert all(a1 <= a2 for (_, a1), (_, a2) in zip(ranked, ranked[1:]))
        assert all(p <= a <= 1.0 for p, a in ranked)


def test_per_look_alpha_and_procedure():
    assert per_look_alpha(ALPHA, 8) == 0.00625
    with pytest.raises(ValueError):
        per_look_alpha(ALPHA, 0)
    fixed = procedure(1, 5, MARGIN)
    assert "5 comparisons" in fixed and "95% intervals" in fixed and "±0.5" in fixed
    adaptive = procedure(8, 5, MARGIN)
    assert "5 comparisons" in adaptive and "8 looks" in adaptive and "0.00625 per look" in adaptive and "99.375%" in adaptive
    assert "1 comparison," in procedure(1, 1, MARGIN)
    looked = compare_all([("m", "sgd", "sam_gns", sample([90.0, 91.0, 92.5]), sample([89.0, 89.6, 91.0]))], MARGIN, looks=8)
    assert looked[0].level == 1 - 0.00625


# Optional stopping, simulated as an adaptive-seed sweep runs: MIN seeds, a look, then one seed more per look until no
# verdict of the family is undecided or MAX seeds are in. compare_all costs about a millisecond (scipy's t test), too
# slow for thousands of replications on a small machine, so every replication's look is computed at once with scipy's
# vectorised t test, and the first CHECKED replications are run through compare_all too, verdict for verdict.
MIN, MAX, CHECKED = 3, 10, 10
LOOKS = MAX - MIN + 1


def family_verdicts(against: np.ndarray, rules: np.ndarray, looks: int) -> np.ndarray:
    """compare_all's verdicts for every replication at once: against (reps, n), rules (reps, k, n) -> (reps, k)."""
    alpha = ALPHA / looks
    result = stats.ttest_rel(against[:, None, :], rules, axis=-1)
    ci = result.confidence_interval(confidence_level=1 - alpha)
    k = rules.shape[1]
    order = np.argsort(result.pvalue, axis=1)
    stepped = np.maximum.accumulate(np.minimum(1.0, np.take_along_axis(result.pvalue, order, 1) * (k - np.arange(k))), axis=1)
    p_holm = np.empty_like(stepped)
    np.put_along_axis(p_holm, order, stepped, 1)
    diff = (against[:, None, :] - rules).mean(axis=-1)
    significant = p_holm < alpha
    verdicts = np.full(diff.shape, Verdict.UNDECIDED, dtype=object)
    verdicts[(ci.low >= -MARGIN) & (ci.high <= MARGIN)] = Verdict.EQUIVALENT
    verdicts[significant & (diff > 0)] = Verdict.BETTER
    verdicts[significant & (diff < 0)] = Verdict.WORSE
    return verdicts


def adaptive_sweep(seed: int, reps: int, k: int, effect: float, noise: float, looks: int) -> tuple[np.ndarray, np.ndarray]:
    """reps adaptive sweeps comparing against with k rules: (the final verdicts (reps, k) where each sweep stopped, and
    per replication whether any look at all, stopped or not, said better or worse). Each seed shifts every rule's
    accuracy alike (same initial weights and batches); each run adds its own noise."""
    rng = np.random.default_rng(seed)
    by_seed = 90 + rng.normal(0, 1.0, (reps, 1, MAX))
    against = (by_seed + effect + rng.normal(0, noise, (reps, 1, MAX)))[:, 0]
    rules = by_seed + rng.normal(0, noise, (reps, k, MAX))
    final = np.full((reps, k), Verdict.UNDECIDED, dtype=object)
    ever = np.zeros(reps, dtype=bool)
    running = np.ones(reps, dtype=bool)
    for n in range(MIN, MAX + 1):
        verdicts = family_verdicts(against[:, :n], rules[:, :, :n], looks)
        for r in range(CHECKED):
            items = [("m", f"rule{j}", "sam_gns", sample(against[r, :n]), sample(rules[r, j, :n])) for j in range(k)]
            assert [c.verdict for c in compare_all(items, MARGIN, looks=looks)] == list(verdicts[r])
        final[running] = verdicts[running]
        ever |= np.isin(verdicts, [Verdict.BETTER, Verdict.WORSE]).any(axis=1)
        running &= (verdicts == Verdict.UNDECIDED).any(axis=1)
    return final, ever


def false_rate(final: np.ndarray) -> float:
    return float(np.isin(final, [Verdict.BETTER, Verdict.WORSE]).any(axis=1).mean())


def test_alpha_split_over_looks_keeps_the_error_rate_of_a_comparison_under_optional_stopping():
    final, _ = adaptive_sweep(seed=11, reps=4000, k=1, effect=0.0, noise=0.5, looks=LOOKS)
    assert false_rate(final) <= ALPHA
    # the same sweep testing every look at the full alpha: the simulation can tell a procedure that fails
    unsplit, _ = adaptive_sweep(seed=11, reps=4000, k=1, effect=0.0, noise=0.5, looks=1)
    assert false_rate(unsplit) > 2 * ALPHA


def test_alpha_split_over_looks_keeps_the_error_rate_of_a_family_however_the_looks_stop():
    # a false verdict at any look at all: its rate bounds that of every stopping rule
    _, ever = adaptive_sweep(seed=13, reps=4000, k=3, effect=0.0, noise=0.5, looks=LOOKS)
    assert ever.mean() <= ALPHA
    _, unsplit = adaptive_sweep(seed=13, reps=4000, k=3, effect=0.0, noise=0.5, looks=1)
    assert unsplit.mean() > 2 * ALPHA


def test_a_true_difference_of_three_points_is_found():
    final, _ = adaptive_sweep(seed=12, reps=1000, k=1, effect=3.0, noise=1.0, looks=LOOKS)
    assert (final[:, 0] == Verdict.BETTER).mean() >= 0.9
