"""The overoptimization experiment: its settings, the fit of the gold curve, the policy distance,
and its tiny run in `reproduce all` (shared with hacking's socialization and ISRs)."""

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.envs.goals import GoalsEnv
from internalize.experiments.overoptimization import (
    GOLD,
    SINGLE,
    Overoptimization,
    OveroptimizationConfig,
    fit_gold,
    fraction_label,
    gold_form,
)
from internalize.experiments.phases import policy_distance
from internalize.learners.ppo import PPO, PRESETS


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"data_fractions": (0.5, 0.25)}, "distinct and include 1.0"),
        ({"data_fractions": (0.0, 1.0)}, r"data_fractions must lie in \(0, 1\]"),
        ({"hack_fraction": 0.3}, "hack_fraction 0.3 must be one of data_fractions"),
        ({"members": 1}, "an ensemble needs members >= 2"),
        ({"aggregations": ("mean", "max")}, r"aggregations must be some of .* got \['max'\]"),
        ({"autonomy_steps": 0}, "autonomy_steps must be >= 1"),
    ],
)
def test_overoptimization_config_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        OveroptimizationConfig(**changes)


def test_the_single_isr_is_not_an_ensemble():
    isr = OveroptimizationConfig().isr.replace(members=5)
    with pytest.raises(ValueError, match="not isr.members"):
        OveroptimizationConfig(isr=isr)


def test_fraction_labels():
    assert [fraction_label(f) for f in OveroptimizationConfig().data_fractions] == [
        "1/24",
        "1/12",
        "1/6",
        "1/3",
        "all",
    ]
    assert fraction_label(0.4) == "0.4"


def test_one_seed_gives_the_numbers_but_no_test_or_finding():
    """One seed: the share of the hack closed and the seed's slope of beta are given; their
    tests need two seeds (p-value None) and no finding is claimed either way (None)."""
    protocol = Overoptimization("overoptimization", OveroptimizationConfig(seeds=1))
    gold = dict(zip(protocol.labels, (0.1, 0.2, 0.5, 0.8, 1.0), strict=True))
    per_seed = {
        f"{kind}:{label}": {f"{GOLD}_late": [gold[label] if kind == SINGLE else 0.8]}
        for kind in protocol.kinds
        for label in protocol.labels
    }
    hack = protocol.hack_closed(per_seed)
    assert hack["min"]["share"] == pytest.approx((0.8 - 0.2) / (1.0 - 0.2))
    assert hack["min"]["test"]["p_value"] is None
    assert hack["min"]["cost_with_all_data"]["difference"] == pytest.approx(-0.2)
    fits = {
        f"{kind}:{label}": {"beta": np.asarray([-0.1 * np.log2(f)])}
        for kind in protocol.kinds
        for label, f in zip(protocol.labels, protocol.config.data_fractions, strict=True)
    }
    beta = protocol.beta_trend(fits)
    assert beta["single"]["slope_per_seed"] == pytest.approx([-0.1])
    assert beta["single"]["test"]["p_value"] is None
    findings = protocol.findings(hack, beta)
    assert len(findings) == 10 and all(value is None for value in findings.values())
    json.dumps([hack, beta, findings], allow_nan=False)
    # No gap to close (the single ISR as good with 1/12 of the data as with all): no share.
    per_seed[f"{SINGLE}:all"][f"{GOLD}_late"] = [0.2]
    assert protocol.hack_closed(per_seed)["min"]["share"] is None


def test_the_fit_recovers_the_gold_curve():
    """Noise-free curves give back their g0, alpha and beta; with noise of sd 0.02 (the size of
    a seed's per-update noise is larger, about 0.1) they come within 0.05."""
    d = np.linspace(0.0, 1.5, 60)
    truth = [(0.8, 0.3, 0.5), (0.5, -0.2, 0.1)]
    gold = np.stack([gold_form(d, *t) for t in truth])
    fit = fit_gold(np.stack([d, d]), gold)
    for i, (g0, alpha, beta) in enumerate(truth):
        assert fit["g0"][i] == pytest.approx(g0, abs=1e-9)
        assert fit["alpha"][i] == pytest.approx(alpha, abs=1e-9)
        assert fit["beta"][i] == pytest.approx(beta, abs=1e-9)
    noisy = gold + np.random.default_rng(0).normal(0, 0.02, gold.shape)
    fit = fit_gold(np.stack([d, d]), noisy)
    for i, (_, alpha, beta) in enumerate(truth):
        assert abs(fit["alpha"][i] - alpha) < 0.05 and abs(fit["beta"][i] - beta) < 0.05
    # gold_form's d log d is 0 at d = 0: the curve starts at g0.
    assert gold_form(0.0, 0.7, 1.0, 1.0) == 0.7


def test_policy_distance_is_the_square_root_of_the_mean_kl():
    env = GoalsEnv()
    ppo = PPO(PRESETS["fast"], env, env.make_params())
    start = ppo.init(jax.random.key(0)).train.params
    # Weights 5 times larger: logits far from uniform, so that the KL is no float32 rounding.
    moved = jax.tree.map(lambda x: 5 * x, ppo.init(jax.random.key(1)).train.params)
    obs = jax.random.randint(jax.random.key(2), (4, 3, *env.obs_shape), 0, 5).astype(jnp.uint8)
    assert float(policy_distance(ppo, start, start, obs)) == 0.0
    flat = obs.reshape(-1, *env.obs_shape)
    p = np.asarray(jax.nn.softmax(ppo.policy(moved, flat)[0]), np.float64)
    q = np.asarray(jax.nn.softmax(ppo.policy(start, flat)[0]), np.float64)
    by_hand = np.sqrt((p * np.log(p / q)).sum(-1).mean())
    assert by_hand > 0.01
    assert float(policy_distance(ppo, moved, start, obs)) == pytest.approx(by_hand, rel=1e-3)


@pytest.fixture(scope="module")
def overoptimization_run(all_run):
    """The overoptimization experiment of the tiny `reproduce all` run: 40960 socialization
    steps, 8192 of autonomy (4 updates), 2 seeds, 3 data shares, ensembles of 3."""
    return all_run / "overoptimization"


def test_overoptimization_run(overoptimization_run, all_run):
    out = overoptimization_run
    assert {p.name for p in out.iterdir()} == {
        "config.json",
        "versions.json",
        "metrics.csv",
        "overoptimization.png",
        "fits.png",
        "reward_map.png",
        "checkpoints.msgpack",
        "results.json",
    }
    results = json.loads((out / "results.json").read_text())
    labels = ["1/12", "1/3", "all"]  # --quick's shares
    kinds = ["single", "mean", "min", "uwo"]
    assert list(results["conditions"]) == [f"{k}:{label}" for k in kinds for label in labels]
    assert set(results["hack_closed"]) == {"mean", "min", "uwo"}
    for entry in results["hack_closed"].values():
        assert np.isfinite(entry["share"]) and entry["test"]["test"] == "paired_t"
    assert set(results["beta_against_data"]) == set(kinds)
    for kind in kinds:
        assert len(results["beta_against_data"][kind]["slope_per_seed"]) == 2
    with (out / "metrics.csv").open(newline="") as file:
        rows = [r for r in csv.DictReader(file) if r["phase"] == "autonomy"]
    assert len(rows) == 2 * 12 * 4
    for row in rows:  # the first update acts with the socialized policy itself
        assert (float(row["distance"]) == 0.0) == (row["update"] == "0"), row
    # The single ISRs at 1/12 and all of the data are hacking's, and so are the learners under
    # them: overoptimization runs first in their group, and hacking takes them (the one at all
    # of the data is retention's).
    found = json.loads((all_run / "hacking" / "results.json").read_text())
    hacking, single = found["isr_model"], results["isr_model"]["single"]
    assert single["1/12"]["test_mse"] == hacking["isr_partial"]["test_mse"]
    assert single["all"]["test_mse"] == hacking["isr_full"]["test_mse"]
    assert single["all"]["samples"] == 40960 and single["1/3"]["samples"] == 40960 // 3
    timings = results["timings"]
    assert timings["isr all"]["shared"] and not timings["isr 1/12"].get("shared", False)
    assert not timings.get("ensemble all", {}).get("shared", False)
    assert all(found["timings"][phase]["shared"] for phase in ("isr_partial", "autonomy"))
    with (all_run / "hacking" / "metrics.csv").open(newline="") as file:
        theirs = [r for r in csv.DictReader(file) if r["phase"] == "autonomy"]
    ours = {(r["seed"], r["condition"], r["update"]): r for r in rows}
    for row, condition in ((r, r["condition"]) for r in theirs):
        label = "1/12" if condition == "isr_partial" else "all"
        mine = ours[(row["seed"], f"single:{label}", row["update"])]
        assert {k: v for k, v in row.items() if k != "condition"} == {
            k: mine[k] for k in row if k != "condition"
        }
