"""Tiny end-to-end runs of `internalize reproduce ood` and of the layouts protocol: the run
directory, the shape and internal consistency of results.json, and config errors."""

import contextlib
import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from internalize.cli import main
from internalize.experiments.generalization import (
    CONDITIONS,
    GeneralizationConfig,
    run_generalization,
)
from internalize.learners.ppo import METRIC_NAMES

SEEDS = 2
STEPS = "4096"  # two fast-preset rollouts per phase


@pytest.fixture(scope="module")
def ood_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ood") / "run"
    argv = ["reproduce", "ood", "--seeds", str(SEEDS), "--out", str(out), "--quiet"]
    for option in ("--socialize-steps", "--frozen-steps", "--transfer-steps"):
        argv += [option, STEPS]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(argv)
    return out, code, json.loads(stdout.getvalue())


@pytest.fixture(scope="module")
def two_task_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("layouts") / "run"
    config = GeneralizationConfig(
        seeds=SEEDS,
        socialize_steps=4096,
        frozen_steps=2048,
        transfer_steps=2048,
        tasks=("plus", "four_rooms"),
        eval_episodes=8,
        isr_threshold=None,
    )
    return out, run_generalization(config, out, "layouts", progress=False)


def test_ood_writes_its_run_directory(ood_run):
    out, code, printed = ood_run
    assert code == 0
    assert {path.name for path in out.iterdir()} == {
        "config.json",
        "versions.json",
        "metrics.csv",
        "ood.png",
        "results.json",
    }
    assert printed["experiment"] == "ood" and set(printed["summary"]) == set(CONDITIONS)
    assert set(printed["tests"]) == {"isr vs frozen", "isr vs oracle", "oracle vs frozen"}
    with Image.open(out / "ood.png") as image:
        assert image.size[0] > 500


def test_ood_results_are_consistent(ood_run):
    out, *_ = ood_run
    results = json.loads((out / "results.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["isr_threshold"] == 0.2 and config["eval_episodes"] == 100
    assert results["tasks"] == ["random"]
    assert results["published"]["return"]["isr"] == {"mean": 0.630, "se": 0.027}
    for condition in CONDITIONS:
        returns = results["conditions"][condition]["return"]
        goals = results["conditions"][condition]["goals_per_episode"]
        assert len(returns) == len(goals) == SEEDS
        # A return is 0.4 per goal minus 0.045 per other forward move: never above 0.4 * goals.
        assert all(r <= 0.4 * g + 1e-6 for r, g in zip(returns, goals, strict=True))
        summary = results["summary"][condition]["return"]
        assert summary["mean"] == pytest.approx(np.mean(returns))
        assert summary["se"] == pytest.approx(np.std(returns, ddof=1) / np.sqrt(SEEDS))
    test = results["tests"]["isr vs frozen"]
    isr, frozen = (np.asarray(results["conditions"][c]["return"]) for c in ("isr", "frozen"))
    assert test["difference"] == pytest.approx(isr.mean() - frozen.mean())
    assert 0.0 <= test["p_value"] <= 1.0
    ratio = results["return_ratio_to_oracle"]["isr/oracle"]
    oracle = results["summary"]["oracle"]["return"]["mean"]
    assert ratio == (pytest.approx(isr.mean() / oracle) if oracle > 0 else None)


def test_ood_metrics_table(ood_run):
    out, *_ = ood_run
    with (out / "metrics.csv").open(newline="") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
    assert reader.fieldnames == ["seed", "phase", "condition", "task", "update", *METRIC_NAMES]
    counts = {}
    for row in rows:
        key = (row["phase"], row["condition"], row["task"])
        counts[key] = counts.get(key, 0) + 1
    assert counts == {
        ("socialization", "socialization", "train"): SEEDS * 2,
        ("frozen", "frozen", "train"): SEEDS * 2,
        ("transfer", "oracle", "random"): SEEDS * 2,
        ("transfer", "isr", "random"): SEEDS * 2,
    }
    # The transfer continues the socialized run's clock: its first rollout ends at 3 * 2048.
    transfer = [r for r in rows if r["phase"] == "transfer" and r["update"] == "0"]
    assert all(float(r["step"]) == 3 * 2048 for r in transfer)


def test_several_tasks_are_pooled_with_a_task_effect(two_task_run):
    out, results = two_task_run
    assert (out / "layouts.png").exists() and (out / "results.json").exists()
    assert set(results["per_task"]) == {"plus", "four_rooms"}
    pooled = results["pooled"]
    assert set(pooled["tests"]) == {"isr vs frozen", "isr vs oracle", "oracle vs frozen"}
    test = pooled["tests"]["isr vs frozen"]
    assert test["test"] == "ols_block_fixed_effect"
    assert test["n_a"] == test["n_b"] == 2 * SEEDS
    # Balanced design: the pooled coefficient is the plain difference of means.
    per_task = results["per_task"]
    isr = np.mean([per_task[t]["conditions"]["isr"]["return"] for t in per_task])
    frozen = np.mean([per_task[t]["conditions"]["frozen"]["return"] for t in per_task])
    assert test["difference"] == pytest.approx(isr - frozen, abs=1e-6)
    assert pooled["mean_return"]["isr"] == pytest.approx(isr, abs=1e-6)


def test_every_condition_is_evaluated_on_the_task_it_names(two_task_run):
    """four rooms and plus differ: a condition's per-task numbers are not all equal."""
    _, results = two_task_run
    per_task = results["per_task"]
    for condition in CONDITIONS:
        plus = per_task["plus"]["conditions"][condition]["goals_per_episode"]
        rooms = per_task["four_rooms"]["conditions"][condition]["goals_per_episode"]
        assert plus != rooms


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tasks": ()}, "tasks is empty"),
        ({"tasks": ("random", "spiral")}, r"unknown task\(s\) \['spiral'\]"),
        ({"tasks": ("plus", "plus")}, "tasks repeat"),
        ({"transfer_steps": 0}, "transfer_steps must be >= 1"),
        ({"eval_episodes": -1}, "eval_episodes must be >= 1"),
        ({"test_blocks": 30}, "n_blocks=30 is impossible"),
        ({"seeds": 0}, "seeds must be >= 1"),
    ],
)
def test_config_errors_name_the_problem(changes, message):
    with pytest.raises(ValueError, match=message):
        GeneralizationConfig(**changes)


def test_cli_rejects_a_bad_threshold(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "ood", "--isr-threshold", "high"])
    assert exit_info.value.code == 2
    assert "expected a number or 'none'" in capsys.readouterr().err
