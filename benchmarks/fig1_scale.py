"""Where the published Fig. 1 curves sit against ours (issue 17, item 4), from retention runs.

    python benchmarks/fig1_scale.py fast=runs/ret-fast paper=runs/ret-paper/metrics.csv \\
        --sb3 benchmarks/results/sb3_paper_seed1234.json

SPEC §7: the original logged `0.4 * goals in those steps / 20` every 1,000 steps and labelled
the axis value / 0.4. With 20-step episodes, 1,000 steps are 50 episodes, so for a learner at
g goals per episode the logged value is 0.4 * 50 g / 20 = g itself, and value / 0.4 is 2.5 g.
Fig. 1's curves reach about 2. For each run (LABEL=RUN_DIR, a finished retention run, or its
metrics.csv, gzipped or not) this prints goals per episode, the seeds' mean of per-update
values: over the last tenth of socialization, and per condition over the last tenth of
autonomy (the run's headline), each read both ways; and the first socialization step at which
the seeds' mean reaches 2 and 0.8 goals per episode (where Fig. 1's "about 2" would sit under
each reading). `--sb3` adds the Stable-Baselines3 + MiniGrid reference curve
(`benchmarks/sb3_goals.py`, socialization only). `--plot PATH` draws the curves twice, side
by side: on our axis (goals per 20-step episode) and on Fig. 1's as SPEC §7 reads it (value /
0.4 = 2.5 goals per episode), each with Fig. 1's level of about 2 where that reading puts it.
"""

import argparse
import csv
import gzip
import json
from collections import defaultdict
from pathlib import Path

PUBLISHED = 2.0
"""Fig. 1's curves: about 2 (SPEC §5 A)."""
READINGS = {"value": 1.0, "value / 0.4": 2.5}
"""Fig. 1's number for g goals per episode, under each reading of its axis."""


def _curves(run: Path) -> dict[str, list[tuple[float, float]]]:
    """{phase or condition: [(step, seeds' mean goals per episode), ...]} in update order, from
    a run directory's metrics.csv or such a file itself (gzipped if its name ends in .gz)."""
    sums: dict[tuple[str, int], list[float]] = defaultdict(list)
    steps: dict[tuple[str, int], float] = {}
    path = run / "metrics.csv" if run.is_dir() else run
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", newline="") as file:
        for row in csv.DictReader(file):
            key = (row["condition"], int(row["update"]))
            sums[key].append(float(row["goals_per_episode"]))
            steps[key] = float(row["step"])
    curves: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (name, update), values in sorted(sums.items(), key=lambda item: item[0]):
        curves[name].append((steps[(name, update)], sum(values) / len(values)))
    return curves


def _last_tenth(curve: list[tuple[float, float]]) -> float:
    tail = curve[-max(1, len(curve) // 10) :]
    return sum(g for _, g in tail) / len(tail)


def _first_step(curve: list[tuple[float, float]], level: float) -> str:
    return next((f"{step:,.0f}" for step, g in curve if g >= level), "never")


def rows(label: str, curves: dict[str, list[tuple[float, float]]]) -> list[str]:
    out = []
    for name, curve in curves.items():
        g = _last_tenth(curve)
        read = " | ".join(f"{g * factor:.2f}" for factor in READINGS.values())
        reach = " | ".join(
            _first_step(curve, PUBLISHED / f) if name == "socialization" else "–"
            for f in READINGS.values()
        )
        out.append(f"| {label} | {name} | {g:.2f} | {read} | {reach} |")
    return out


def plot(curves: dict[str, dict[str, list[tuple[float, float]]]], path: Path) -> None:
    """Every run's curves on both axes, Fig. 1's level marked on each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    titles = ("ours: goals per 20-step episode", "Fig. 1's scale (SPEC §7): value / 0.4 = 2.5 g")
    for ax, factor, title in zip(axes, (1.0, READINGS["value / 0.4"]), titles, strict=True):
        for index, (label, run) in enumerate(curves.items()):
            for name, curve in run.items():
                ax.plot(
                    [step for step, _ in curve],
                    [g * factor for _, g in curve],
                    color=f"C{index}",
                    linestyle="-" if name in ("socialization", "isr") else ":",
                    linewidth=1,
                    label=f"{label}: {name}",
                )
        ax.axhline(PUBLISHED, color="0.3", linestyle="--", linewidth=1, label="Fig. 1: about 2")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("environment steps")
    axes[0].legend(fontsize=6, loc="center right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", metavar="LABEL=RUN_DIR")
    parser.add_argument("--sb3", type=Path, help="a benchmarks/sb3_goals.py result (JSON)")
    parser.add_argument("--plot", type=Path, help="also draw the curves on both scales (PNG)")
    args = parser.parse_args()
    curves = {}
    header = " | ".join(f"Fig. 1 reads ({name})" for name in READINGS)
    reach = " | ".join(f"first step at {PUBLISHED / f:g} goals" for f in READINGS.values())
    print(f"| run | phase | goals per episode (last tenth) | {header} | {reach} |")
    print("|---|---|---:|" + "---:|" * 2 * len(READINGS))
    for argument in args.runs:
        label, _, path = argument.partition("=")
        curves[label] = _curves(Path(path))
    if args.sb3:
        result = json.loads(args.sb3.read_text())
        curve = [(point["timesteps"], point["goals_per_episode"]) for point in result["curve"]]
        curves[f"SB3 + MiniGrid, seed {result['seed']}"] = {"socialization": curve}
    for label, run in curves.items():
        for line in rows(label, run):
            print(line)
    if args.plot:
        plot(curves, args.plot)


if __name__ == "__main__":
    main()
