"""The one runner: what it writes around an experiment's phases and analysis, and in what order.

A protocol of no training at all (its phases are a sum) keeps these tests fast; the experiments
themselves run through the same runner in their own tests.
"""

import json
from dataclasses import dataclass

import numpy as np
import pytest

from internalize.experiments import registry
from internalize.experiments.common import LOCK_FILE, ExperimentConfig
from internalize.experiments.compiled import Timing
from internalize.experiments.runner import Protocol, planned_steps, run_experiment


@dataclass(frozen=True)
class CountConfig(ExperimentConfig):
    count: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("count")


class Count(Protocol):
    """Sums each seed's key data `count` times; fails in its analysis if asked to."""

    fail_in_analysis = False

    def describe(self) -> dict:
        return {"doubled": 2 * self.config.count}

    def planned_steps(self) -> int:
        return self.config.count * self.config.seeds

    def phases(self, run):
        run.progress.advance(self.planned_steps())
        data = np.asarray(run.key_runs.shape[0] * [self.config.count])
        return run.timed("count", (data, Timing(run_s=0.5, steps=self.planned_steps())))

    def analyse(self, counts, run):
        run.write_csv("counts.csv", ["seed", "count"], zip(run.seeds, counts.tolist(), strict=True))
        if self.fail_in_analysis:
            raise RuntimeError("analysis failed")
        return {"counts": counts.tolist()}


@pytest.fixture
def counting(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    return registry.register(
        registry.Experiment("count", __name__, CountConfig, Count, "Count", "count", "")
    )


def test_the_runner_writes_the_run_directory_around_the_protocol(counting, tmp_path):
    config = CountConfig(seeds=2, first_seed=7)
    assert planned_steps("count", config) == 6
    results = run_experiment("count", config, tmp_path / "run", progress=False)
    assert results["counts"] == [3, 3] and results["seeds"] == [7, 8]
    assert results["experiment"] == "count" and results["preset"] == "fast"
    assert results["timings"]["count"]["steps_per_second"] == 12.0
    assert results["timings"]["total_s"] > 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved == json.loads(json.dumps(results["config"]))  # tuples become lists
    assert (saved["count"], saved["doubled"], saved["seed_list"]) == (3, 6, [7, 8])
    assert saved["ppo"]["network"] == "mlp"  # the preset's settings, resolved
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == json.loads(
        json.dumps(results)
    )
    assert {path.name for path in (tmp_path / "run").iterdir()} == {
        "config.json",
        "versions.json",
        "counts.csv",
        "results.json",
    }


def test_a_failing_analysis_leaves_what_it_wrote_and_no_results(counting, tmp_path, monkeypatch):
    monkeypatch.setattr(Count, "fail_in_analysis", True)
    with pytest.raises(RuntimeError, match="analysis failed"):
        run_experiment("count", CountConfig(seeds=1), tmp_path / "run", progress=False)
    written = {path.name for path in (tmp_path / "run").iterdir()}
    assert written == {"config.json", "versions.json", "counts.csv"}
    # An interrupted run is refused, not written into.
    with pytest.raises(ValueError, match="not empty"):
        run_experiment("count", CountConfig(seeds=1), tmp_path / "run", progress=False)
    assert {path.name for path in (tmp_path / "run").iterdir()} == written


def test_a_refused_setting_writes_nothing(counting, tmp_path):
    class Refusing(Count):
        def __init__(self, name, config):
            super().__init__(name, config)
            raise ValueError("count is too small for this protocol")

    registry.register(registry.Experiment("refusing", __name__, CountConfig, Refusing, "", "", ""))
    with pytest.raises(ValueError, match="too small"):
        run_experiment("refusing", CountConfig(), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_FILE).write_text("")  # a lock file alone is still an empty run
    run_experiment("count", CountConfig(seeds=1), tmp_path / "run", progress=False)


def test_a_phase_must_return_its_timing_last(counting, tmp_path, monkeypatch):
    monkeypatch.setattr(Count, "phases", lambda self, run: run.timed("count", (1, 2)))
    with pytest.raises(TypeError, match="phase 'count' returned no Timing last"):
        run_experiment("count", CountConfig(seeds=1), tmp_path / "run", progress=False)
