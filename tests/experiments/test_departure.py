"""The departure experiment: socialization with snapshots, per-run departures, the settings,
and a tiny end-to-end run whose numbers are checked against each other."""

import csv
import json
from collections import defaultdict

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.experiments.departure import DepartureConfig, _findings
from internalize.experiments.phases import autonomy_settings, socialize_snapshots
from internalize.social.caregiver import ScheduleConfig
from internalize.social.rewards import caregiver_present
from internalize.stats import paired_test, summarize


@pytest.fixture(scope="module")
def socialized(small_ppo):
    keys = jax.vmap(jax.random.key)(jnp.arange(2))
    found = socialize_snapshots(
        small_ppo, keys, 6, (2, 5), ready_goals=(0.0, 1e9, 0.0), ready_window=2
    )
    metrics, dataset, snapshots, _ = found
    return keys, metrics, dataset, snapshots


def _run(ppo, key, updates):
    return jax.jit(lambda key: ppo.run(ppo.init(key), caregiver_present(), updates, True))(key)


def _assert_same_runner(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def test_a_snapshot_is_the_shorter_socialization(small_ppo, socialized):
    keys, metrics, dataset, snapshots = socialized
    for seed in range(2):
        for i, updates in enumerate((2, 5)):
            runner, shorter_metrics, _ = _run(small_ppo, keys[seed], updates)
            kept = jax.tree.map(lambda x, i=i, seed=seed: x[i, seed], snapshots.at_updates)
            _assert_same_runner(kept, runner)
            assert int(snapshots.at_updates.step[i, seed]) == updates * 64
        np.testing.assert_allclose(
            metrics.goals_per_episode[seed, :5], shorter_metrics.goals_per_episode, rtol=1e-5
        )
    # The ISR data of every step, all of it seen by a caregiver who is always there.
    assert dataset.obs.shape[:2] == (2, 6 * 64)
    assert bool(dataset.observed.all())


def test_readiness_snapshots_follow_the_presence_rule(small_ppo, socialized):
    keys, metrics, _, snapshots = socialized
    # Threshold 0: ready as soon as the window of 2 updates is full; 1e9: never, kept at the end.
    np.testing.assert_array_equal(snapshots.ready_update, [[2, 2], [6, 6], [2, 2]])
    np.testing.assert_array_equal(snapshots.never_ready, [[False] * 2, [True] * 2, [False] * 2])
    _assert_same_runner(
        jax.tree.map(lambda x: x[0], snapshots.ready),
        jax.tree.map(lambda x: x[0], snapshots.at_updates),
    )
    final, _, _ = jax.vmap(lambda key: _run(small_ppo, key, 6))(keys)
    _assert_same_runner(jax.tree.map(lambda x: x[1], snapshots.ready), final)


def test_readiness_is_capped(small_ppo):
    keys = jax.vmap(jax.random.key)(jnp.arange(1))
    _, _, snapshots, _ = socialize_snapshots(
        small_ppo, keys, 4, (), ready_goals=(1e9,), ready_window=1, ready_until=3
    )
    assert snapshots.ready_update.tolist() == [[3]]
    assert int(snapshots.ready.step[0, 0]) == 3 * 64


def test_each_run_leaves_at_its_own_step():
    settings = autonomy_settings(("oracle", "none"), np.array([100, 300]), 2)
    presence = settings.presence
    assert presence.switch_step.tolist() == [100.0, 300.0, 100.0, 300.0]
    at_200 = jax.vmap(lambda p: p(200.0))(presence)
    assert at_200.tolist() == [1.0, 1.0, 0.0, 1.0]  # oracle stays; none's first run has left
    fading = autonomy_settings(("none",), np.array([0, 50]), 2, schedule=ScheduleConfig("fading"))
    assert fading.presence.switch_step.tolist() == [0.0, 50.0]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"schedule": ScheduleConfig("fading")}, "compares its own ways of leaving"),
        ({"length_shares": (0.5, 1.5)}, "length_shares must lie in"),
        ({"length_shares": ()}, "at least one"),
        ({"fade_shares": (0.0,)}, "fade_shares must lie in"),
        ({"episode_share": 0.0}, "episode_share"),
        ({"ready_goals": (-1.0,)}, "ready_goals"),
        ({"ready_window": 0}, "ready_window"),
        ({"keep_share": 1.5}, "keep_share"),
    ],
)
def test_bad_settings_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        DepartureConfig(**changes)


def test_one_seed_findings_say_what_needs_two():
    """One seed is a valid run: the findings give its numbers, and the interval and the paired
    test, which need two seeds, are not computable (n/a) rather than an error."""
    one = {name: summarize([value]).as_dict() for name, value in (("kept", 0.95), ("left", 0.8))}
    critical = {"abrupt 2048": {"socialize_steps": 2048, "isr/oracle": one["kept"]}}
    schedules = {
        "abrupt 2048": {"retention": one["kept"]},
        "fading 1024 (effort 2048)": {
            "effort": summarize([2048.0]).as_dict(),
            "retention": one["left"],
            "against": "abrupt 2048",
            "vs abrupt": paired_test([1.6], [1.9]).as_dict(),
        },
    }
    shortest, fading = _findings(critical, "abrupt 2048", schedules, 0.9)
    assert "2048 steps (isr/oracle 0.95, 95% CI n/a)" in shortest
    assert fading.endswith("(goals difference -0.300, paired p = n/a): not testable with one seed.")


@pytest.fixture(scope="module")
def tiny_run(all_run):
    """The departure experiment of the suite's tiny `reproduce all` (2 seeds, `--quick`)."""
    out = all_run / "departure"
    return (
        out,
        json.loads((out / "config.json").read_text()),
        json.loads((out / "results.json").read_text()),
    )


def test_the_run_writes_its_files(tiny_run):
    out, config, results = tiny_run
    expected = {"config.json", "versions.json", "metrics.csv", "results.json"}
    assert expected | {"departure.png", "departure_curves.png"} <= {p.name for p in out.iterdir()}
    names = [cell["name"] for cell in config["cells"]]
    assert names == list(results["schedules"])
    # A fade longer than twice the effort would start before the caregiver came: left out, said.
    total, low, long_fade = (
        config["socialize_steps"],
        min(config["effort_shares"]),
        max(config["fade_shares"]),
    )
    effort, fade = int(low * total), int(long_fade * total)
    assert config["left_out"] == [
        f"fading {fade} at effort {effort}: the fade is longer than twice the effort"
    ]


def test_efforts_are_the_steps_the_caregiver_was_there(tiny_run):
    out, config, results = tiny_run
    schedules, seeds = results["schedules"], len(results["seeds"])
    for name, row in schedules.items():
        effort = row["effort per seed"]
        if row["schedule"] == "abrupt":
            assert effort == [float(name.split()[-1])] * seeds
        elif row["schedule"] == "readiness":
            assert all(2048 <= e <= config["socialize_steps"] for e in effort)
        elif row["schedule"] == "intermittent":
            planned = 2 * int(name.split()[-1].rstrip(")"))
            assert all(0.3 * planned < e < 0.7 * planned for e in effort), (name, effort)
    # metrics.csv: effort never falls within a run, and ends where results.json says.
    last = defaultdict(list)
    with open(out / "metrics.csv") as table:
        for row in csv.DictReader(table):
            key = (row["cell"], row["condition"], row["seed"])
            assert not last[key] or float(row["effort"]) >= last[key][-1]
            last[key].append(float(row["effort"]))
    for name, row in schedules.items():
        ends = [last[name, "isr", str(seed)][-1] for seed in results["seeds"]]
        assert ends == pytest.approx(row["effort per seed"])


def test_a_caregiver_never_satisfied_is_the_longest_socialization(tiny_run):
    """A threshold no learner reaches within the socialization keeps the caregiver to the end:
    the same start, ISR data and random numbers as the longest abrupt socialization, so the
    same goals."""
    _, config, results = tiny_run
    never = results["schedules"]["readiness 2.75"]
    assert never["never ready"] == len(results["seeds"])
    longest = [cell["name"] for cell in config["cells"] if cell["schedule"] == "abrupt"][-1]
    assert never["goals per seed"] == results["schedules"][longest]["goals per seed"]


def test_the_findings_name_every_comparison(tiny_run):
    _, config, results = tiny_run
    critical = results["critical_period"]
    lengths = [c["planned_effort"] for c in config["cells"] if c["schedule"] == "abrupt"]
    assert [row["socialize_steps"] for row in critical.values()] == lengths
    compared = [name for name, row in results["schedules"].items() if "vs abrupt" in row]
    assert len(results["findings"]) == 1 + len(compared)
    for name, sentence in zip(compared, results["findings"][1:], strict=True):
        assert sentence.startswith(name)
        p = results["schedules"][name]["vs abrupt"]["p_value"]
        assert p is None or f"p = {p:.2g}" in sentence


def test_the_boulder_world_version_is_experiment_e_settings():
    """`departure-boulder`: experiment E's task, learner, ISR and threshold; not in `all`."""
    from internalize.experiments.configs import make_config
    from internalize.experiments.prosocial import PROSOCIAL_PRESETS
    from internalize.experiments.runner import protocol
    from internalize.experiments.suite import EXPERIMENTS

    config = make_config("departure-boulder", seeds=2)
    assert config.ppo == PROSOCIAL_PRESETS["fast"]
    assert (config.world, config.isr_threshold, config.socialize_steps) == ("boulder", 0.2, 240_000)
    built = protocol("departure-boulder", config)
    assert built.env.num_actions == 5 and built.isr_network.agent_cells is not None
    assert [c.name for c in built.cells][:5] == [f"abrupt {u * 2048}" for u in (8, 15, 30, 59, 118)]
    assert "departure-boulder" not in EXPERIMENTS and "departure" in EXPERIMENTS
