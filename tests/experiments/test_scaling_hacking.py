"""Tiny end-to-end runs of `internalize reproduce scaling` and `internalize reproduce hacking`,
and the ISR reward map against the environment's own rewards."""

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.cli import main
from internalize.envs.constants import HEADING_TO_VEC, Action
from internalize.envs.goals import GoalsEnv
from internalize.experiments.hacking import CONDITIONS as HACKING_CONDITIONS
from internalize.experiments.hacking import METRICS as HACKING_METRICS
from internalize.experiments.hacking import HackingConfig
from internalize.experiments.hacking import _tests as _hacking_tests
from internalize.experiments.scaling import PUBLISHED, ScalingConfig
from internalize.experiments.scaling import _tests as _scaling_tests
from internalize.isr.maps import goals_reward_maps
from internalize.isr.model import ISRNetwork
from internalize.isr.train import ISR_PRESETS, split_sizes

SEEDS = 2


# ------------------------------------------------------------------------------ scaling


COUNTS = (4096, 12288, 40960)


@pytest.fixture(scope="module")
def scaling_run(all_run):
    """The scaling experiment of the tiny `reproduce all` run: 40960 socialization steps and
    ISRs on the first COUNTS samples (test_suite.py checks that running it alone agrees)."""
    out = all_run / "scaling"
    return out, json.loads((out / "results.json").read_text())


def test_default_counts_are_the_published_training_sizes():
    """90% of 5, 10, 15, 20, 40 and 59 rollouts of 2048 steps."""
    config = ScalingConfig()
    train = [split_sizes(n, ISR_PRESETS["fast"].train_fraction)[0] for n in config.sample_counts]
    assert train == PUBLISHED["train_samples"] == [9216, 18432, 27648, 36864, 73728, 108748]


def test_scaling_run(scaling_run):
    out, results = scaling_run
    assert {p.name for p in out.iterdir()} == {
        "config.json",
        "versions.json",
        "metrics.csv",
        "scaling.png",
        "checkpoints.msgpack",
        "results.json",
    }
    assert results["config"]["sample_counts"] == list(COUNTS)
    assert results["train_samples"] == [3686, 11059, 36864]
    train = np.asarray(results["per_seed"]["train_mse"])
    test = np.asarray(results["per_seed"]["test_mse"])
    assert train.shape == test.shape == (SEEDS, len(COUNTS))
    assert np.all(np.isfinite(test)) and np.all(test > 0)
    slopes = results["tests"]["log-log slope"]["per_seed"]
    for seed, slope in enumerate(slopes):
        expected = np.polyfit(np.log10(results["train_samples"]), np.log10(test[seed]), 1)[0]
        assert slope == pytest.approx(expected)
    summary = results["summary"][str(COUNTS[0])]["test_mse"]
    assert summary["mean"] == pytest.approx(test[:, 0].mean())
    with (out / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == SEEDS * len(COUNTS)
    assert float(rows[0]["test_mse"]) == pytest.approx(test[0, 0])


def test_scaling_more_data_gives_a_better_isr(scaling_run):
    """For each seed, ten times the data must cut the test error by a wide margin. Measured on
    the tiny `all` run's 2 seeds: 14 and 110 times with XLA's kernels capped at AVX2 (the
    deterministic mode), 37 and 23 times capped at AVX (other rounding): 4.7 times the bar at
    the least."""
    _, results = scaling_run
    test = np.asarray(results["per_seed"]["test_mse"])
    assert np.all(test[:, -1] < test[:, 0] / 3)


def test_scaling_cli_checks_the_counts_against_the_data(capsys):
    assert main(["reproduce", "scaling", "--socialize-steps", "50000", "--quiet"]) == 2
    assert "sample count 120832 exceeds the 51200 samples" in capsys.readouterr().err


def test_scaling_tests_with_one_seed():
    """One seed: the slope and its summary's mean are given; the paired tests, which need two
    seeds, are not computable (p-value None), and nothing is nan."""
    train_mse = np.asarray([[1e-2], [1e-3], [1e-4]])
    tests = _scaling_tests(np.asarray([1e3, 1e4, 1e5]), train_mse, train_mse * 1.5)
    assert tests["log-log slope"]["per_seed"] == pytest.approx([-1.0])
    assert tests["log-log slope"]["summary"]["se"] is None
    for test in (tests["log-log slope"]["slope below 0"], tests["smallest vs largest count"]):
        assert test["test"] == "paired_t" and test["n_a"] == 1 and test["p_value"] is None
    assert tests["max test/train ratio of a count mean"] == pytest.approx(1.5)
    json.dumps(tests, allow_nan=False)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sample_counts": (4096,)}, "at least two counts"),
        ({"sample_counts": (8192, 4096)}, "must increase strictly"),
        ({"sample_counts": (4096, 200_000)}, "exceeds the 120832 samples"),
        ({"sample_counts": (1, 4096)}, "cannot be split"),
        ({"socialize_steps": 0}, "socialize_steps must be >= 1"),
    ],
)
def test_scaling_config_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        ScalingConfig(**changes)


# ------------------------------------------------------------------------------ hacking


@pytest.fixture(scope="module")
def hacking_run(all_run):
    """The hacking experiment of the tiny `reproduce all` run: 40960 socialization steps, 8192
    of autonomy (4 updates)."""
    return all_run / "hacking"


def test_hacking_run(hacking_run):
    out = hacking_run
    assert {p.name for p in out.iterdir()} == {
        "config.json",
        "versions.json",
        "metrics.csv",
        "hacking.png",
        "reward_map.png",
        "checkpoints.msgpack",
        "render",  # GIFs, rendered by `reproduce all`
        "results.json",
    }
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["autonomy_steps"] == 8192
    assert results["isr_model"]["isr_partial"]["samples"] == 40960 // 12
    assert results["isr_model"]["isr_full"]["samples"] == 40960
    assert set(results["conditions"]) == set(HACKING_CONDITIONS)
    assert len(results["findings"]) == 5
    with (out / "metrics.csv").open(newline="") as file:
        rows = [r for r in csv.DictReader(file) if r["phase"] == "autonomy"]
    # Early = the first update (10% of 4 updates, rounded up), late = the last.
    for s, seed in enumerate(results["seeds"]):
        for condition in HACKING_CONDITIONS:
            mine = [r for r in rows if r["seed"] == str(seed) and r["condition"] == condition]
            looping = [float(r["looping"]) for r in mine]
            assert results["conditions"][condition]["looping_early"][s] == pytest.approx(looping[0])
            assert results["conditions"][condition]["looping_late"][s] == pytest.approx(looping[-1])
    test = results["tests"]["isr_partial: looping late vs early"]
    assert test["test"] == "paired_t"


def test_hacking_tests_with_one_seed():
    """One seed: every test is there with its difference but no p-value, and no finding is
    claimed either way (None, not False or True)."""
    per_seed = {
        condition: {
            f"{metric}_{when}": [value]
            for metric in HACKING_METRICS
            for when, value in (("early", 0.5), ("late", 0.2 + 0.1 * c))
        }
        for c, condition in enumerate(HACKING_CONDITIONS)
    }
    tests, findings = _hacking_tests(per_seed, seeds=1)
    assert len(tests) == 3 * len(HACKING_METRICS)
    assert all(test["p_value"] is None and test["n_a"] == 1 for test in tests.values())
    assert tests["isr_partial: looping late vs early"]["difference"] == pytest.approx(-0.3)
    assert len(findings) == 5 and all(value is None for value in findings.values())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"data_fraction": 0.0}, r"data_fraction must lie in \(0, 1\)"),
        ({"data_fraction": 1.0}, r"data_fraction must lie in \(0, 1\)"),
        ({"window_fraction": 0.7}, r"window_fraction must lie in \(0, 0.5\]"),
        ({"loop_threshold": float("nan")}, "loop_threshold must be finite"),
        ({"autonomy_steps": -1}, "autonomy_steps must be >= 1"),
    ],
)
def test_hacking_config_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        HackingConfig(**changes)


# --------------------------------------------------------------------------- reward map


def test_reward_map_true_rewards_by_hand():
    env = GoalsEnv()
    params = env.make_params(n_blocks=3)
    walls, goal = ((2, 2), (4, 4), (2, 4)), (3, 3)
    isr = ISRNetwork().init(jax.random.key(0), jnp.zeros((9, 9, 4), jnp.uint8), 0)
    maps = goals_reward_maps(env, params, {"isr": isr}, walls, goal)
    true = maps["true"]
    assert true.shape == (4, 3, 7, 7)
    # Paid exactly where FORWARD steps onto the goal: from each open neighbour, facing it.
    expected = np.zeros_like(true)
    for heading, (dx, dy) in enumerate(HEADING_TO_VEC):
        x, y = goal[0] - dx, goal[1] - dy
        if (x, y) not in walls:
            expected[heading, Action.FORWARD, x, y] = 0.4
    blocked = np.isnan(true)
    np.testing.assert_allclose(true[~blocked], expected[~blocked], atol=1e-7)
    # nan exactly on the walls, the border and the goal.
    for x in range(7):
        for y in range(7):
            wall = x in (0, 6) or y in (0, 6) or (x, y) in walls or (x, y) == goal
            assert np.isnan(true[:, :, x, y]).all() == wall
    # The ISR map holds the network's predictions for those same states.
    state = env.state_from_layout(walls, goal, (1, 3), 0)
    predicted = ISRNetwork().apply(isr, env.observe(state), int(Action.FORWARD))
    assert maps["isr"][0, Action.FORWARD, 1, 3] == pytest.approx(float(predicted), rel=1e-5)
