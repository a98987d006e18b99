"""`internalize export`: a run's curves as TensorBoard event files (read back by TensorBoard's
own reader) and as W&B offline runs (no network)."""

import csv
import json

import pytest

from internalize.cli import main
from internalize.export import curves, run_directories, to_tensorboard, to_wandb

COLUMNS = ["seed", "phase", "condition", "update", "step", "goals_per_episode", "looping"]
ROWS = [
    [1234, "socialization", "socialization", 0, 2048.0, 0.25, ""],
    [1234, "socialization", "socialization", 1, 4096.0, 0.5, ""],
    [1234, "autonomy", "isr", 0, 6144.0, 0.75, 0.125],
    [1235, "autonomy", "isr", 0, 6144.0, 1.5, 0.0],
]


@pytest.fixture
def run_dir(tmp_path):
    """An `all` run of one experiment with a metrics.csv and its config."""
    run = tmp_path / "all" / "hacking"
    run.mkdir(parents=True)
    with open(run / "metrics.csv", "w", newline="") as file:
        csv.writer(file).writerows([COLUMNS, *ROWS])
    (run / "config.json").write_text(json.dumps({"experiment": "hacking", "seeds": 2}))
    return tmp_path / "all"


def test_curves_are_one_per_seed_phase_and_condition(run_dir):
    assert run_directories(run_dir) == [("hacking", run_dir / "hacking")]
    found = curves(run_dir / "hacking" / "metrics.csv")
    assert found == {
        "seed1234/socialization/socialization": [
            (2048, {"goals_per_episode": 0.25}),  # an empty cell is not measured
            (4096, {"goals_per_episode": 0.5}),
        ],
        "seed1234/autonomy/isr": [(6144, {"goals_per_episode": 0.75, "looping": 0.125})],
        "seed1235/autonomy/isr": [(6144, {"goals_per_episode": 1.5, "looping": 0.0})],
    }


def test_tensorboard_reads_the_event_files(run_dir, tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    files = to_tensorboard(run_dir, tmp_path / "tb")
    assert len(files) == 3
    folder = tmp_path / "tb" / "hacking" / "seed1234" / "socialization" / "socialization"
    reader = accumulator.EventAccumulator(str(folder))
    reader.Reload()
    assert reader.Tags()["scalars"] == ["goals_per_episode"]
    scalars = reader.Scalars("goals_per_episode")
    assert [(event.step, event.value) for event in scalars] == [(2048, 0.25), (4096, 0.5)]
    reader = accumulator.EventAccumulator(str(folder.parents[1] / "autonomy" / "isr"))
    reader.Reload()
    assert [(e.step, e.value) for e in reader.Scalars("looping")] == [(6144, 0.125)]


def test_wandb_offline_runs_hold_each_curve(run_dir, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    folders = to_wandb(run_dir, tmp_path / "wb")
    assert len(folders) == 3
    names = set()
    for folder in folders:
        (log,) = folder.glob("run-*.wandb")
        data = log.read_bytes()
        assert b"goals_per_episode" in data
        names |= {name for name in curves(run_dir / "hacking/metrics.csv") if name.encode() in data}
    assert len(names) == 3  # each curve's name is in one of the runs


def test_the_command(run_dir, tmp_path, capsys):
    assert main(["export", str(run_dir), "--tensorboard", str(tmp_path / "tb")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["tensorboard"]["event_files"] == 3
    assert main(["export", str(run_dir)]) == 2
    assert "needs --tensorboard DIR and/or --wandb DIR" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "tb"), "--tensorboard", str(tmp_path / "x")]) == 2
    assert "holds no metrics.csv" in capsys.readouterr().err
