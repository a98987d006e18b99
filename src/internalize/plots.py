"""Figures of experiments: mean curves over seeds with standard-error bands (matplotlib, Agg)."""

from collections.abc import Mapping, Sequence

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
    rescaled: Mapping[str, tuple[str, float]] | None = None,
):
    """Curves over training steps: socialization, then each autonomy condition.

    `socialization` maps "step" (float[T]) and metric names (float[seeds, T]); `autonomy` maps
    condition -> the same (a metric that socialization did not measure starts with autonomy).
    `panels` maps metric name -> axis label. A dashed line marks the caregiver's departure at
    `switch_step`. `rescaled` maps a metric to (label, factor): a second axis on the right
    reads its panel multiplied by the factor (another paper's scale, say).
    """
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (metric, label) in zip(axes[0], panels.items(), strict=True):
        measured = metric in socialization  # an autonomy metric of an experiment's own may not be
        if measured:
            band(ax, socialization["step"], socialization[metric], "socialization")
        for condition, curves in autonomy.items():
            steps, values = curves["step"], curves[metric]
            if measured:  # each condition starts where socialization ended
                steps = np.concatenate([socialization["step"][-1:], steps])
                values = np.concatenate([socialization[metric][:, -1:], values], axis=1)
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
        if metric in (rescaled or {}):
            other, factor = rescaled[metric]
            functions = (lambda v, f=factor: v * f, lambda v, f=factor: v / f)
            ax.secondary_yaxis("right", functions=functions).set_ylabel(other, fontsize=8)
    axes[0][0].legend(fontsize=8, loc="lower left")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def generalization_figure(
    returns: np.ndarray,
    tasks: tuple[str, ...],
    conditions: tuple[str, ...],
    transfer: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]],
    published: Mapping[str, Mapping[str, float]] | None,
    title: str,
):
    """Evaluation returns and learning on the test tasks.

    `returns` float[conditions, tasks, seeds]: evaluation return per seed. The first panel shows
    their mean ± SE per task and condition (and the published mean ± SE as black marks when
    `published` maps condition -> {"mean", "se"}); one panel per task follows with the true
    return while learning on it (`transfer`: condition -> task -> curves as in `phase_figure`),
    the `frozen` evaluation drawn as a dashed level.
    """
    plt = _pyplot()
    panels = 1 + len(tasks)
    columns = min(panels, 3)
    rows = -(-panels // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.6 * rows), squeeze=False)
    axes = axes.reshape(-1)
    ax = axes[0]
    width = 0.8 / len(conditions)
    positions = np.arange(len(tasks))
    for c, condition in enumerate(conditions):
        mean, sem = mean_and_sem(returns[c].T)
        x = positions + (c - (len(conditions) - 1) / 2) * width
        ax.bar(
            x,
            mean,
            width,
            yerr=sem,
            capsize=3,
            label=condition,
            color=CONDITION_COLOURS.get(condition),
            alpha=0.85,
        )
        if published and condition in published and len(tasks) == 1:
            ax.errorbar(
                x,
                [published[condition]["mean"]],
                yerr=[published[condition]["se"]],
                fmt="D",
                color="black",
                markersize=4,
                capsize=3,
                label="published" if c == 0 else None,
            )
    ax.set_xticks(positions, tasks)
    ax.set_ylabel("evaluation return (true reward)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    for t, task in enumerate(tasks):
        ax = axes[1 + t]
        for condition, per_task in transfer.items():
            curves = per_task[task]
            band(ax, curves["step"], curves["true_return"], condition)
        frozen = conditions.index("frozen") if "frozen" in conditions else None
        if frozen is not None:
            ax.axhline(
                returns[frozen, t].mean(),
                color=CONDITION_COLOURS["frozen"],
                linestyle="--",
                linewidth=1,
                label="frozen (evaluated)",
            )
        ax.set_title(f"learning on {task}", fontsize=9)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("return (true reward)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="lower right")
    for ax in axes[panels:]:
        ax.set_visible(False)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def scaling_figure(
    train_samples: np.ndarray,
    train_mse: np.ndarray,
    test_mse: np.ndarray,
    published: Mapping[str, list] | None,
    title: str,
):
    """Log-log ISR error against training samples: `train_mse` and `test_mse` float[counts,
    seeds] (mean ± SE and each seed's points), and the published test means if given."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(5.6, 4.0))
    for label, values, colour in (
        ("test", test_mse, "tab:green"),
        ("train", train_mse, "tab:orange"),
    ):
        mean, sem = mean_and_sem(values.T)
        ax.errorbar(
            train_samples,
            mean,
            yerr=sem,
            marker="o",
            color=colour,
            capsize=3,
            label=f"{label} MSE (ours)",
        )
        for seed_values in values.T:
            ax.scatter(train_samples, seed_values, color=colour, s=6, alpha=0.35)
    if published:
        ax.plot(
            published["train_samples"],
            published["test_mse"],
            "kD--",
            markersize=4,
            linewidth=1,
            label="test MSE (published)",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("ISR training samples")
    ax.set_ylabel("mean squared error")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure


def reward_map_figure(
    maps: Mapping[str, np.ndarray],
    walls: np.ndarray,
    goal: tuple[int, int],
    action_names: tuple[str, ...],
    title: str,
    vmax: float = 0.4,
    marks: Mapping[str, Sequence[tuple[str, tuple[int, int]]]] | None = None,
):
    """One row per map (`maps`: name -> float[headings, actions, size, size], nan where the agent
    cannot be), one column per action (any number: 3 in the goals task, 5 in the boulder world).
    Each cell is split into four triangles, one per heading, pointing the way the agent faces,
    coloured by the reward; walls grey, the goal marked G. `marks` adds labelled cells per map
    name, e.g. {"name": [("P", partner_cell)]}."""
    plt = _pyplot()
    from matplotlib.collections import PolyCollection

    names = list(maps)
    size = walls.shape[0]
    figure, axes = plt.subplots(
        len(names),
        len(action_names),
        figsize=(2.7 * len(action_names) + 0.8, 2.6 * len(names)),
        squeeze=False,
    )
    # Per heading (right, down, left, up), the two corners of the cell side the agent faces,
    # as offsets in (x, y) with y growing downwards; with the centre they make a triangle.
    sides = {
        0: ((1, 0), (1, 1)),
        1: ((0, 1), (1, 1)),
        2: ((0, 0), (0, 1)),
        3: ((0, 0), (1, 0)),
    }
    colormap = plt.get_cmap("viridis")
    image = None
    for row, name in enumerate(names):
        for column, action in enumerate(action_names):
            ax = axes[row][column]
            polygons, values = [], []
            for x in range(size):
                for y in range(size):
                    if walls[x, y]:
                        ax.add_patch(plt.Rectangle((x, y), 1, 1, color="0.55"))
                        continue
                    for heading, corners in sides.items():
                        value = maps[name][heading, column, x, y]
                        if np.isnan(value):
                            continue
                        polygons.append(
                            [(x + 0.5, y + 0.5), *((x + dx, y + dy) for dx, dy in corners)]
                        )
                        values.append(value)
            collection = PolyCollection(
                polygons,
                array=np.asarray(values),
                cmap=colormap,
                edgecolors="white",
                linewidths=0.3,
            )
            collection.set_clim(0.0, vmax)
            ax.add_collection(collection)
            image = collection
            ax.text(
                goal[0] + 0.5,
                goal[1] + 0.5,
                "G",
                ha="center",
                va="center",
                fontsize=10,
                fontweight="bold",
                color="tab:green",
            )
            for label, (x, y) in (marks or {}).get(name, ()):
                ax.text(
                    x + 0.5,
                    y + 0.5,
                    label,
                    ha="center",
                    va="center",
                    fontsize=10,
                    fontweight="bold",
                    color="tab:red",
                )
            ax.set_xlim(0, size)
            ax.set_ylim(size, 0)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(action, fontsize=9)
            if column == 0:
                ax.set_ylabel(name, fontsize=9)
    figure.colorbar(image, ax=axes, shrink=0.8, label="reward for the action")
    figure.suptitle(title, fontsize=10)
    return figure


SCHEDULE_MARKERS = {"abrupt": "o", "fading": "s", "intermittent": "^", "readiness": "D"}


def departure_figure(
    critical: Mapping[str, tuple[float, Mapping[str, np.ndarray], np.ndarray]],
    schedules: Mapping[str, tuple[np.ndarray, np.ndarray, str]],
    title: str,
):
    """The departure experiment: goals at the end of autonomy per condition and the ISR's test
    error against socialization length (`critical`: name -> (steps, {condition: float[seeds]},
    test MSE float[seeds])), and retention against the caregiver's effort for every way of
    leaving (`schedules`: name -> (effort float[seeds], retention float[seeds], kind)), each
    point a mean ± SE over seeds."""
    plt = _pyplot()
    figure, (goals_ax, mse_ax, front_ax) = plt.subplots(1, 3, figsize=(16, 4.2))
    steps = np.asarray([row[0] for row in critical.values()], np.float64)
    conditions = next(iter(critical.values()))[1]
    for condition in conditions:
        stats = [mean_and_sem(row[1][condition]) for row in critical.values()]
        goals_ax.errorbar(steps, *zip(*stats, strict=True), marker="o", capsize=3, label=condition)
    mse_ax.errorbar(
        steps, *zip(*(mean_and_sem(row[2]) for row in critical.values()), strict=True), marker="o"
    )
    for ax, label in ((goals_ax, "goals per episode, end of autonomy"), (mse_ax, "ISR test MSE")):
        ax.set_xscale("log")
        ax.set_xlabel("socialization (environment steps)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    mse_ax.set_yscale("log")
    goals_ax.legend(fontsize=8)
    kinds: dict[str, list] = {}
    for name, (effort, retention, kind) in schedules.items():
        kinds.setdefault(kind, []).append((name, effort, retention))
    for kind, rows in kinds.items():
        for i, (name, effort, retention) in enumerate(rows):
            (x, x_se), (y, y_se) = mean_and_sem(effort), mean_and_sem(retention)
            front_ax.errorbar(
                x,
                y,
                xerr=x_se,
                yerr=y_se,
                marker=SCHEDULE_MARKERS.get(kind, "o"),
                color=f"C{list(kinds).index(kind)}",
                capsize=3,
                label=kind if i == 0 else None,
            )
            if kind != "abrupt":
                front_ax.annotate(
                    name, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points"
                )
    front_ax.set_xscale("log")
    front_ax.set_xlabel("caregiver effort (steps present)")
    front_ax.set_ylabel("retention (isr goals / oracle's)")
    front_ax.grid(alpha=0.3)
    front_ax.legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def presence_curves_figure(timelines: Mapping[str, Mapping[str, np.ndarray]], title: str):
    """Goals per episode over a whole run (socialization, then autonomy), one curve per way of
    leaving, with the caregiver's presence P drawn under them. `timelines`: name -> {"step":
    float[T], "goals_per_episode", "presence": float[seeds, T] (nan where a seed's run has
    ended)}."""
    plt = _pyplot()
    figure, (goals_ax, presence_ax) = plt.subplots(
        2, 1, figsize=(9, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    for i, (name, curves) in enumerate(timelines.items()):
        for ax, metric in ((goals_ax, "goals_per_episode"), (presence_ax, "presence")):
            values = curves[metric]  # every step has at least one seed
            counted = np.isfinite(values).sum(0)
            mean = np.nanmean(values, 0)
            spread = np.nansum((values - mean) ** 2, 0) / np.maximum(counted - 1, 1)
            sem = np.sqrt(spread / counted)
            ax.plot(curves["step"], mean, color=f"C{i}", label=name, linewidth=1.2)
            ax.fill_between(curves["step"], mean - sem, mean + sem, color=f"C{i}", alpha=0.2)
    goals_ax.set_ylabel("goals per episode")
    presence_ax.set_ylabel("presence P")
    presence_ax.set_xlabel("environment steps")
    for ax in (goals_ax, presence_ax):
        ax.grid(alpha=0.3)
    goals_ax.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def sweep_figure(
    panels: Mapping[str, Mapping[str, tuple[Sequence[str], np.ndarray]]], key: str, title: str
):
    """A sweep's metrics against the values of the setting `key`: one panel per metric, one
    line per label. `panels` maps metric -> label -> (the setting's values, as given, and
    float[values, 3]: mean, low and high end of the interval). Values that are all numbers are
    placed on a number line (logarithmic where they span a factor of 10 or more, all positive);
    others at equal spacing in the order given."""
    plt = _pyplot()
    values = list(
        dict.fromkeys(v for lines in panels.values() for x, _ in lines.values() for v in x)
    )
    numeric = all(_is_float(value) for value in values)
    position = {v: float(v) if numeric else i for i, v in enumerate(values)}
    columns = min(3, max(1, len(panels)))
    rows = -(-len(panels) // columns) or 1
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.4 * rows), squeeze=False)
    for ax, (metric, lines) in zip(axes.flat, panels.items(), strict=False):
        for label, (x, numbers) in lines.items():
            order = np.argsort([position[v] for v in x])
            xs = np.asarray([position[v] for v in x])[order]
            mean, low, high = np.asarray(numbers, dtype=float)[order].T
            ax.plot(xs, mean, marker="o", linewidth=1.5, label=label)
            ax.fill_between(xs, low, high, alpha=0.2, linewidth=0)
        positions = [position[v] for v in values]
        if numeric and min(positions) > 0 and max(positions) >= 10 * min(positions):
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(positions, values)
        ax.set_xlabel(key)
        ax.set_title(metric, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
