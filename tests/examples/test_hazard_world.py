"""The hazard world example (`examples/hazard_world.py`): a user's own environment follows the
protocol, batches through the generic `step_batch`, and a learner with the caregiver present
learns the caregiver's values."""

import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.envs import base
from internalize.experiments.phases import caregiver_present
from internalize.learners.ppo import PPO, PRESETS, over_runs

ROOT = Path(__file__).parents[2]


def load_example():
    """The example loaded by file path, as a user's module outside the package would be."""
    spec = importlib.util.spec_from_file_location("hazard_world", ROOT / "examples/hazard_world.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hazard_world = load_example()
Move, HazardState = hazard_world.Move, hazard_world.HazardState
ENV = hazard_world.make_env()
PARAMS = ENV.make_params()
STEP = jax.jit(ENV.step)


def state(agent, goal, hazard, time=0) -> HazardState:
    return HazardState(*(jnp.asarray(cell, jnp.int32) for cell in (agent, goal, hazard, time)))


def test_importable_as_a_module_from_the_repository_root(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.delitem(sys.modules, "examples", raising=False)
    monkeypatch.delitem(sys.modules, "examples.hazard_world", raising=False)
    from examples.hazard_world import make_env

    assert make_env().obs_shape == (5, 5, 3)


def test_follows_the_protocol():
    assert isinstance(ENV, base.Environment)
    assert not hasattr(ENV, "step_batch")  # so `base.step_batch` takes its generic path
    assert (ENV.obs_shape, ENV.num_actions, int(PARAMS.max_steps)) == ((5, 5, 3), 4, 25)
    first = ENV.reset(jax.random.key(0), PARAMS)
    obs = ENV.observe(first)
    assert obs.shape == ENV.obs_shape and obs.dtype == jnp.uint8
    assert obs.sum(axis=(0, 1)).tolist() == [1, 1, 1]  # one agent, one goal, one hazard
    _, transition = STEP(jax.random.key(1), first, jnp.int32(Move.UP), PARAMS)
    assert isinstance(transition, base.Transition)
    assert transition.obs.shape == ENV.obs_shape and transition.obs.dtype == jnp.uint8
    for field in ("env_reward", "social_reward"):
        assert getattr(transition, field).dtype == jnp.float32
    for field in ("goal_reached", "truncated"):
        assert getattr(transition, field).dtype == jnp.bool_


def test_placement_keeps_the_goal_reachable_without_passing_the_hazard():
    states = jax.vmap(ENV.reset, in_axes=(0, None))(
        jax.random.split(jax.random.key(2), 2000), PARAMS
    )
    agent, goal, hazard = (np.asarray(x) for x in (states.agent, states.goal, states.hazard))
    assert (agent != goal).any(-1).all() and (agent != hazard).any(-1).all()
    assert (np.abs(goal - hazard).sum(-1) >= 2).all()
    assert {tuple(cell) for cell in agent} == {(r, c) for r in range(5) for c in range(5)}


def test_rewards_by_hand():
    params = ENV.make_params(goal_reward=1.0, safe_reward=2.0)
    start = state(agent=(2, 2), goal=(2, 4), hazard=(0, 3))
    moved, transition = STEP(jax.random.key(3), start, jnp.int32(Move.RIGHT), params)
    assert moved.agent.tolist() == [2, 3]  # at distance 2 from the hazard: approved
    assert (float(transition.env_reward), float(transition.social_reward)) == (0.0, 2.0)
    reached, transition = STEP(jax.random.key(4), moved, jnp.int32(Move.RIGHT), params)
    assert bool(transition.goal_reached)
    assert (float(transition.env_reward), float(transition.social_reward)) == (1.0, 2.0)
    assert reached.agent.tolist() == [2, 4] and reached.time == 2
    assert reached.goal.tolist() != [2, 4]  # a new goal and hazard were drawn
    assert abs(np.subtract(reached.goal, reached.hazard)).sum() >= 2
    # Ending next to the hazard (distance 1) or on it (0) is not approved; away from it is.
    hazard = (0, 3)
    for agent, action, social in [
        ((1, 2), Move.UP, 0.0),  # ends at (0, 2), next to the hazard
        ((1, 2), Move.RIGHT, 0.0),  # (1, 3), next to it
        ((1, 3), Move.UP, 0.0),  # onto it
        ((1, 2), Move.DOWN, 2.0),  # (2, 2), at distance 3
    ]:
        start = state(agent, goal=(4, 4), hazard=hazard)
        _, transition = STEP(jax.random.key(5), start, jnp.int32(action), params)
        assert float(transition.social_reward) == social and float(transition.env_reward) == 0.0
    corner, _ = STEP(jax.random.key(6), state((0, 0), (4, 4), (2, 2)), jnp.int32(Move.UP), params)
    assert corner.agent.tolist() == [0, 0]


def test_truncates_at_max_steps_and_never_resets_by_itself():
    params = ENV.make_params(max_steps=3)
    current = state(agent=(0, 0), goal=(4, 4), hazard=(2, 2))
    flags = []
    for t in range(5):
        current, transition = STEP(jax.random.key(t), current, jnp.int32(Move.LEFT), params)
        flags.append(bool(transition.truncated))
    assert flags == [False, False, True, True, True] and int(current.time) == 5


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"max_steps": 0}, "max_steps"),
        ({"max_steps": 2.5}, "max_steps"),
        ({"goal_reward": float("nan")}, "goal_reward"),
        ({"safe_reward": "high"}, "safe_reward"),
    ],
)
def test_bad_settings_are_named(settings, name):
    with pytest.raises(ValueError, match=name):
        ENV.make_params(**settings)


def test_bad_size_is_named():
    with pytest.raises(ValueError, match="size"):
        hazard_world.HazardWorld(size=2)


def test_generic_step_batch_resets_truncated_environments():
    params = ENV.make_params(max_steps=4)
    num_envs = 8
    states = jax.vmap(ENV.reset, in_axes=(0, None))(jax.random.split(jax.random.key(7), 8), params)
    step_batch = jax.jit(lambda key, s, a: base.step_batch(ENV, key, s, a, params, auto_reset=True))
    for t in range(4):
        actions = jax.random.randint(jax.random.key(10 + t), (num_envs,), 0, ENV.num_actions)
        states, transitions = step_batch(jax.random.key(20 + t), states, actions)
    assert transitions.truncated.all() and (states.time == 0).all()
    # The returned obs is the new episode's first; the rewards and flags are the step's.
    assert (transitions.obs == jax.vmap(ENV.observe)(states)).all()
    states, transitions = step_batch(jax.random.key(30), states, actions)
    assert not transitions.truncated.any() and (states.time == 1).all()


def test_with_the_caregiver_present_the_learner_keeps_away_from_the_hazard():
    """PPO with P = 1 learns both to reach goals and to keep away from the hazard.

    1000 updates of 16 x 50 steps (0.8 M steps) per seed, 3 seeds in one call: about 25 s on
    two cores, 10 s of it compiling. Steps per episode that end next to (or on) the hazard are
    `max_steps - R_s / safe_reward` per episode. Measured over 15 seeds (keys 0-4, each split in
    3), mean of the last 100 updates per seed: 1.04 to 1.38 such steps, 6.9 to 7.1 goals per
    episode; in the untrained policy's first update, 3.0 to 5.4 such steps. A learner trained
    alike without the caregiver (P = 0, 3 seeds) reaches as many goals (7.2) but ends 2.7 to
    2.9 steps per episode next to the hazard. Hence the bounds: < 1.9 such steps at the end,
    > 2.5 at first, > 6.5 goals.
    """
    config = PRESETS["fast"].replace(
        num_envs=16, num_steps=50, minibatch_size=200, obs_scale=1.0, ent_coef=0.02
    )
    ppo = PPO(config, ENV, PARAMS)
    rewards = caregiver_present()

    def train(key):
        return ppo.run(ppo.init(key), rewards, 1000)[1]

    metrics = jax.jit(over_runs(train, parallel=False))(jax.random.split(jax.random.key(0), 3))
    near_hazard = int(PARAMS.max_steps) - np.asarray(metrics.social_reward) / float(
        PARAMS.safe_reward
    )
    goals = np.asarray(metrics.goals_per_episode)[:, -100:].mean(1)
    assert (near_hazard[:, -100:].mean(1) < 1.9).all(), near_hazard[:, -100:].mean(1)
    assert (near_hazard[:, 0] > 2.5).all(), near_hazard[:, 0]
    assert (goals > 6.5).all(), goals


def test_the_users_world_is_found_by_import_path_where_they_work(tmp_path, monkeypatch):
    """`world=package.module:make_env` is looked up beside where the user works: retention's
    protocol is built in the example world from the repository's root, and from elsewhere the
    error says what was looked for. (The whole run by the installed command is slow-marked.)"""
    from internalize.experiments.configs import resolve_config
    from internalize.experiments.runner import protocol

    config = resolve_config("retention", None, {}, ["world=examples.hazard_world:make_env"])
    elsewhere = [entry for entry in sys.path if entry not in ("", str(ROOT))]

    def forget():  # modules named `examples` (pytest puts tests/ on the path: its examples/)
        for name in [name for name in sys.modules if name.split(".")[0] == "examples"]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setattr(sys, "path", list(elsewhere))

    forget()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="cannot be loaded: No module named 'examples"):
        protocol("retention", config)
    forget()
    monkeypatch.chdir(ROOT)
    built = protocol("retention", config)
    assert built.env.obs_shape == ENV.obs_shape and built.env.num_actions == ENV.num_actions
    assert type(built.env).__module__ == "examples.hazard_world"


@pytest.mark.slow
def test_retention_runs_in_the_users_world_by_import_path(tmp_path):
    """The installed command, started where the user works, runs retention in the example world
    given as `package.module:make_env`, and records the world in config.json."""
    import json
    import shutil
    import subprocess

    out = tmp_path / "run"
    command = [
        shutil.which("internalize") or "internalize",
        *("reproduce", "retention", "--quiet", "--seeds", "1"),
        *("--socialize-steps", "4096", "--autonomy-steps", "2048", "--out", str(out)),
        *("--set", "world=examples.hazard_world:make_env", "--set", "ppo.obs_scale=1.0"),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    config = json.loads((out / "config.json").read_text())
    assert config["world"] == "examples.hazard_world:make_env"
    assert config["env"]["obs_shape"] == list(ENV.obs_shape)
    results = json.loads((out / "results.json").read_text())
    assert set(results["conditions"]) == {"oracle", "none", "isr"}
    # Elsewhere the module is not found, and the error says what was looked for.
    command[command.index(str(out))] = str(tmp_path / "elsewhere")
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2
    assert "cannot be loaded: No module named 'examples'" in done.stderr


def test_any_environment_of_the_protocol_is_a_gymnasium_env():
    """An environment of a user's own (`examples/hazard_world.py`), through `ProtocolGymEnv`:
    it passes Gymnasium's checker, its info holds the transition's fields, and the reward is
    R_e + R_s."""
    from gymnasium.utils.env_checker import check_env

    from internalize.adapters.gymnasium import ProtocolGymEnv

    env = ProtocolGymEnv(ENV, ENV.make_params(max_steps=5))
    check_env(env, skip_render_check=True)
    env.reset(seed=3)
    for step in range(5):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs.shape == ENV.obs_shape and not terminated
        assert set(info) == {"env_reward", "social_reward", "goal_reached"}
        assert reward == info["env_reward"] + info["social_reward"]
        assert truncated == (step == 4)
    with pytest.raises(ValueError, match="takes no reset options, got \\['goal'\\]"):
        env.reset(options={"goal": (1, 1)})
    assert env.render() is None  # no drawing given
