"""Figures of experiments: mean curves over seeds with standard-error bands (matplotlib, Agg)."""

from collections.abc import Mapping

import numpy as np

CONDITION_COLOURS = {
    "socialization": "0.2",
    "oracle": "tab:blue",
    "none": "tab:red",
    "isr": "tab:green",
    "frozen": "tab:purple",
}


def mean_and_sem(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over axis 0 (seeds) of float[seeds, ...]; SE 0 for one seed."""
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(axis=0)
    if values.shape[0] < 2:
        return mean, np.zeros_like(mean)
    return mean, values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])


def band(ax, steps: np.ndarray, values: np.ndarray, label: str, colour: str | None = None) -> None:
    """Plot the mean of float[seeds, T] against `steps` float[T] with a +-1 SE band."""
    mean, sem = mean_and_sem(values)
    colour = colour or CONDITION_COLOURS.get(label)
    ax.plot(steps, mean, label=label, color=colour, linewidth=1.5)
    ax.fill_between(steps, mean - sem, mean + sem, color=colour, alpha=0.25, linewidth=0)


def phase_figure(
    socialization: Mapping[str, np.ndarray],
    autonomy: Mapping[str, Mapping[str, np.ndarray]],
    panels: Mapping[str, str],
    switch_step: float,
    title: str,
):
    """Curves over training steps: socialization, then each autonomy condition.

    `socialization` maps "step" (float[T]) and metric names (float[seeds, T]); `autonomy` maps
    condition -> the same. `panels` maps metric name -> axis label. A dashed line marks the
    caregiver's departure at `switch_step`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (metric, label) in zip(axes[0], panels.items(), strict=True):
        band(ax, socialization["step"], socialization[metric], "socialization")
        for condition, curves in autonomy.items():
            # Each condition starts where socialization ended.
            steps = np.concatenate([socialization["step"][-1:], curves["step"]])
            values = np.concatenate([socialization[metric][:, -1:], curves[metric]], axis=1)
            band(ax, steps, values, condition)
        ax.axvline(switch_step, color="0.4", linestyle="--", linewidth=1)
        ax.annotate(
            "caregiver leaves",
            (switch_step, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=8,
            color="0.3",
        )
        ax.set_xlabel("environment steps")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="lower left")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
