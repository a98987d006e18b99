"""`internalize sweep`: grids, cells, the table and figures, resuming, and the Ray backend on a
real local Ray cluster (started here, on 127.0.0.1).

Most tests sweep `count`, an experiment of no training registered here (its per-seed numbers are
a function of the seed and its settings), so that they test the sweep, not learning; a slow test
sweeps a tiny real retention on Ray against the local backend.
"""

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from internalize.cli import main
from internalize.experiments import registry
from internalize.experiments.common import ExperimentConfig
from internalize.experiments.compiled import Timing
from internalize.experiments.runner import Protocol
from internalize.stats import summarize
from internalize.sweep import make_cells, parse_grid, run_sweep, seed_metrics


@dataclass(frozen=True)
class CountConfig(ExperimentConfig):
    scale: float = 1.0
    offset: int = 0
    hold: str = ""
    """A folder: the first attempt of each cell writes its PID there and waits to be killed."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.offset > 100:
            raise ValueError(f"offset must be at most 100, got {self.offset}")


class Count(Protocol):
    def planned_steps(self) -> int:
        return 10 * self.config.seeds

    def phases(self, run):
        config = self.config
        if config.hold:
            marker = Path(config.hold) / f"{config.scale}-{config.offset}"
            if not marker.exists():  # the first attempt: wait to be killed
                marker.write_text(str(os.getpid()))
                time.sleep(120)
                raise RuntimeError("the first attempt was not killed")
        run.progress.advance(self.planned_steps())
        values = np.asarray([seed % 7 for seed in run.seeds]) * config.scale + config.offset
        return run.timed("count", (values, Timing(run_s=0.1)))

    def analyse(self, values, run):
        run.write_csv("values.csv", ["seed", "value"], zip(run.seeds, values, strict=True))
        return {"conditions": {"a": {"value": values.tolist(), "twice": (2 * values).tolist()}}}


RECORD = registry.Experiment(
    "count", __name__, CountConfig, Count, "Count", "count", "", headline=("*/value",)
)


@pytest.fixture(autouse=True)
def counting(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", {**registry.REGISTRY, "count": RECORD})


GRID = {"scale": ["1", "2.5"], "offset": ["0", "3"]}


def _sweep(out, backend="local", grid=GRID, **settings):
    cells = make_cells("count", grid, options={"seeds": 3, **settings})
    return run_sweep("count", grid, cells, out, backend=backend, progress=False)


def _cells(out: Path) -> dict[str, dict]:
    """Each cell's results.json numbers (less timings and versions) and its values.csv."""
    found = {}
    for cell in sorted((out / "cells").iterdir()):
        results = json.loads((cell / "results.json").read_text())
        numbers = {k: v for k, v in results.items() if k not in ("timings", "versions")}
        found[cell.name] = (numbers, (cell / "values.csv").read_text())
    return found


# ------------------------------------------------------------------------- grids and cells


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "at least one --grid"),
        (["scale"], "--grid takes KEY=V1,V2"),
        (["=1,2"], "--grid takes KEY=V1,V2"),
        (["scale="], "an empty value"),
        (["scale=1,,2"], "an empty value"),
        (["scale=1", "scale=2"], "given twice"),
        (["scale=1,1"], "repeats a value"),
    ],
)
def test_bad_grids_are_named(items, message):
    with pytest.raises(ValueError, match=message):
        parse_grid(items)


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"bogus": ["1"]}, "grid cell bogus=1: .*bogus"),
        ({"scale": ["1", "big"]}, "grid cell scale=big: .*scale"),
        ({"offset": ["1", "101"]}, "grid cell offset=101: .*at most 100"),
    ],
)
def test_bad_cells_are_named_before_anything_runs(tmp_path, grid, message):
    with pytest.raises(ValueError, match=message):
        make_cells("count", grid)


def test_a_cell_that_exceeds_the_data_is_named():
    """Scaling's protocol refuses more samples than socialization collects."""
    with pytest.raises(ValueError, match="grid cell socialize_steps=4096: .*exceeds"):
        make_cells("scaling", {"socialize_steps": ["4096"]})


def test_cells_are_the_grid_product_the_last_key_fastest():
    cells = make_cells("count", GRID, assignments=["seeds=2"])
    assert [cell.settings for cell in cells] == [
        {"scale": "1", "offset": "0"},
        {"scale": "1", "offset": "3"},
        {"scale": "2.5", "offset": "0"},
        {"scale": "2.5", "offset": "3"},
    ]
    assert [(c.config.scale, c.config.offset, c.config.seeds) for c in cells][-1] == (2.5, 3, 2)


# ------------------------------------------------------------------------- a local sweep


def test_a_sweep_writes_a_run_per_cell_a_table_and_figures(tmp_path):
    out = tmp_path / "sweep"
    summary = _sweep(out)
    assert set(summary["status"].values()) == {"finished"}
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["headline"] == ["a/value"] and saved["figures"] == [
        "against_scale.png",
        "against_offset.png",
    ]
    assert all((out / name).stat().st_size > 0 for name in saved["figures"])
    # Cell 3 is scale 2.5, offset 3; seeds 1234..1236 are 2, 3, 4 modulo 7.
    values = np.asarray([2, 3, 4]) * 2.5 + 3
    with open(out / "table.csv") as table:
        header, *rows = [line.rstrip("\n").split(",") for line in table]
    assert header == ["cell", "scale", "offset", "metric", "n", "mean", "se", "ci_low", "ci_high"]
    row = next(row for row in rows if row[0] == "cell-003" and row[3] == "a/value")
    expected = summarize(values)
    assert row[1:3] == ["2.5", "3"] and int(row[4]) == 3
    assert [float(x) for x in row[5:]] == pytest.approx(
        [expected.mean, expected.se, expected.ci_low, expected.ci_high]
    )
    # Every cell is an ordinary run directory; the sweep's config names every cell's settings.
    config = json.loads((out / "config.json").read_text())
    assert config["cells"][3]["config"]["scale"] == 2.5
    assert json.loads((out / "cells/cell-003/config.json").read_text())["offset"] == 3


def test_seed_metrics_finds_every_per_seed_number():
    results = {
        "seeds": [1, 2],
        "conditions": {"a": {"x": [1.0, 2.0], "flag": [True, False]}},
        "isr_model": {"test_mse": [0.1, 0.2], "curve": [[1, 2, 3], [4, 5, 6]]},
        "timings": {"x": [1.0, 2.0]},
        "example_episode": {"helped": [3, 4]},
    }
    assert seed_metrics(results) == {
        "a/x": [1.0, 2.0],
        "isr_model/test_mse": [0.1, 0.2],
        "isr_model/curve/0": [1.0, 4.0],
        "isr_model/curve/1": [2.0, 5.0],
        "isr_model/curve/2": [3.0, 6.0],
    }


def test_resuming_keeps_finished_cells_and_redoes_interrupted_ones(tmp_path):
    out = tmp_path / "sweep"
    _sweep(out)
    kept = (out / "cells/cell-000/results.json").stat().st_mtime_ns
    # cell-002 interrupted: its results are gone, a stray file remains.
    (out / "cells/cell-002/results.json").unlink()
    (out / "sweep.json").unlink()
    summary = _sweep(out)
    assert set(summary["status"].values()) == {"finished"}
    assert (out / "cells/cell-000/results.json").stat().st_mtime_ns == kept
    assert (out / "cells/cell-002/results.json").is_file() and (out / "sweep.json").is_file()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grid": {"scale": ["1", "3"], "offset": ["0", "3"]}}, "another grid"),
        ({"grid": {"scale": ["1", "2.5"]}}, "another grid"),
        ({"first_seed": 7}, "other settings"),
    ],
)
def test_resuming_with_another_grid_or_settings_is_refused(tmp_path, change, message):
    out = tmp_path / "sweep"
    _sweep(out)
    before = {path: path.stat().st_mtime_ns for path in out.rglob("*")}
    with pytest.raises(ValueError, match=message):
        _sweep(out, **change)
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*")} == before


def test_a_failing_cell_is_reported_and_the_others_finish(tmp_path, monkeypatch):
    original = Count.analyse

    def failing(self, values, run):
        if self.config.offset == 3:
            raise RuntimeError("offset 3 fails")
        return original(self, values, run)

    monkeypatch.setattr(Count, "analyse", failing)
    out = tmp_path / "sweep"
    summary = _sweep(out)
    error_file = out / "cells/cell-001/error.txt"
    expected = f"failed: RuntimeError: offset 3 fails (traceback in {error_file})"
    assert summary["status"]["cell-001"] == expected
    assert summary["status"]["cell-000"] == "finished"
    assert "offset 3 fails" in (out / "cells/cell-001/error.txt").read_text()
    assert not (out / "sweep.json").exists()  # not complete


def test_the_command_and_its_report(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "count", "--grid", "scale=1,2", "--seeds", "2", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == {"cell-000": "finished", "cell-001": "finished"}
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "count over scale ∈ {1, 2}" in page and "a/value" in page
    assert "against_scale.png" in page
    # A bad grid exits 2 naming it, before anything is written.
    assert main([*argv[:3], "scale=1,x", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "grid cell scale=x" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


# ------------------------------------------------------------------------- Ray


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray cluster on 127.0.0.1, two CPUs."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


def test_ray_cells_equal_local_cells(ray_cluster, tmp_path):
    _sweep(tmp_path / "local")
    _sweep(tmp_path / "ray", backend="ray")
    local, remote = _cells(tmp_path / "local"), _cells(tmp_path / "ray")
    assert len(remote) == 4 and remote == local
    assert (tmp_path / "ray/table.csv").read_text() == (tmp_path / "local/table.csv").read_text()


def test_a_ray_worker_killed_mid_task_is_retried_and_nothing_is_lost(ray_cluster, tmp_path):
    hold = tmp_path / "hold"
    hold.mkdir()
    grid = {"scale": ["1", "2"]}
    cells = make_cells("count", grid, options={"seeds": 2, "hold": str(hold)})
    killed = []

    def kill_when_running():
        deadline = time.monotonic() + 60
        while len(killed) < 2 and time.monotonic() < deadline:
            for marker in hold.iterdir():
                if marker.name not in killed and marker.read_text():
                    os.kill(int(marker.read_text()), signal.SIGKILL)
                    killed.append(marker.name)
            time.sleep(0.2)

    import threading

    killer = threading.Thread(target=kill_when_running)
    killer.start()
    summary = run_sweep("count", grid, cells, tmp_path / "sweep", backend="ray", progress=False)
    killer.join()
    assert sorted(killed) == ["1.0-0", "2.0-0"]  # both first attempts died mid-task
    assert set(summary["status"].values()) == {"finished"}
    cells_written = sorted(path.name for path in (tmp_path / "sweep/cells").iterdir())
    assert cells_written == ["cell-000", "cell-001"]  # each once, nothing half-written
    for cell in cells_written:
        assert (tmp_path / "sweep/cells" / cell / "results.json").is_file()


@pytest.mark.slow
def test_a_real_experiment_on_ray_equals_the_local_backend(ray_cluster, tmp_path):
    """Tiny retention cells, two ISR thresholds: every number and metrics.csv row the same."""
    grid = {"isr_threshold": ["0.1", "0.3"]}
    settings = ["seeds=2", "socialize_steps=4096", "autonomy_steps=4096"]
    cells = make_cells("retention", grid, assignments=settings)
    for backend in ("local", "ray"):
        run_sweep("retention", grid, cells, tmp_path / backend, backend=backend, progress=False)
    for cell in ("cell-000", "cell-001"):
        local, remote = (tmp_path / b / "cells" / cell for b in ("local", "ray"))
        assert (local / "metrics.csv").read_bytes() == (remote / "metrics.csv").read_bytes()
        numbers = [json.loads((d / "results.json").read_text()) for d in (local, remote)]
        for results in numbers:
            del results["timings"], results["versions"]
        assert numbers[0] == numbers[1]
