"""Print runs of the same experiments side by side with the published numbers (markdown).

    python benchmarks/fidelity_tables.py paper=runs/ood-paper original=runs/ood-original ...

Each argument is LABEL=RUN_DIR, a finished run of one experiment (`internalize reproduce NAME`)
or an `all` run, or LABEL=RESULTS_JSON, a run's `results.json` kept on its own (it holds the
run's config and versions; benchmarks/results/fidelity/). Per experiment, one table: the
report's headline rows, each condition's main numbers (per layout for `layouts`, per data size
for `scaling`), seeds, wall time, preset, profile and machine, one column per label, then the
published number. Issue 17's comparison of the paper's model with `--profile original`
(docs/fidelity.md) is printed by it.
"""

import json
import sys
from pathlib import Path
from typing import Any

from internalize.report import _check_results, _headline_rows, _read_run

MAIN = {
    "retention": ("goals_per_episode", "return"),
    "ood": ("return",),
    "layouts": ("return",),
    "prosocial": ("helps_per_episode", "return"),
    "hacking": ("goals_per_episode_late", "internal_reward_late", "looping_late"),
    "departure": (),
    "departure-boulder": (),
    "scaling": (),
    "overoptimization": (),
}
"""Per experiment, the summary metrics shown for each condition."""


def _ms(summary: Any, digits: int = 3) -> str:
    """mean ± standard error, or '–' where there is none."""
    if not isinstance(summary, dict) or summary.get("mean") is None:
        return "–"
    mean, se = summary["mean"], summary.get("se")
    form = ".2e" if 0 < abs(mean) < 1e-2 else f".{digits}f"
    return f"{mean:{form}}" + (f" ± {se:{form}}" if se is not None else "")


def _p(test: dict) -> str:
    return "–" if test.get("p_value") is None else f"{test['p_value']:.2g}"


def _detail_rows(name: str, results: dict) -> dict[str, str]:
    """{row label: cell} of the conditions' main numbers in one results.json."""
    rows = {}
    for condition, metrics in (results.get("summary") or {}).items():
        for metric in MAIN.get(name, ()):
            if isinstance(metrics, dict) and metric in metrics:
                rows[f"{condition}: {metric.replace('_', ' ')}"] = _ms(metrics[metric])
    for task, part in (results.get("per_task") or {}).items():
        for condition, metrics in part["summary"].items():
            rows[f"{task.replace('_', ' ')}: {condition} return"] = _ms(metrics["return"])
        test = part.get("tests", {}).get("isr vs frozen")
        if test:
            rows[f"{task.replace('_', ' ')}: p isr vs frozen"] = _p(test)
    for pair, test in ((results.get("pooled") or {}).get("tests") or {}).items():
        rows[f"pooled {pair}: difference (p)"] = f"{test['difference']:.3f} (p {_p(test)})"
    if name == "scaling":
        for count, samples in zip(results["sample_counts"], results["train_samples"], strict=True):
            s = results["summary"][str(count)]
            rows[f"test MSE, {samples:,} samples"] = _ms(s["test_mse"])
            rows[f"test/train, {samples:,} samples"] = _ms(s["test_over_train"], 2)
    return rows


def _about(experiment: dict) -> dict[str, str]:
    results, config, versions = (experiment[k] or {} for k in ("results", "config", "versions"))
    wall = (results.get("timings") or {}).get("total_s")
    return {
        "seeds": str(len(results.get("seeds", ()))),
        "wall time": f"{wall / 60:.1f} min" if wall else "–",
        "preset, profile": f"{config.get('preset', '–')}, {config.get('profile') or 'none'}",
        "machine": (
            f"{versions.get('cpu_model', '?')}, {versions.get('cpus_used', '?')} CPU, "
            f"jax {versions.get('jax', '?')}"
        ),
    }


def _experiments(run: Path) -> list[dict]:
    """The experiments of a run directory, or of one results.json file (checked as the report
    checks a run's)."""
    if run.is_file():
        results = json.loads(run.read_text())
        _check_results(run, results)
        return [
            {
                "name": results["experiment"],
                "dir": run.parent,
                "results": results,
                "config": results.get("config"),
                "versions": results.get("versions"),
            }
        ]
    return _read_run(run)[1]


def tables(runs: list[tuple[str, Path]]) -> str:
    """One markdown table per experiment found in the runs, a column per label (a label may
    name runs of different experiments)."""
    by_name: dict[str, dict[str, dict]] = {}
    for label, run in runs:
        for experiment in _experiments(run):
            if experiment["results"] is not None:
                by_name.setdefault(experiment["name"], {})[label] = experiment
    out = []
    for name, found in by_name.items():
        labels = list(found)
        rows: dict[str, dict[str, str]] = {}
        published: dict[str, str] = {}
        for label, experiment in found.items():
            for finding, ours, theirs in _headline_rows(experiment):
                rows.setdefault(finding, {})[label] = str(ours)
                published[finding] = str(theirs)
            for part in (_detail_rows(name, experiment["results"]), _about(experiment)):
                for key, cell in part.items():
                    rows.setdefault(key, {})[label] = cell
        lines = [
            f"### {name}",
            "",
            "| | " + " | ".join(f"`{label}`" for label in labels) + " | published |",
            "|---|" + "---:|" * (len(labels) + 1),
        ]
        for key, cells in rows.items():
            theirs = published.get(key, "")
            theirs = "" if theirs in ("None", "–") else theirs
            lines.append(
                f"| {key} | "
                + " | ".join(cells.get(label, "–") for label in labels)
                + f" | {theirs} |"
            )
        out.append("\n".join(lines))
    return "\n\n".join(out)


def main(arguments: list[str]) -> None:
    runs = []
    for argument in arguments:
        label, separator, path = argument.partition("=")
        if not separator or not label or not path:
            raise SystemExit(f"expected LABEL=RUN_DIR, got {argument!r}")
        runs.append((label, Path(path)))
    if not runs:
        raise SystemExit(__doc__)
    print(tables(runs))


if __name__ == "__main__":
    main(sys.argv[1:])
