"""Per-update metrics as curves and as the rows of `metrics.csv`, and the means over the start
and the end of a phase.
"""

from typing import Any

import jax
import numpy as np

from internalize.learners.ppo import METRIC_NAMES, UpdateMetrics


def metric_curves(metrics: UpdateMetrics, names) -> dict[str, np.ndarray]:
    """{"step": float[updates], name: float[runs, updates] for each of `names`} of metrics with
    leading axes [runs, updates]."""
    curves = {
        name: np.asarray(metrics.extra[name] if name in metrics.extra else getattr(metrics, name))
        for name in names
    }
    curves["step"] = np.asarray(metrics.step).reshape(-1, metrics.step.shape[-1])[0]
    return curves


def metric_names(metrics: UpdateMetrics) -> list[str]:
    """Column names of `metrics`: `METRIC_NAMES`, then the experiment's own (`extra`)."""
    return [*METRIC_NAMES, *metrics.extra]


def metric_rows(prefix: list, metrics: UpdateMetrics, index: Any) -> list[list]:
    """metrics.csv rows of one run, `metrics[index]` (float[updates] per field):
    `prefix + [update] + metric_names(metrics) values` per update."""
    columns = [getattr(metrics, name) for name in METRIC_NAMES] + list(metrics.extra.values())
    values = np.stack([np.asarray(column)[index] for column in columns], -1)
    return [[*prefix, update, *row] for update, row in enumerate(values.tolist())]


def autonomy_rows(
    seeds: list[int],
    social_metrics: UpdateMetrics,
    autonomy_metrics: UpdateMetrics,
    conditions: tuple[str, ...],
) -> tuple[list[str], list[list]]:
    """Columns and rows of metrics.csv for socialization metrics [seeds, updates] followed by
    autonomy metrics [conditions, seeds, updates]. An experiment's own autonomy metrics that
    socialization did not measure are left empty in its rows."""
    social, later = (jax.tree.map(np.asarray, m) for m in (social_metrics, autonomy_metrics))
    unmeasured = [""] * (len(later.extra) - len(social.extra))
    rows = []
    for s, seed in enumerate(seeds):
        social_rows = metric_rows([seed, "socialization", "socialization"], social, s)
        rows += [row + unmeasured for row in social_rows]
        for c, condition in enumerate(conditions):
            rows += metric_rows([seed, "autonomy", condition], later, (c, s))
    return ["seed", "phase", "condition", "update", *metric_names(later)], rows


def final_mean(values: np.ndarray, fraction: float) -> np.ndarray:
    """Mean over the last `fraction` of the updates (at least one) of float[..., updates]."""
    values = np.asarray(values)
    count = max(1, int(np.ceil(values.shape[-1] * fraction)))
    return values[..., -count:].mean(axis=-1)


def windows(metrics, conditions, names, fraction: float) -> tuple[dict, dict]:
    """Per condition (the leading axis of `metrics`, [conditions, seeds, updates]): the curves
    of the metrics `names`, and per seed each one's mean over the first (`_early`) and the last
    (`_late`) `fraction` of the updates."""
    curves = {
        condition: metric_curves(jax.tree.map(lambda x, c=c: x[c], metrics), names)
        for c, condition in enumerate(conditions)
    }
    updates = next(iter(curves[conditions[0]].values())).shape[1]
    window = max(1, int(np.ceil(updates * fraction)))
    per_seed = {
        condition: {
            f"{metric}_{when}": values.tolist()
            for metric in names
            for when, values in (
                ("early", curves[condition][metric][:, :window].mean(1)),
                ("late", curves[condition][metric][:, -window:].mean(1)),
            )
        }
        for condition in conditions
    }
    return curves, per_seed
