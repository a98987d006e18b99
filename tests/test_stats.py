import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from internalize.stats import (
    Comparison,
    Summary,
    fixed_effect_test,
    paired_test,
    summarize,
    welch_test,
)

# ---------------------------------------------------------------------------- summarize


def test_summarize_matches_numpy_and_scipy():
    values = np.random.default_rng(1).normal(3.0, 2.0, size=12)
    summary = summarize(values, rng=0)
    assert isinstance(summary, Summary)
    assert summary.n == 12
    assert summary.mean == pytest.approx(values.mean(), rel=1e-14)
    assert summary.sd == pytest.approx(np.std(values, ddof=1), rel=1e-14)
    assert summary.se == pytest.approx(scipy_stats.sem(values), rel=1e-14)
    assert summary.confidence == 0.95
    assert summary.ci_low < summary.mean < summary.ci_high


def test_bootstrap_ci_matches_scipy_percentile_bootstrap():
    values = np.random.default_rng(2).normal(0.0, 1.0, size=20)
    ours = summarize(values, n_bootstrap=20_000, rng=5)
    options = {"n_resamples": 20_000, "method": "percentile"}
    try:  # scipy >= 1.15 names the generator `rng`, older releases `random_state`
        reference = scipy_stats.bootstrap((values,), np.mean, rng=6, **options)
    except TypeError:
        reference = scipy_stats.bootstrap((values,), np.mean, random_state=6, **options)
    reference = reference.confidence_interval
    # Monte Carlo error of each quantile is about 0.005 here; the tolerance is ~6 of those.
    assert ours.ci_low == pytest.approx(reference.low, abs=0.03)
    assert ours.ci_high == pytest.approx(reference.high, abs=0.03)
    # The bootstrap interval is close to the normal-theory one mean -+ 1.96 se.
    assert ours.ci_high - ours.ci_low == pytest.approx(2 * 1.96 * ours.se * 0.975, rel=0.1)


def test_bootstrap_ci_is_the_percentile_of_resampled_means():
    values = np.array([0.1, 0.9, 0.4, 0.7, 0.2])
    summary = summarize(values, confidence=0.9, n_bootstrap=500, rng=np.random.default_rng(11))
    generator = np.random.default_rng(11)
    means = np.array([values[generator.integers(0, 5, size=5)].mean() for _ in range(500)])
    assert summary.ci_low == pytest.approx(np.quantile(means, 0.05), rel=1e-12)
    assert summary.ci_high == pytest.approx(np.quantile(means, 0.95), rel=1e-12)
    assert summary.n_bootstrap == 500


def test_summarize_is_deterministic_and_uses_rng():
    values = np.random.default_rng(3).exponential(size=8)
    first, again = summarize(values, rng=4), summarize(values, rng=4)
    assert first == again
    assert summarize(values, rng=np.random.default_rng(4)) == first
    other = summarize(values, rng=5)
    assert (other.ci_low, other.ci_high) != (first.ci_low, first.ci_high)
    assert other.mean == first.mean


def test_bootstrap_coverage_is_sane():
    generator = np.random.default_rng(7)
    covered = 0
    trials = 200
    for _ in range(trials):
        summary = summarize(generator.normal(size=15), n_bootstrap=1_000, rng=generator)
        covered += summary.ci_low <= 0.0 <= summary.ci_high
    # The percentile bootstrap under-covers a little at 15 seeds (about 0.92-0.93).
    assert 0.86 <= covered / trials <= 0.99


def test_summarize_one_seed_gives_nan_spread_and_json():
    summary = summarize([2.5])
    assert summary.n == 1 and summary.mean == 2.5
    assert all(math.isnan(x) for x in (summary.sd, summary.se, summary.ci_low, summary.ci_high))
    record = summary.as_dict()
    assert record["mean"] == 2.5 and record["se"] is None and record["ci_low"] is None
    json.dumps(record, allow_nan=False)


def test_summary_as_dict_is_plain_json():
    record = summarize(np.arange(5.0), rng=0).as_dict()
    assert set(record) >= {"n", "mean", "sd", "se", "ci_low", "ci_high", "confidence"}
    assert type(record["n"]) is int and type(record["mean"]) is float
    assert json.loads(json.dumps(record, allow_nan=False)) == record


# ---------------------------------------------------------------------------- welch_test


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_welch_matches_scipy(alternative):
    generator = np.random.default_rng(10)
    for _ in range(40):
        n_a, n_b = generator.integers(2, 15, size=2)
        a = generator.normal(generator.normal(), generator.uniform(0.2, 3.0), size=n_a)
        b = generator.normal(generator.normal(), generator.uniform(0.2, 3.0), size=n_b)
        ours = welch_test(a, b, alternative=alternative, confidence=0.9)
        reference = scipy_stats.ttest_ind(a, b, equal_var=False, alternative=alternative)
        assert ours.statistic == pytest.approx(reference.statistic, rel=1e-10)
        assert ours.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)
        assert ours.df == pytest.approx(reference.df, rel=1e-12)
        interval = reference.confidence_interval(0.9)
        assert ours.ci_low == pytest.approx(interval.low, rel=1e-9)
        assert ours.ci_high == pytest.approx(interval.high, rel=1e-9)
        assert ours.alternative == alternative and (ours.n_a, ours.n_b) == (n_a, n_b)


def test_welch_df_follows_the_satterthwaite_formula():
    a = np.array([1.0, 4.0, 2.0, 8.0, 5.0])
    b = np.array([3.0, 3.5, 2.5])
    va, vb = np.var(a, ddof=1) / 5, np.var(b, ddof=1) / 3
    expected = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 2)
    result = welch_test(a, b)
    assert result.df == pytest.approx(expected, rel=1e-14)
    assert result.se == pytest.approx(math.sqrt(va + vb), rel=1e-14)
    assert result.difference == pytest.approx(4.0 - 3.0, rel=1e-14)


def test_welch_hand_example():
    # Both sds are 1, so the pooled sd is 1, d = -3 and J = 1 - 3 / (4 * 6 - 9) = 0.8.
    result = welch_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert isinstance(result, Comparison)
    assert result.difference == -3.0
    assert result.effect_size_kind == "hedges_g"
    assert result.effect_size == pytest.approx(-2.4, rel=1e-14)
    assert result.df == pytest.approx(4.0, rel=1e-14)
    assert result.statistic == pytest.approx(-3.0 / math.sqrt(2.0 / 3.0), rel=1e-14)
    half = scipy_stats.t.ppf(0.975, 4) * math.sqrt(2.0 / 3.0)
    assert (result.ci_low, result.ci_high) == pytest.approx((-3.0 - half, -3.0 + half))
    json.dumps(result.as_dict(), allow_nan=False)


def test_welch_one_sided_interval_is_open_and_json_safe():
    result = welch_test([1.0, 2.0, 3.5], [0.0, 0.5, 1.0, 0.2], alternative="greater")
    assert math.isinf(result.ci_high) and result.ci_low < result.difference
    assert result.as_dict()["ci_high"] is None
    json.dumps(result.as_dict(), allow_nan=False)


def test_welch_zero_variance_gives_nan_not_crash():
    result = welch_test([1.0, 1.0, 1.0], [1.0, 1.0])
    assert math.isnan(result.statistic) and math.isnan(result.p_value)
    assert result.difference == 0.0
    json.dumps(result.as_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("result", "difference", "counts"),
    [
        (welch_test([3.0], [1.0, 2.0]), 1.5, (1, 2)),
        (welch_test([3.0, 4.0], [1.0]), 2.5, (2, 1)),
        (paired_test([3.0], [1.5], alternative="greater"), 1.5, (1, 1)),
        # One row per condition and layout (one seed): the coefficient, mean of 1.5 and 3.0.
        (
            fixed_effect_test([3.0, 1.5, 5.0, 2.0], list("abab"), list("XXYY"), "a", "b"),
            2.25,
            (2, 2),
        ),
    ],
)
def test_one_seed_gives_the_difference_and_no_test(result, difference, counts):
    """A test with one seed on a side cannot be computed: the difference is given, and every
    quantity that needs a spread over seeds is nan (None in JSON), never an error."""
    record = result.as_dict()
    assert record["difference"] == pytest.approx(difference)
    assert (record["n_a"], record["n_b"]) == counts
    undefined = ("statistic", "df", "p_value", "se", "ci_low", "ci_high", "effect_size")
    assert all(record[name] is None for name in undefined)
    json.dumps(record, allow_nan=False)


# ---------------------------------------------------------------------------- fixed_effect_test


def _unbalanced_data(seed, effects, noise=1.0):
    """Rows of (value, condition, block) with 5 blocks, random seed counts per cell."""
    generator = np.random.default_rng(seed)
    block_means = generator.normal(0.0, 3.0, size=5)
    values, conditions, blocks = [], [], []
    for condition, effect in effects.items():
        for index in range(5):
            count = int(generator.integers(1, 6))
            values += list(block_means[index] + effect + generator.normal(0, noise, count))
            conditions += [condition] * count
            blocks += [f"layout{index}"] * count
    return np.array(values), np.array(conditions), np.array(blocks)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fixed_effect_matches_statsmodels(seed):
    pandas = pytest.importorskip("pandas")
    smf = pytest.importorskip("statsmodels.formula.api")
    values, conditions, blocks = _unbalanced_data(seed, {"none": 0.0, "isr": 0.7, "oracle": 1.5})
    for a, b in [("isr", "none"), ("oracle", "isr"), ("none", "oracle")]:
        ours = fixed_effect_test(values, conditions, blocks, a, b, confidence=0.9)
        keep = (conditions == a) | (conditions == b)
        frame = pandas.DataFrame(
            {"y": values[keep], "condition": conditions[keep], "block": blocks[keep]}
        )
        fit = smf.ols(f"y ~ C(condition, Treatment(reference='{b}')) + C(block)", frame).fit()
        name = f"C(condition, Treatment(reference='{b}'))[T.{a}]"
        assert ours.difference == pytest.approx(fit.params[name], rel=1e-10)
        assert ours.se == pytest.approx(fit.bse[name], rel=1e-10)
        assert ours.statistic == pytest.approx(fit.tvalues[name], rel=1e-10)
        assert ours.p_value == pytest.approx(fit.pvalues[name], rel=1e-10)
        assert ours.df == fit.df_resid
        low, high = fit.conf_int(alpha=0.1).loc[name]
        assert (ours.ci_low, ours.ci_high) == pytest.approx((low, high), rel=1e-10)
        assert ours.effect_size == pytest.approx(fit.params[name] / np.sqrt(fit.scale), rel=1e-10)
        assert (ours.n_a, ours.n_b) == (int(np.sum(conditions == a)), int(np.sum(conditions == b)))


def test_fixed_effect_hand_case():
    # Balanced 2 blocks x 2 conditions x 2 seeds: the coefficient is mean(a) - mean(b) = 2, the
    # residuals are -1, 1, -1, 1, -1, 1, 0, 0 (RSS 6) on 8 - 3 = 5 df, s^2 = 1.2 and
    # se = sqrt(s^2 (1/4 + 1/4)) = sqrt(0.6).
    values = [3.0, 5.0, 1.0, 3.0, 10.0, 12.0, 9.0, 9.0]
    conditions = ["a", "a", "b", "b", "a", "a", "b", "b"]
    blocks = ["X", "X", "X", "X", "Y", "Y", "Y", "Y"]
    result = fixed_effect_test(values, conditions, blocks, "a", "b")
    assert result.difference == pytest.approx(2.0, rel=1e-12)
    assert result.df == 5
    assert result.se == pytest.approx(math.sqrt(0.6), rel=1e-12)
    assert result.statistic == pytest.approx(2.0 / math.sqrt(0.6), rel=1e-12)
    assert result.p_value == pytest.approx(2 * scipy_stats.t.sf(2.0 / math.sqrt(0.6), 5))
    assert result.effect_size == pytest.approx(2.0 / math.sqrt(1.2), rel=1e-12)
    assert result.effect_size_kind == "coefficient_over_residual_sd"
    half = scipy_stats.t.ppf(0.975, 5) * math.sqrt(0.6)
    assert (result.ci_low, result.ci_high) == pytest.approx((2.0 - half, 2.0 + half))
    swapped = fixed_effect_test(values, conditions, blocks, "b", "a")
    assert swapped.difference == pytest.approx(-2.0, rel=1e-12)
    assert swapped.p_value == pytest.approx(result.p_value, rel=1e-12)


def test_fixed_effect_removes_block_shifts_and_ignores_other_conditions():
    values, conditions, blocks = _unbalanced_data(4, {"none": 0.0, "isr": 0.5, "oracle": 9.0})
    base = fixed_effect_test(values, conditions, blocks, "isr", "none")
    shifted = values + np.where(blocks == "layout3", 100.0, 0.0)
    shifted = shifted + np.where(conditions == "oracle", -50.0, 0.0)
    moved = fixed_effect_test(shifted, conditions, blocks, "isr", "none")
    assert moved.difference == pytest.approx(base.difference, rel=1e-9)
    assert moved.se == pytest.approx(base.se, rel=1e-9)
    # Adding 1 to every isr row adds exactly 1 to the coefficient.
    bumped = values + (conditions == "isr")
    assert fixed_effect_test(bumped, conditions, blocks, "isr", "none").difference == (
        pytest.approx(base.difference + 1.0, rel=1e-9)
    )


def test_fixed_effect_large_effect_and_null():
    values, conditions, blocks = _unbalanced_data(5, {"none": 0.0, "same": 0.0, "big": 4.0})
    large = fixed_effect_test(values, conditions, blocks, "big", "none")
    assert large.p_value < 1e-6 and large.difference > 3.0
    null = fixed_effect_test(values, conditions, blocks, "same", "none")
    assert abs(null.difference) < 3 * null.se
    assert null.ci_low < 0.0 < null.ci_high


def test_fixed_effect_one_sided():
    values, conditions, blocks = _unbalanced_data(6, {"none": 0.0, "isr": 0.8})
    two = fixed_effect_test(values, conditions, blocks, "isr", "none")
    greater = fixed_effect_test(values, conditions, blocks, "isr", "none", alternative="greater")
    less = fixed_effect_test(values, conditions, blocks, "isr", "none", alternative="less")
    assert greater.statistic == two.statistic
    assert greater.p_value == pytest.approx(scipy_stats.t.sf(two.statistic, two.df), rel=1e-12)
    assert greater.p_value + less.p_value == pytest.approx(1.0, rel=1e-12)
    assert math.isinf(greater.ci_high) and math.isinf(less.ci_low)


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: summarize([]), "empty"),
        (lambda: summarize([1.0, np.nan]), "non-finite"),
        (lambda: summarize([1.0, np.inf]), "non-finite"),
        (lambda: summarize(np.ones((3, 2))), "one-dimensional"),
        (lambda: summarize([1.0, 2.0], confidence=1.5), "confidence"),
        (lambda: summarize([1.0, 2.0], n_bootstrap=0), "n_bootstrap"),
        (lambda: summarize([1.0, 2.0], rng=None), "rng"),
        (lambda: summarize([1.0, 2.0], rng=0.5), "rng"),
        (lambda: welch_test([], [1.0, 2.0]), "empty"),
        (lambda: welch_test([1.0, 2.0], []), "empty"),
        (lambda: welch_test([1.0, 2.0], [1.0, np.nan]), "non-finite"),
        (lambda: welch_test([1.0, 2.0], [3.0, 4.0], alternative="bigger"), "alternative"),
        (lambda: welch_test([1.0, 2.0], [3.0, 4.0], confidence=0.0), "confidence"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_fixed_effect_bad_input_raises():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    conditions = ["a", "a", "b", "b", "c", "c"]
    blocks = ["X", "Y", "X", "Y", "X", "Y"]
    with pytest.raises(ValueError, match="one label per value"):
        fixed_effect_test(values, conditions[:-1], blocks, "a", "b")
    with pytest.raises(ValueError, match="one label per value"):
        fixed_effect_test(values, conditions, blocks[:3], "a", "b")
    with pytest.raises(ValueError, match="'d' has no rows"):
        fixed_effect_test(values, conditions, blocks, "a", "d")
    with pytest.raises(ValueError, match="must differ"):
        fixed_effect_test(values, conditions, blocks, "a", "a")
    with pytest.raises(ValueError, match="non-finite"):
        fixed_effect_test([np.nan, *values[1:]], conditions, blocks, "a", "b")
    with pytest.raises(ValueError, match="residual degree of freedom"):
        fixed_effect_test(values[:3], conditions[:3], blocks[:3], "a", "b")
    confounded = ["X", "X", "Y", "Y", "X", "Y"]
    with pytest.raises(ValueError, match="confounded"):
        fixed_effect_test(values, conditions, confounded, "a", "b")
    with pytest.raises(ValueError, match="alternative"):
        fixed_effect_test(values, conditions, blocks, "a", "b", alternative="two_sided")


# ------------------------------------------------------------------------------ paired


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_paired_matches_scipy(alternative):
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(2, 15))
        b = rng.normal(0.0, 1.0, n)
        a = b + rng.normal(rng.normal(0.0, 0.5), rng.uniform(0.1, 2.0), n)
        result = paired_test(a, b, alternative=alternative)
        reference = scipy_stats.ttest_rel(a, b, alternative=alternative)
        assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
        assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)
        assert result.df == n - 1
        interval = reference.confidence_interval(0.95)
        assert result.ci_low == pytest.approx(interval.low, rel=1e-9)
        assert result.ci_high == pytest.approx(interval.high, rel=1e-9)


def test_paired_hand_example_and_one_sample_use():
    # d = [1, 2, 3]: mean 2, sd 1, se 1/sqrt(3), t = 2 sqrt(3), d_z = 2.
    result = paired_test([3.0, 5.0, 7.0], [2.0, 3.0, 4.0])
    assert result.difference == pytest.approx(2.0)
    assert result.statistic == pytest.approx(2.0 * math.sqrt(3.0))
    assert result.effect_size == pytest.approx(2.0) and result.effect_size_kind == "cohens_dz"
    one_sample = paired_test([1.0, 2.0, 3.0], np.zeros(3), alternative="greater")
    reference = scipy_stats.ttest_1samp([1.0, 2.0, 3.0], 0.0, alternative="greater")
    assert one_sample.p_value == pytest.approx(reference.pvalue, rel=1e-10)


def test_paired_rejects_unpaired_lengths():
    with pytest.raises(ValueError, match="as many values in a as in b"):
        paired_test([1.0, 2.0, 3.0], [1.0, 2.0])
