"""Statistics over seeds: bootstrap summaries, Welch t-tests and a fixed-block OLS comparison.

The unit of analysis is the seed: every function takes one number per seed (`float[num_seeds]`),
never per-episode values. Randomness only enters `summarize` (the bootstrap), through its `rng`
argument (an integer seed or a `np.random.Generator`).

Results are plain dataclasses; `as_dict()` gives JSON-ready values in which every non-finite
float (nan for an undefined quantity, +-inf for the open end of a one-sided interval) is `None`,
since results files are written with `json.dumps(..., allow_nan=False)`. One seed is a valid
input everywhere: what needs a spread over seeds (sd, se, an interval, a test's statistic, df,
p-value and effect size) is then nan, so `None`, and the mean or difference is still given.
"""

import math
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _scipy_stats

ALTERNATIVES = ("two-sided", "greater", "less")


def _json_value(value):
    """A float that JSON can hold (non-finite -> None); ints and strings as they are."""
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Summary:
    """Mean of a per-seed quantity with its spread and a percentile-bootstrap CI of the mean.

    `sd` uses ddof=1, `se = sd / sqrt(n)`; with a single seed `sd`, `se`, `ci_low` and `ci_high`
    are nan.
    """

    n: int
    mean: float
    sd: float
    se: float
    ci_low: float
    ci_high: float
    confidence: float
    n_bootstrap: int
    method: str = "percentile bootstrap over seeds"

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {field.name: _json_value(getattr(self, field.name)) for field in fields(self)}


@dataclass(frozen=True)
class Comparison:
    """A comparison of condition `a` against condition `b` (differences are a - b).

    `test` names the test, `statistic` is its t statistic with `df` degrees of freedom,
    `p_value` is for `alternative`, `difference` is the estimated a - b (with standard error
    `se`) and `[ci_low, ci_high]` its `confidence` interval (one-sided alternatives give a
    one-sided interval with an infinite end). `effect_size` is of the kind `effect_size_kind`.
    `n_a` and `n_b` count the seeds (rows) of each condition that entered the test. With fewer
    than two seeds on a side the test cannot be computed: the difference is given, and the
    statistic, df, p-value, se, interval and effect size are nan.
    """

    test: str
    statistic: float
    df: float
    p_value: float
    alternative: str
    difference: float
    se: float
    ci_low: float
    ci_high: float
    confidence: float
    effect_size: float
    effect_size_kind: str
    n_a: int
    n_b: int

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {field.name: _json_value(getattr(self, field.name)) for field in fields(self)}


# ---------------------------------------------------------------------------- input checks


def _per_seed(values: ArrayLike, name: str) -> np.ndarray:
    """`values` as float64[n], checked: one-dimensional, at least one entry, finite."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (float[num_seeds]), got {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: need at least one seed")
    if not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.isfinite(array)))
        raise ValueError(f"{name} holds {bad} non-finite value(s) (nan or inf)")
    return array


def _check_confidence(confidence: float) -> float:
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return confidence


def _check_alternative(alternative: str) -> str:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    return alternative


def _generator(rng: np.random.Generator | int) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(
        f"rng must be an integer seed or a np.random.Generator, got {type(rng).__name__}"
    )


def _t_inference(
    estimate: float, se: float, df: float, alternative: str, confidence: float
) -> tuple[float, float, float, float]:
    """t statistic, p-value and confidence interval of `estimate` with standard error `se`
    under Student's t with `df` degrees of freedom; all nan when `se` is 0 or not finite."""
    if not (se > 0 and math.isfinite(se) and df > 0):
        return math.nan, math.nan, math.nan, math.nan
    distribution = _scipy_stats.t(df)
    statistic = estimate / se
    if alternative == "two-sided":
        p_value = 2.0 * distribution.sf(abs(statistic))
        half = distribution.ppf(0.5 + confidence / 2.0) * se
        low, high = estimate - half, estimate + half
    elif alternative == "greater":
        p_value = distribution.sf(statistic)
        low, high = estimate - distribution.ppf(confidence) * se, math.inf
    else:
        p_value = distribution.cdf(statistic)
        low, high = -math.inf, estimate + distribution.ppf(confidence) * se
    return float(statistic), float(min(p_value, 1.0)), float(low), float(high)


def _untested(
    test: str, difference: float, alternative: str, confidence: float, kind: str, n_a: int, n_b: int
) -> Comparison:
    """The comparison of a test that needs two seeds on each side and has fewer: the difference
    alone, every quantity that needs a spread over seeds nan."""
    nan = math.nan
    return Comparison(
        test, nan, nan, nan, alternative, difference, nan, nan, nan, confidence, nan, kind, n_a, n_b
    )


# ---------------------------------------------------------------------------- summaries


def summarize(
    values: ArrayLike,
    confidence: float = 0.95,
    n_bootstrap: int = 10_000,
    rng: np.random.Generator | int = 0,
) -> Summary:
    """Mean, sd (ddof=1), standard error and a percentile-bootstrap CI of the mean.

    Args:
        values: float[num_seeds], one number per seed; finite, at least one.
        confidence: level of the two-sided interval, in (0, 1).
        n_bootstrap: number of bootstrap resamples (seeds drawn with replacement, each resample
            of size num_seeds); the interval is the (1 - confidence)/2 and (1 + confidence)/2
            quantiles (numpy's linear interpolation) of the resampled means.
        rng: integer seed or `np.random.Generator` (a generator passed in is advanced).

    Returns:
        A `Summary`; with one seed, sd, se and the interval are nan (no resampling is done).
    """
    values = _per_seed(values, "values")
    confidence = _check_confidence(confidence)
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer):
        raise ValueError(f"n_bootstrap must be a positive integer, got {n_bootstrap!r}")
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be a positive integer, got {n_bootstrap}")
    generator = _generator(rng)
    n = values.size
    mean = float(values.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan, math.nan, confidence, n_bootstrap)
    sd = float(values.std(ddof=1))
    indices = generator.integers(0, n, size=(int(n_bootstrap), n))
    means = values[indices].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Summary(
        n=n,
        mean=mean,
        sd=sd,
        se=sd / math.sqrt(n),
        ci_low=float(low),
        ci_high=float(high),
        confidence=confidence,
        n_bootstrap=int(n_bootstrap),
    )


# ---------------------------------------------------------------------------- comparisons


def welch_test(
    a: ArrayLike,
    b: ArrayLike,
    alternative: str = "two-sided",
    confidence: float = 0.95,
) -> Comparison:
    """Welch's unequal-variance t-test of mean(a) against mean(b).

    Args:
        a: float[n_a], one number per seed of condition a.
        b: float[n_b], the same for condition b.
        alternative: "two-sided", "greater" (mean a > mean b) or "less", as in scipy.
        confidence: level of the interval of the difference.

    With v_a = var(a, ddof=1) / n_a and v_b likewise, the difference d = mean(a) - mean(b) has
    se = sqrt(v_a + v_b), t = d / se, and the Welch-Satterthwaite degrees of freedom are
    df = (v_a + v_b)**2 / (v_a**2 / (n_a - 1) + v_b**2 / (n_b - 1)); the interval is
    d -+ t_df quantile * se (one-sided for a one-sided alternative). Statistic and p-value equal
    `scipy.stats.ttest_ind(a, b, equal_var=False, alternative=...)`.

    The effect size is Hedges' g: g = J * (mean(a) - mean(b)) / s_p, with the pooled sd
    s_p = sqrt(((n_a - 1) var(a) + (n_b - 1) var(b)) / (n_a + n_b - 2)) and the small-sample
    correction J = 1 - 3 / (4 (n_a + n_b) - 9).

    When both samples have zero variance, statistic, df, p-value and interval are nan (and the
    effect size too); with a single seed in a or b, everything but the difference is.
    """
    a = _per_seed(a, "a")
    b = _per_seed(b, "b")
    alternative = _check_alternative(alternative)
    confidence = _check_confidence(confidence)
    n_a, n_b = a.size, b.size
    difference = float(a.mean() - b.mean())
    if min(n_a, n_b) < 2:
        return _untested("welch_t", difference, alternative, confidence, "hedges_g", n_a, n_b)
    var_a, var_b = a.var(ddof=1), b.var(ddof=1)
    v_a, v_b = var_a / n_a, var_b / n_b
    se = float(math.sqrt(v_a + v_b))
    if se > 0:
        df = float((v_a + v_b) ** 2 / (v_a**2 / (n_a - 1) + v_b**2 / (n_b - 1)))
    else:
        df = math.nan
    statistic, p_value, low, high = _t_inference(difference, se, df, alternative, confidence)
    pooled = math.sqrt(((n_a - 1) * var_a + (n_b - 1) * var_b) / (n_a + n_b - 2))
    correction = 1.0 - 3.0 / (4.0 * (n_a + n_b) - 9.0)
    hedges_g = correction * difference / pooled if pooled > 0 else math.nan
    return Comparison(
        test="welch_t",
        statistic=statistic,
        df=df,
        p_value=p_value,
        alternative=alternative,
        difference=difference,
        se=se,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        effect_size=float(hedges_g),
        effect_size_kind="hedges_g",
        n_a=n_a,
        n_b=n_b,
    )


def paired_test(
    a: ArrayLike,
    b: ArrayLike,
    alternative: str = "two-sided",
    confidence: float = 0.95,
) -> Comparison:
    """Paired t-test of mean(a - b) against 0: the same seeds measured twice (say late and early
    in training), or against zeros for a one-sample test.

    Args:
        a: float[n], one number per seed.
        b: float[n], the same seeds' other measurement.
        alternative: "two-sided", "greater" (mean a > mean b) or "less", as in scipy.
        confidence: level of the interval of the mean difference.

    With d = a - b: se = sd(d, ddof=1) / sqrt(n), t = mean(d) / se, df = n - 1; statistic and
    p-value equal `scipy.stats.ttest_rel(a, b, alternative=...)`. The effect size is Cohen's
    d_z = mean(d) / sd(d). With a single seed, everything but the mean difference is nan.
    """
    a = _per_seed(a, "a")
    b = _per_seed(b, "b")
    if a.size != b.size:
        raise ValueError(f"a paired test needs as many values in a as in b: {a.size} != {b.size}")
    alternative = _check_alternative(alternative)
    confidence = _check_confidence(confidence)
    differences = a - b
    n = differences.size
    mean = float(differences.mean())
    if n < 2:
        return _untested("paired_t", mean, alternative, confidence, "cohens_dz", n, n)
    sd = float(differences.std(ddof=1))
    se = sd / math.sqrt(n)
    statistic, p_value, low, high = _t_inference(mean, se, n - 1, alternative, confidence)
    return Comparison(
        test="paired_t",
        statistic=statistic,
        df=float(n - 1),
        p_value=p_value,
        alternative=alternative,
        difference=mean,
        se=se,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        effect_size=mean / sd if sd > 0 else math.nan,
        effect_size_kind="cohens_dz",
        n_a=n,
        n_b=n,
    )


def fixed_effect_test(
    values: ArrayLike,
    condition: ArrayLike,
    block: ArrayLike,
    a: str,
    b: str,
    alternative: str = "two-sided",
    confidence: float = 0.95,
) -> Comparison:
    """Condition a against condition b with the block (e.g. the layout) as a fixed effect.

    Only the rows of conditions a and b are used (other conditions are dropped), and the
    additive OLS model y ~ C(condition, Treatment(reference=b)) + C(block) is fitted to them
    (no condition x block interaction): the coefficient of a is the a - b difference within
    blocks, pooled over blocks. Its standard error comes from the residual variance
    s**2 = RSS / df with the residual df = rows - 1 - 1 - (blocks - 1), and the t statistic,
    p-value and interval use Student's t with that df (matching statsmodels' OLS).

    Args:
        values: float[n], one number per (seed, condition, block) row; finite.
        condition: labels[n], the condition of each row.
        block: labels[n], the block of each row.
        a, b: the two conditions compared (difference is a - b); both must occur.
        alternative: "two-sided", "greater" (a > b) or "less".
        confidence: level of the interval of the coefficient.

    The effect size is the coefficient divided by the residual standard deviation s
    (a standardized mean difference, net of blocks). When the fit is exact (s = 0) statistic,
    p-value, interval and effect size are nan. With one row per condition and block (a single
    seed) the residual would be the condition x block interaction alone, not a spread over
    seeds: everything but the coefficient is nan.
    """
    values = _per_seed(values, "values")
    condition = np.asarray(condition)
    block = np.asarray(block)
    for name, labels in (("condition", condition), ("block", block)):
        if labels.shape != values.shape:
            raise ValueError(
                f"{name} must have one label per value: shape {labels.shape} does not match "
                f"values' shape {values.shape}"
            )
    alternative = _check_alternative(alternative)
    confidence = _check_confidence(confidence)
    if a == b:
        raise ValueError(f"conditions a and b must differ, both are {a!r}")
    in_a, in_b = condition == a, condition == b
    n_a, n_b = int(in_a.sum()), int(in_b.sum())
    for label, count in ((a, n_a), (b, n_b)):
        if count == 0:
            known = sorted({str(value) for value in condition})
            raise ValueError(f"condition {label!r} has no rows; conditions present: {known}")
    rows = in_a | in_b
    y = values[rows]
    row_blocks = block[rows]
    levels = np.unique(row_blocks)
    columns = [np.ones(y.size), in_a[rows].astype(np.float64)]
    columns += [(row_blocks == level).astype(np.float64) for level in levels[1:]]
    design = np.column_stack(columns)
    num_rows, num_params = design.shape
    df = num_rows - num_params
    if df < 1:
        raise ValueError(
            f"too few rows for the fixed-effect test: {num_rows} rows of conditions {a!r} and "
            f"{b!r} for {num_params} parameters (intercept, condition, {levels.size - 1} block "
            "effects); need at least one residual degree of freedom"
        )
    if np.linalg.matrix_rank(design) < num_params:
        raise ValueError(
            f"condition is confounded with block: no block holds rows of both {a!r} and {b!r}, "
            "so their difference cannot be separated from the block effects"
        )
    q, r = np.linalg.qr(design)
    coefficients = np.linalg.solve(r, q.T @ y)
    residuals = y - design @ coefficients
    residual_var = float(residuals @ residuals) / df
    r_inverse = np.linalg.solve(r, np.eye(num_params))
    covariance = residual_var * (r_inverse @ r_inverse.T)
    estimate = float(coefficients[1])
    test, kind = "ols_block_fixed_effect", "coefficient_over_residual_sd"
    if len(set(zip(condition[rows].tolist(), row_blocks.tolist(), strict=True))) == num_rows:
        return _untested(test, estimate, alternative, confidence, kind, n_a, n_b)
    se = float(math.sqrt(covariance[1, 1]))
    statistic, p_value, low, high = _t_inference(estimate, se, df, alternative, confidence)
    residual_sd = math.sqrt(residual_var)
    return Comparison(
        test=test,
        statistic=statistic,
        df=float(df),
        p_value=p_value,
        alternative=alternative,
        difference=estimate,
        se=se,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        effect_size=estimate / residual_sd if residual_sd > 0 else math.nan,
        effect_size_kind=kind,
        n_a=n_a,
        n_b=n_b,
    )
