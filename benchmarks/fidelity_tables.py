"""Print runs of the same experiments side by side with the published numbers (markdown).

    python benchmarks/fidelity_tables.py paper=runs/ood-paper original=runs/ood-original ...

Each argument is LABEL=RUN_DIR, a finished run of one experiment (`internalize reproduce NAME`)
or an `all` run, or LABEL=RESULTS_JSON, a run's `results.json` kept on its own (it holds the
run's config and versions; benchmarks/results/fidelity/). LABEL=A.json+B.json takes runs of
ood, layouts, retention or prosocial with the same settings on other seeds as one run: their
per-seed numbers side by side, the summaries and tests computed again by the experiment's own
analysis (each seed's numbers do not depend on the others run with it). Per experiment, one
table: the report's headline rows, each condition's main numbers (per layout for `layouts`,
per data size for `scaling`), seeds, wall time, preset, profile and machine, one column per
label, then the published number. Issue 17's comparison of the paper's model with
`--profile original` (docs/fidelity.md) is printed by it.
"""

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from internalize.experiments import generalization
from internalize.experiments.prosocial import Prosocial
from internalize.experiments.retention import Retention
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


SEEDS = ("seeds", "first_seed", "seed_list")
"""The config keys that may differ between runs combined into one."""


def _read_results(path: Path) -> dict:
    results = json.loads(path.read_text())
    _check_results(path, results)
    return results


AUTONOMY = {"retention": Retention, "prosocial": Prosocial}
"""The experiments of retention's protocol whose runs combine: their own analysis of the
per-seed numbers (`condition_numbers`)."""
COMBINABLE = ("ood", "layouts", *AUTONOMY)
OF_THE_FIRST = ("published", "reward_map", "example_episode")
"""What a combined run takes from its first run: the published numbers, and what the
experiment shows of its first seed only."""


def _generalization_numbers(parts: list[dict]) -> dict:
    """ood's or layouts' per-task summaries and tests, and layouts' pooled ones."""
    first = parts[0]
    tasks = first["tasks"]

    def seed_major(key: str) -> np.ndarray:
        """float32[conditions, tasks, seeds] of one per-seed metric (float32 as the run's)."""
        blocks = []
        for part in parts:
            found = [part["per_task"][t] if "per_task" in part else part for t in tasks]
            blocks.append(
                [[task["conditions"][c][key] for task in found] for c in generalization.CONDITIONS]
            )
        return np.concatenate(blocks, axis=2, dtype=np.float32)

    returns, goals = seed_major("return"), seed_major("goals_per_episode")
    per_task = {
        task: generalization._task_results(returns[:, t], goals[:, t])
        for t, task in enumerate(tasks)
    }
    if "per_task" in first:
        return {
            "tasks": tasks,
            "per_task": per_task,
            "pooled": generalization._pooled_results(returns, tuple(tasks)),
        }
    return {"tasks": tasks, **per_task[tasks[0]]}


def _isr_model(parts: list[dict]) -> dict:
    """Per-seed lists side by side; a number (the ISR's sample counts) is every run's."""
    merged = {}
    for key, value in parts[0]["isr_model"].items():
        values = [part["isr_model"][key] for part in parts]
        if isinstance(value, list):
            merged[key] = [v for part_values in values for v in part_values]
        elif all(v == value for v in values):
            merged[key] = value
        else:
            raise SystemExit(f"the runs' isr_model.{key} differ: {values}")
    return merged


def combined(paths: list[Path]) -> dict:
    """One results.json of ood, layouts, retention or prosocial from `paths`, runs of the same
    settings on disjoint seeds, in their order."""
    parts = [_read_results(path) for path in paths]
    first = parts[0]
    name = first["experiment"]
    if name not in COMBINABLE:
        raise SystemExit(
            f"{paths[0]}: runs of {name} cannot be combined (only {', '.join(COMBINABLE)})"
        )
    settings = {k: v for k, v in first["config"].items() if k not in SEEDS}
    seeds = [seed for part in parts for seed in part["seeds"]]
    for path, part in zip(paths, parts, strict=True):
        differ = sorted(
            key
            for key in {*settings, *part["config"]} - set(SEEDS)
            if part["config"].get(key) != settings.get(key)
        )
        if differ:
            raise SystemExit(f"{path}: other settings than {paths[0]}'s: {', '.join(differ)}")
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"the runs share seeds: {sorted(seeds)}")

    numbers = {"experiment": name, "preset": first["preset"], "seeds": seeds}
    if name in AUTONOMY:
        per_seed = {
            condition: {
                metric: [value for part in parts for value in part["conditions"][condition][metric]]
                for metric in metrics
            }
            for condition, metrics in first["conditions"].items()
        }
        numbers.update(AUTONOMY[name].condition_numbers(per_seed))
    else:
        numbers.update(_generalization_numbers(parts))
    numbers.update({key: first[key] for key in OF_THE_FIRST if key in first})
    numbers["socialization"] = {
        metric: [value for part in parts for value in part["socialization"][metric]]
        for metric in first["socialization"]
    }
    numbers["isr_model"] = _isr_model(parts)
    numbers["config"] = {**first["config"], "seeds": len(seeds), "seed_list": seeds}
    machines = {json.dumps(part["versions"], sort_keys=True): part["versions"] for part in parts}
    numbers["versions"] = {
        key: " / ".join(dict.fromkeys(str(v.get(key, "?")) for v in machines.values()))
        for key in dict.fromkeys(key for v in machines.values() for key in v)
    }
    numbers["timings"] = {"total_s": sum(part["timings"]["total_s"] for part in parts)}
    return numbers


def _experiments(run: Path | list[Path]) -> list[dict]:
    """The experiments of a run directory, of one results.json file (checked as the report
    checks a run's), or of several combined."""
    if isinstance(run, list) or run.is_file():
        results = combined(run) if isinstance(run, list) else _read_results(run)
        return [
            {
                "name": results["experiment"],
                "dir": (run[0] if isinstance(run, list) else run).parent,
                "results": results,
                "config": results.get("config"),
                "versions": results.get("versions"),
            }
        ]
    return _read_run(run)[1]


def tables(runs: list[tuple[str, Path | list[Path]]]) -> str:
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
        paths = [Path(part) for part in path.split("+")]
        runs.append((label, paths if len(paths) > 1 else paths[0]))
    if not runs:
        raise SystemExit(__doc__)
    print(tables(runs))


if __name__ == "__main__":
    main(sys.argv[1:])
