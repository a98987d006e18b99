"""A tiny end-to-end run of `internalize reproduce layouts` (the generalization protocol on every
hand-picked layout): the run directory, results.json's shape and internal consistency, pooling,
and config errors. `ood` is the same code with one task; its finding is in the slow tests."""

import csv
import json

import numpy as np
import pytest
from PIL import Image
from scipy import stats as scipy_stats

from internalize.cli import main
from internalize.experiments.generalization import (
    CONDITIONS,
    LAYOUT_TASKS,
    PUBLISHED,
    GeneralizationConfig,
    _pooled_results,
    _task_results,
)
from internalize.learners.ppo import METRIC_NAMES

SEEDS = 2


@pytest.fixture(scope="module")
def layouts_run(all_run):
    """The layouts experiment of the tiny `reproduce all` run (socialization 40960 steps, frozen
    and transfer 2048): every layout and the pooling."""
    return (all_run / "layouts",)


def read_json(path):
    return json.loads(path.read_text())


def test_layouts_writes_its_run_directory(layouts_run):
    (out,) = layouts_run
    assert {path.name for path in out.iterdir()} == {
        "config.json",
        "versions.json",
        "metrics.csv",
        "layouts.png",
        "checkpoints.msgpack",
        "render",  # GIFs, rendered by `reproduce all`
        "results.json",
    }
    results = read_json(out / "results.json")
    assert results["experiment"] == "layouts"
    assert set(results["pooled"]["tests"]) == {"isr vs frozen", "isr vs oracle", "oracle vs frozen"}
    config = read_json(out / "config.json")
    assert config["isr_threshold"] == 0.2 and config["eval_episodes"] == 100
    assert config["tasks"] == list(LAYOUT_TASKS)
    with Image.open(out / "layouts.png") as image:
        assert image.size[0] > 500


def test_per_layout_results_are_consistent(layouts_run):
    out, *_ = layouts_run
    results = read_json(out / "results.json")
    assert set(results["per_task"]) == set(LAYOUT_TASKS)
    for task, entry in results["per_task"].items():
        for condition in CONDITIONS:
            returns = entry["conditions"][condition]["return"]
            goals = entry["conditions"][condition]["goals_per_episode"]
            assert len(returns) == len(goals) == SEEDS
            # 0.4 per goal minus 0.045 per other forward move: never above 0.4 * goals.
            assert all(r <= 0.4 * g + 1e-6 for r, g in zip(returns, goals, strict=True)), task
            summary = entry["summary"][condition]["return"]
            assert summary["mean"] == pytest.approx(np.mean(returns))
            assert summary["se"] == pytest.approx(np.std(returns, ddof=1) / np.sqrt(SEEDS))
        isr, frozen = (np.asarray(entry["conditions"][c]["return"]) for c in ("isr", "frozen"))
        assert entry["tests"]["isr vs frozen"]["difference"] == pytest.approx(
            isr.mean() - frozen.mean()
        )


def test_pooled_comparison_has_the_layout_as_a_fixed_effect(layouts_run):
    out, *_ = layouts_run
    results = read_json(out / "results.json")
    test = results["pooled"]["tests"]["isr vs frozen"]
    assert test["test"] == "ols_block_fixed_effect"
    assert test["n_a"] == test["n_b"] == len(LAYOUT_TASKS) * SEEDS
    # A balanced design: the pooled coefficient is the plain difference of means.
    per_task = results["per_task"]
    isr = np.mean([per_task[t]["conditions"]["isr"]["return"] for t in per_task])
    frozen = np.mean([per_task[t]["conditions"]["frozen"]["return"] for t in per_task])
    assert test["difference"] == pytest.approx(isr - frozen, abs=1e-6)
    assert results["pooled"]["mean_return"]["isr"] == pytest.approx(isr, abs=1e-6)
    assert results["published"]["tests"]["isr vs oracle"]["p_value"] == 0.25


def test_metrics_table(layouts_run):
    out, *_ = layouts_run
    with (out / "metrics.csv").open(newline="") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
    assert reader.fieldnames == ["seed", "phase", "condition", "task", "update", *METRIC_NAMES]
    counts = {}
    for row in rows:
        key = (row["phase"], row["condition"], row["task"])
        counts[key] = counts.get(key, 0) + 1
    expected = {
        ("socialization", "socialization", "train"): SEEDS * 20,
        ("frozen", "frozen", "train"): SEEDS,
    }
    for task in LAYOUT_TASKS:
        expected[("transfer", "oracle", task)] = expected[("transfer", "isr", task)] = SEEDS
    assert counts == expected
    # The transfer continues the socialized run's clock: its first rollout ends at 21 * 2048.
    transfer = [r for r in rows if r["phase"] == "transfer"]
    assert all(float(r["step"]) == 21 * 2048 for r in transfer)


def test_every_condition_is_evaluated_on_the_layout_it_names(layouts_run):
    """The layouts differ, so a condition's numbers differ between two of them."""
    out, *_ = layouts_run
    per_task = read_json(out / "results.json")["per_task"]
    for condition in CONDITIONS:
        plus = per_task["plus"]["conditions"][condition]["goals_per_episode"]
        rooms = per_task["four_rooms"]["conditions"][condition]["goals_per_episode"]
        assert plus != rooms


def test_one_task_results_by_hand():
    """What `ood` puts at the top level of results.json, on made-up numbers."""
    returns = np.asarray([[0.5, 0.6, 0.55], [0.7, 0.72, 0.68], [0.66, 0.7, 0.64]])
    goals = returns * 4
    results = _task_results(returns, goals)
    assert results["conditions"]["isr"]["return"] == pytest.approx([0.66, 0.7, 0.64])
    welch = results["tests"]["isr vs frozen"]
    reference = scipy_stats.ttest_ind(returns[2], returns[0], equal_var=False)
    assert welch["p_value"] == pytest.approx(reference.pvalue)
    assert results["return_ratio_to_oracle"]["isr/oracle"] == pytest.approx(
        returns[2].mean() / returns[1].mean()
    )
    assert PUBLISHED["ood"]["return"]["isr"] == {"mean": 0.630, "se": 0.027}


def test_one_seed_results_by_hand():
    """One seed, per task and pooled over tasks: the differences are given, the tests (which
    need two seeds) are there but not computable (p-value None), nothing is nan."""
    returns = np.asarray([[[0.5], [0.4]], [[0.7], [0.75]], [[0.66], [0.5]]])  # [C, T, 1 seed]
    one = _task_results(returns[:, 0], returns[:, 0] * 4)
    pooled = _pooled_results(returns, ("plus", "x"))
    for tests in (one["tests"], pooled["tests"]):
        assert set(tests) == {"isr vs frozen", "isr vs oracle", "oracle vs frozen"}
        assert all(test["p_value"] is None and test["se"] is None for test in tests.values())
    assert one["tests"]["isr vs frozen"]["difference"] == pytest.approx(0.16)
    assert one["summary"]["isr"]["return"]["se"] is None
    assert pooled["tests"]["isr vs frozen"]["difference"] == pytest.approx((0.16 + 0.1) / 2)
    json.dumps([one, pooled], allow_nan=False)


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
