"""gymnax both ways: our environments seen by gymnax (`to_gymnax`) step as they do directly,
gymnax environments made ours (`from_gymnax`) follow the protocol and train with our PPO."""

import importlib
import sys

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from internalize.adapters.gymnax import GymnaxViewState, from_gymnax, to_gymnax
from internalize.envs import base
from internalize.envs.boulder import BoulderEnv
from internalize.envs.goals import GoalsEnv
from internalize.experiments.phases import caregiver_present
from internalize.learners.ppo import PPO, PRESETS

GOALS = GoalsEnv()
GOALS_PARAMS = GOALS.make_params(n_blocks=3)  # max_steps 20
CARTPOLE, CARTPOLE_PARAMS = gymnax.make("CartPole-v1")


def centre_keeper(state, action, next_state, reward, done):
    """A caregiver who cares how CartPole is balanced: near the centre of the track."""
    return -jnp.abs(next_state.x)


def play_direct(env, params, keys, actions):
    """Our env stepped the way gymnax's `step(key)` steps it: the step with the first half of
    `split(key)`, a new episode from the second where the step truncated. Returns the
    transitions and the observations after each step, with a leading axis of steps."""
    first = env.reset(jax.random.key(99), params)

    def one_step(current, key_action):
        key, action = key_action
        key_step, key_reset = jax.random.split(key)
        stepped, transition = env.step(key_step, current, action, params)
        current = base.select(transition.truncated, env.reset(key_reset, params), stepped)
        return current, (transition, env.observe(current))

    return jax.lax.scan(one_step, first, (keys, actions))[1]


def play_gymnax(view, params, keys, actions):
    """The same through gymnax's auto-resetting `step`."""
    _, first = view.reset(jax.random.key(99), params)

    def one_step(current, key_action):
        key, action = key_action
        obs, current, reward, terminated, truncated, info = view.step(key, current, action, params)
        return current, (obs, reward, terminated, truncated, info)

    return jax.lax.scan(one_step, first, (keys, actions))[1]


# ------------------------------------------------------------------------------ to_gymnax


def test_to_gymnax_describes_the_environment():
    view = to_gymnax(GOALS, GOALS_PARAMS)
    assert view.name == "internalize/GoalsEnv" and view.num_actions == 3
    assert isinstance(view.action_space(), spaces.Discrete) and view.action_space().n == 3
    box = view.observation_space(view.default_params)
    assert box.shape == (9, 9, 4) and box.dtype == jnp.uint8
    obs, state = view.reset(jax.random.key(0), view.default_params)
    assert isinstance(state, GymnaxViewState) and obs.dtype == jnp.uint8
    assert bool(box.contains(obs)) and (obs == view.get_obs(state)).all()
    assert not bool(view.is_terminal(state, view.default_params))
    assert to_gymnax(GOALS).default_params.max_steps == GOALS.make_params().max_steps


@pytest.mark.parametrize("caregiver", [True, False])
def test_to_gymnax_steps_as_the_environment_does_for_the_same_keys(caregiver):
    """Over three episodes of random actions: rewards R_e + R_s (R_e without the caregiver),
    gymnax's `done` exactly at our truncation, and its auto-reset our `reset`."""
    view = to_gymnax(GOALS, GOALS_PARAMS, caregiver=caregiver)
    steps = 3 * int(GOALS_PARAMS.max_steps)
    keys = jax.random.split(jax.random.key(2), steps)  # keys under which goals are reached
    actions = jax.random.randint(jax.random.key(3), (steps,), 0, 3)
    transitions, direct_obs = jax.jit(play_direct, static_argnums=0)(
        GOALS, GOALS_PARAMS, keys, actions
    )
    obs, reward, terminated, truncated, info = jax.jit(play_gymnax, static_argnums=0)(
        view, GOALS_PARAMS, keys, actions
    )
    expected = transitions.env_reward + caregiver * transitions.social_reward
    assert transitions.goal_reached.any() and transitions.env_reward.any()  # checks something
    np.testing.assert_array_equal(reward, expected)
    np.testing.assert_array_equal(info["goal_reached"], transitions.goal_reached)
    np.testing.assert_array_equal(info["social_reward"], transitions.social_reward)
    np.testing.assert_array_equal(truncated, transitions.truncated)
    assert truncated.sum() == 3 and not terminated.any()
    np.testing.assert_array_equal(obs, direct_obs)


def test_to_gymnax_takes_the_two_agent_world_too():
    """The boulder world (its transitions carry extras) steps as it does directly."""
    boulder = BoulderEnv()
    params = boulder.make_params(max_steps=12)
    view = to_gymnax(boulder, params)
    steps = 30
    keys = jax.random.split(jax.random.key(6), steps)
    actions = jax.random.randint(jax.random.key(7), (steps,), 0, boulder.num_actions)
    transitions, direct_obs = jax.jit(play_direct, static_argnums=0)(boulder, params, keys, actions)
    obs, reward, _, truncated, _ = jax.jit(play_gymnax, static_argnums=0)(
        view, params, keys, actions
    )
    np.testing.assert_array_equal(reward, transitions.env_reward + transitions.social_reward)
    np.testing.assert_array_equal(truncated, transitions.truncated)
    np.testing.assert_array_equal(obs, direct_obs)
    assert truncated.sum() == 2 and transitions.env_reward.any()


def test_to_gymnax_runs_under_vmap_and_jit_with_auto_reset():
    view = to_gymnax(GOALS, GOALS_PARAMS)
    num_envs, steps = 16, 45
    step = jax.jit(jax.vmap(view.step, in_axes=(0, 0, 0, None)))
    _, states = jax.vmap(view.reset, in_axes=(0, None))(
        jax.random.split(jax.random.key(3), num_envs), GOALS_PARAMS
    )
    dones = []
    for t in range(steps):
        actions = jax.random.randint(jax.random.key(100 + t), (num_envs,), 0, 3)
        keys = jax.random.split(jax.random.key(200 + t), num_envs)
        obs, states, reward, terminated, truncated, info = step(keys, states, actions, GOALS_PARAMS)
        dones.append(np.asarray(terminated | truncated))
    assert obs.shape == (num_envs, 9, 9, 4) and reward.shape == (num_envs,)
    done_steps = np.nonzero(np.stack(dones).all(axis=1))[0]
    assert done_steps.tolist() == [19, 39]  # every environment ends on steps 20 and 40
    assert (states.time == steps - 40).all() and (states.env_state.time == steps - 40).all()


# ---------------------------------------------------------------------------- from_gymnax


def test_from_gymnax_follows_the_protocol():
    env = from_gymnax(CARTPOLE, CARTPOLE_PARAMS, centre_keeper, max_steps=30)
    params = env.make_params()
    assert isinstance(env, base.Environment)
    assert env.obs_shape == (1, 1, 4) and env.num_actions == 2 and int(params.max_steps) == 30
    assert int(env.make_params(max_steps=7).max_steps) == 7
    first = env.reset(jax.random.key(0), params)
    assert env.observe(first).shape == (1, 1, 4) and env.observe(first).dtype == jnp.float32
    stepped, transition = jax.jit(env.step)(jax.random.key(1), first, jnp.int32(1), params)
    assert isinstance(transition, base.Transition)
    assert transition.obs.shape == (1, 1, 4) and transition.obs.dtype == jnp.float32
    assert float(transition.env_reward) == 1.0  # CartPole's reward for a step
    assert float(transition.social_reward) == pytest.approx(-abs(float(stepped.gymnax.x)))
    assert int(stepped.time) == 1 and not bool(transition.truncated)


def test_from_gymnax_resets_gymnax_episodes_inside_ours_and_truncates_at_max_steps():
    """Pushing right, the pole falls within a few steps: each fall is a `goal_reached` step
    whose next state is gymnax's reset from the second half of the step's key, and the
    caregiver sees the fallen state, not the reset one. Truncation comes only at max_steps."""
    seen = []

    def done_and_x(state, action, next_state, reward, done):
        return jnp.where(done, 1000.0, 0.0) + next_state.x

    env = from_gymnax(CARTPOLE, CARTPOLE_PARAMS, done_and_x, max_steps=40)
    params = env.make_params()
    step = jax.jit(env.step)
    current = env.reset(jax.random.key(0), params)
    for t in range(45):
        key = jax.random.key(10 + t)
        moved, transition = step(key, current, jnp.int32(1), params)
        fallen = bool(transition.goal_reached)
        seen.append((fallen, bool(transition.truncated), bool(transition.terminated)))
        if fallen:
            _, reset_state = CARTPOLE.reset_env(jax.random.split(key)[1], CARTPOLE_PARAMS)
            assert float(moved.gymnax.x) == float(reset_state.x) and int(moved.gymnax.time) == 0
            assert float(transition.social_reward) > 1000.0 - 2.5  # the fallen state's x
        else:
            assert float(transition.social_reward) == pytest.approx(float(moved.gymnax.x))
        current = moved
    falls = [t for t, (fallen, _, _) in enumerate(seen) if fallen]
    assert len(falls) >= 3 and all(terminated for fallen, _, terminated in seen if fallen)
    truncated = [t for t, (_, trunc, _) in enumerate(seen) if trunc]
    assert truncated == list(range(39, 45))  # from step 40 on; step never resets our episode
    assert int(current.time) == 45


def test_from_gymnax_counts_gymnax_time_limits_as_episode_ends():
    short = CARTPOLE_PARAMS.replace(max_steps_in_episode=3)
    env = from_gymnax(CARTPOLE, short, centre_keeper, max_steps=10)
    params = env.make_params()
    current = env.reset(jax.random.key(0), params)
    ends = []
    for t in range(6):
        action = jnp.int32(t % 2)  # wiggle: the pole stays up
        current, transition = env.step(jax.random.key(t), current, action, params)
        ends.append((bool(transition.goal_reached), bool(transition.terminated)))
    assert ends == [(False, False), (False, False), (True, False)] * 2


def test_round_trip_through_both_adapters_keeps_the_rewards():
    """GoalsEnv -> gymnax -> ours: R_e of the result is R_e + R_s of GoalsEnv (the caregiver's
    reward has become the environment's); the gymnax view's truncation is a gymnax episode end."""
    env = from_gymnax(
        to_gymnax(GOALS, GOALS_PARAMS), GOALS_PARAMS, lambda *_: jnp.float32(0.0), max_steps=20
    )
    params = env.make_params()
    assert env.obs_shape == GOALS.obs_shape and env.num_actions == 3
    steps = 40
    keys = jax.random.split(jax.random.key(4), steps)
    actions = jax.random.randint(jax.random.key(5), (steps,), 0, 3)

    def one_step(current, key_action):
        key, action = key_action
        current, transition = env.step(key, current, action, params)
        return current, transition

    # Our step hands gymnax the first half of its key (GoalsEnv steps with it) and resets with
    # the second: as gymnax's own `step` does, which `play_direct` replays.
    first = env.reset(jax.random.key(99), params)
    _, ours = jax.jit(lambda: jax.lax.scan(one_step, first, (keys, actions)))()
    direct, direct_obs = jax.jit(play_direct, static_argnums=0)(GOALS, GOALS_PARAMS, keys, actions)
    np.testing.assert_array_equal(ours.env_reward, direct.env_reward + direct.social_reward)
    np.testing.assert_array_equal(ours.goal_reached, direct.truncated)
    np.testing.assert_array_equal(ours.obs, direct_obs.astype(np.float32))
    assert np.argmax(ours.truncated) == 19 and direct.goal_reached.any()  # ours ends at 20


def test_a_gymnax_environment_trains_in_ppo():
    env = from_gymnax(CARTPOLE, CARTPOLE_PARAMS, centre_keeper, max_steps=16)
    config = PRESETS["fast"].replace(
        num_envs=4, num_steps=32, minibatch_size=64, num_epochs=1, obs_scale=1.0
    )
    ppo = PPO(config, env, env.make_params())
    runner, metrics, _ = jax.jit(lambda key: ppo.run(ppo.init(key), caregiver_present(), 2))(
        jax.random.key(0)
    )
    assert metrics.env_reward.shape == (2,) and (metrics.step == jnp.array([128, 256])).all()
    np.testing.assert_allclose(metrics.env_reward, 16.0)  # CartPole pays 1 per step
    assert (metrics.social_reward < 0).all()
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(metrics))
    assert runner.obs.shape == (4, 1, 1, 4)


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("max_steps", [0, -5, 2.5, True, None])
def test_from_gymnax_rejects_a_bad_max_steps(max_steps):
    with pytest.raises(ValueError, match="max_steps"):
        from_gymnax(CARTPOLE, CARTPOLE_PARAMS, centre_keeper, max_steps)


def test_make_params_rejects_a_bad_max_steps():
    env = from_gymnax(CARTPOLE, CARTPOLE_PARAMS, centre_keeper, 10)
    with pytest.raises(ValueError, match="max_steps must be positive"):
        env.make_params(max_steps=0)


def test_from_gymnax_rejects_a_caregiver_of_the_wrong_shape():
    def per_dimension(state, action, next_state, reward, done):
        return jnp.zeros(4)

    with pytest.raises(ValueError, match=r"scalar social reward.*\(4,\)"):
        from_gymnax(CARTPOLE, CARTPOLE_PARAMS, per_dimension, 10)
    with pytest.raises(ValueError, match="caregiver must be a function"):
        from_gymnax(CARTPOLE, CARTPOLE_PARAMS, 0.5, 10)


def test_from_gymnax_rejects_continuous_actions():
    pendulum, pendulum_params = gymnax.make("Pendulum-v1")
    with pytest.raises(ValueError, match="discrete actions"):
        from_gymnax(pendulum, pendulum_params, centre_keeper, 10)


def test_to_gymnax_rejects_what_is_not_an_environment():
    with pytest.raises(ValueError, match="protocol"):
        to_gymnax(object())


def test_without_gymnax_the_import_names_the_extra(monkeypatch):
    for name in [name for name in sys.modules if name == "gymnax" or name.startswith("gymnax.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "internalize.adapters.gymnax")
    with pytest.raises(ImportError, match=r"internalize\[gymnax\]"):
        importlib.import_module("internalize.adapters.gymnax")
