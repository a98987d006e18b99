"""`internalize sweep`: one experiment over a grid of settings, each cell an ordinary run.

    internalize sweep retention --grid ppo.learning_rate=1e-4,3e-4 --grid schedule=two_phase,fading

A sweep directory holds `config.json` (the experiment, the grid and every cell's resolved
settings; written first), `cells/cell-NNN/` (one ordinary run directory per cell, in the order of
the grid's product, the last key varying fastest), and, once every cell has finished, `table.csv`
(per cell and per-seed metric: its settings, n, mean, standard error and 95% bootstrap interval
over seeds), one figure per swept setting (`METRIC_against_KEY.png`: the experiment's headline
metrics against the setting, one line per value of the other settings, with their intervals as
bands) and `sweep.json`, written last. `internalize report SWEEP_DIR` renders it.

Every cell's settings are checked before anything runs: an unknown key, a value of the wrong
type, an empty list of values or a cell that the experiment refuses (more samples than it
collects, say) is a named error. Running the same command again resumes: finished cells (with
`results.json`) are kept, interrupted ones are removed and run again; a changed grid or changed
settings are refused.

Backends: `local` runs the cells in this process, inside `shared_phases`, so cells that differ
only in later phases share their earlier ones, and cells whose protocol can (`Protocol.batch_key`:
retention and prosocial, for cells that differ only in `isr_threshold` and `schedule`) compute
their phases together: one socialization and ISR, and the autonomy of every cell in the same
compiled calls over one run axis, compiled once. `ray` runs each cell as a Ray task
(`internalize.backends.ray`).
"""

import dataclasses
import itertools
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np

from internalize.experiments import registry, runner
from internalize.experiments.common import (
    RESULTS_FILE,
    ExperimentConfig,
    Progress,
    RunDirectory,
    SharedProgress,
    read_json_object,
    record_failure,
    run_files,
    save_figure,
    write_csv,
    write_json,
)
from internalize.stats import summarize

BACKENDS = ("local", "ray")
SWEEP_FILE = "sweep.json"
TABLE_FILE = "table.csv"
CELLS = "cells"


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its settings (swept key -> value, as given) and its config."""

    index: int
    settings: dict[str, str]
    config: ExperimentConfig

    @property
    def name(self) -> str:
        return f"cell-{self.index:03d}"


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """`["a.b=1,2", "c=x"]` as `{"a.b": ["1", "2"], "c": ["x"]}`; ValueError naming a bad item
    (no `=`, an empty key or value, a key given twice)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, equals, text = item.partition("=")
        key = key.strip()
        values = [value.strip() for value in text.split(",")]
        if not equals or not key:
            raise ValueError(
                f"--grid takes KEY=V1,V2,... (e.g. ppo.learning_rate=1e-4,3e-4), got {item!r}"
            )
        if not text.strip() or not all(values):
            raise ValueError(f"--grid {key}: an empty value in {text!r}; give V1,V2,...")
        if key in grid:
            raise ValueError(f"--grid {key} is given twice; give all its values in one --grid")
        if len(set(values)) != len(values):
            raise ValueError(f"--grid {key} repeats a value: {values}")
        grid[key] = values
    if not grid:
        raise ValueError("a sweep needs at least one --grid KEY=V1,V2,...")
    return grid


def make_cells(
    experiment: str,
    grid: dict[str, list[str]],
    file: str | os.PathLike | None = None,
    options: dict[str, Any] | None = None,
    assignments: Sequence[str] = (),
) -> list[Cell]:
    """Every cell of `grid` over the settings of `file`, `options` and `assignments` (as
    `reproduce` takes them), each checked by its experiment's protocol; ValueError naming the
    cell and what is wrong with it."""
    from internalize.experiments.configs import resolve_config

    registry.get(experiment)  # an unknown experiment, named
    cells = []
    for index, values in enumerate(itertools.product(*grid.values())):
        settings = dict(zip(grid, values, strict=True))
        swept = [f"{key}={value}" for key, value in settings.items()]
        try:
            config = resolve_config(experiment, file, options, [*assignments, *swept])
            runner.protocol(experiment, config)  # the experiment's own checks
        except ValueError as error:
            raise ValueError(f"grid cell {', '.join(swept)}: {error}") from None
        cells.append(Cell(index, settings, config))
    return cells


def _resolved(experiment: str, grid: dict, cells: list[Cell]) -> dict:
    cells_saved = [
        {"name": cell.name, "settings": cell.settings, "config": dataclasses.asdict(cell.config)}
        for cell in cells
    ]
    return json.loads(
        json.dumps({"experiment": "sweep", "swept": experiment, "grid": grid, "cells": cells_saved})
    )


def _open(out: Path, resolved: dict) -> None:
    """Start the sweep directory `out`, or check that it was started with the same grid and
    settings; remove its interrupted cells (those without results.json)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    if not out.is_dir() or not run_files(out):
        RunDirectory(out).write_json("config.json", resolved)
        return
    saved = read_json_object(out / "config.json") if (out / "config.json").is_file() else {}
    if saved.get("experiment") != "sweep":
        raise ValueError(f"{out} is not empty and is not a sweep; choose another --out")
    if saved.get("swept") != resolved["swept"]:
        raise ValueError(
            f"{out} is a sweep of {saved.get('swept')!r}, not of {resolved['swept']!r}"
        )
    if saved.get("grid") != resolved["grid"]:
        raise ValueError(
            f"{out} was started with another grid {saved.get('grid')}; resume it with that "
            "grid or choose another --out"
        )
    if saved.get("cells") != resolved["cells"]:
        differ = [
            cell["name"]
            for cell, other in zip(resolved["cells"], saved.get("cells", []), strict=False)
            if cell != other
        ]
        raise ValueError(
            f"{out} was started with other settings (cells {differ}); resume it with those "
            "or choose another --out"
        )
    for cell in resolved["cells"]:
        directory = out / CELLS / cell["name"]
        if directory.exists() and not (directory / RESULTS_FILE).is_file():
            shutil.rmtree(directory)


class _CellProgress(SharedProgress):
    """A cell's view of the sweep's one bar: its phases named with the cell."""

    def __init__(self, cell: str, bar: Progress) -> None:
        super().__init__(cell, self._send)
        self.bar = bar

    def _send(self, message) -> None:
        cell, kind, value = message
        if kind == "phase":
            self.bar.phase(f"{cell}: {value}")
        else:
            self.bar.advance(value)


def _run_local(experiment: str, cells: list[Cell], root: Path, bar: Progress, status: dict):
    """The cells one group after another: cells whose protocols may compute their phases
    together (`Protocol.batch_key`) do so, in one compiled call each phase."""
    from internalize.experiments.sharing import shared_phases

    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        key = runner.protocol(experiment, cell.config).batch_key()
        groups.setdefault(cell.name if key is None else repr(key), []).append(cell)
    with shared_phases():
        for group in groups.values():
            label = group[0].name if len(group) == 1 else f"{group[0].name}..{group[-1].name}"
            try:
                runner.run_together(
                    experiment,
                    [cell.config for cell in group],
                    [root / cell.name for cell in group],
                    _CellProgress(label, bar),
                )
            except Exception as error:  # the next group runs; these are reported failed
                for cell in group:
                    if (root / cell.name / RESULTS_FILE).is_file():
                        status[cell.name] = "finished"
                    else:
                        status[cell.name] = record_failure(root / cell.name, error)
                continue
            status.update({cell.name: "finished" for cell in group})


def _run_ray(
    experiment: str,
    cells: list[Cell],
    root: Path,
    bar: Progress,
    status: dict,
    address: str | None,
) -> None:
    from internalize.backends import ray as ray_backend

    steps = {cell.name: runner.planned_steps(experiment, cell.config) for cell in cells}
    bar.phase(f"{len(cells)} cells on Ray")

    def done(out: Path, error: BaseException | None) -> None:
        bar.advance(steps[out.name])
        if error is None:
            status[out.name] = "finished"
        else:
            status[out.name] = record_failure(out, error)

    ray_backend.run_all(
        [(experiment, cell.config, root / cell.name) for cell in cells], address, done
    )


def run_sweep(
    experiment: str,
    grid: dict[str, list[str]],
    cells: list[Cell],
    out: str | os.PathLike,
    backend: str = "local",
    address: str | None = None,
    progress: bool = True,
) -> dict:
    """Run every unfinished cell into `out` (new, or a sweep of the same grid to resume), then
    write the table, figures and `sweep.json`; returns what `sweep.json` holds."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {list(BACKENDS)}")
    started = time.perf_counter()
    out = Path(out)
    _open(out, _resolved(experiment, grid, cells))
    root = out / CELLS
    root.mkdir(exist_ok=True)
    status = {
        cell.name: "finished" for cell in cells if (root / cell.name / RESULTS_FILE).is_file()
    }
    pending = [cell for cell in cells if cell.name not in status]
    total = sum(runner.planned_steps(experiment, cell.config) for cell in pending)
    bar = Progress(total, enabled=progress)
    try:
        if backend == "local":
            _run_local(experiment, pending, root, bar, status)
        else:
            _run_ray(experiment, pending, root, bar, status, address)
    finally:
        bar.close()
    status = {cell.name: status[cell.name] for cell in cells}
    summary = {"experiment": experiment, "grid": grid, "status": status}
    if all(text == "finished" for text in status.values()):
        summary.update(_analyse(experiment, grid, cells, out))
    summary["wall_s"] = time.perf_counter() - started
    if all(text == "finished" for text in status.values()):
        write_json(out / SWEEP_FILE, summary)
    return summary


def seed_metrics(results: dict) -> dict[str, list[float]]:
    """Every per-seed number of a run's `results.json`: lists of one number per seed (lists of
    such lists are split by position, `NAME/i`), named by their path (`oracle/goals_per_episode`
    for `conditions`, the rest by the full path: `isr_model/test_mse`)."""
    seeds = len(results["seeds"])
    skipped = {"seeds", "config", "versions", "timings", "published", "example_episode"}
    found: dict[str, list[float]] = {}

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def walk(tree: Any, path: tuple[str, ...]) -> None:
        if isinstance(tree, dict):
            for key, value in tree.items():
                walk(value, (*path, str(key)))
        elif isinstance(tree, list) and len(tree) == seeds and tree:
            if all(number(value) for value in tree):
                found["/".join(path)] = [float(value) for value in tree]
            elif all(isinstance(row, list) and all(number(v) for v in row) for row in tree):
                for i, column in enumerate(zip(*tree, strict=False)):
                    found["/".join((*path, str(i)))] = [float(value) for value in column]

    for key, value in results.items():
        if key not in skipped:
            walk(value, () if key == "conditions" else (key,))
    return found


def _analyse(experiment: str, grid: dict, cells: list[Cell], out: Path) -> dict:
    """`table.csv` and the figures of finished cells; returns what sweep.json adds."""
    rows, per_cell = [], []
    for cell in cells:
        results = read_json_object(out / CELLS / cell.name / RESULTS_FILE)
        metrics = {
            name: summarize(values).as_dict() for name, values in seed_metrics(results).items()
        }
        per_cell.append({"name": cell.name, "settings": cell.settings, "metrics": metrics})
        for name, summary in metrics.items():
            rows.append(
                [
                    cell.name,
                    *cell.settings.values(),
                    name,
                    summary["n"],
                    summary["mean"],
                    summary["se"],
                    summary["ci_low"],
                    summary["ci_high"],
                ]
            )
    columns = ["cell", *grid, "metric", "n", "mean", "se", "ci_low", "ci_high"]
    write_csv(out / TABLE_FILE, columns, rows)
    headline = _headline(experiment, per_cell)
    figures = [
        _figure(out, key, grid, per_cell, headline)
        for key in grid
        if len(grid[key]) > 1 or len(grid) == 1
    ]
    return {"table": TABLE_FILE, "headline": headline, "figures": figures, "cells": per_cell}


def _headline(experiment: str, per_cell: list[dict]) -> list[str]:
    """The metrics the figures show: those matching the experiment's `headline` patterns."""
    patterns = registry.get(experiment).headline
    names = list(per_cell[0]["metrics"])
    return [name for name in names if any(fnmatch(name, pattern) for pattern in patterns)]


def _figure(out: Path, key: str, grid: dict, per_cell: list[dict], headline: list[str]) -> str:
    """`against_KEY.png`: each headline metric (one panel each) against the values of `key`,
    one line per combination of the other settings, bands the 95% intervals."""
    from internalize.plots import sweep_figure

    others = [other for other in grid if other != key]
    lines: dict[str, list[dict]] = {}
    for cell in per_cell:
        label = ", ".join(f"{other}={cell['settings'][other]}" for other in others) or key
        lines.setdefault(label, []).append(cell)
    panels = {
        metric: {
            label: (
                [cell["settings"][key] for cell in members],
                np.asarray(
                    [
                        [cell["metrics"][metric][field] for field in ("mean", "ci_low", "ci_high")]
                        for cell in members
                    ],
                    dtype=float,
                ),
            )
            for label, members in lines.items()
        }
        for metric in headline
    }
    name = f"against_{key}.png"
    figure = sweep_figure(
        panels, key, title=f"{len(per_cell)} cells, mean and 95% interval over seeds"
    )
    save_figure(out / name, figure)
    return name
