import gymnasium
import jax
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import internalize  # noqa: F401  (registers internalize/Goals-v0)
from internalize.adapters.gymnasium import GoalsGymEnv
from internalize.envs.layouts import NAMED_LAYOUTS


@pytest.mark.parametrize("kwargs", [{}, {"n_blocks": 0}, {"n_blocks": 10}, {"layout": "plus"}])
def test_check_env_passes(kwargs):
    env = gymnasium.make("internalize/Goals-v0", render_mode="rgb_array", **kwargs)
    check_env(env.unwrapped, skip_render_check=False)
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (9, 9, 4), np.uint8)
    assert env.action_space == gymnasium.spaces.Discrete(3)


@pytest.mark.parametrize("layout", sorted(NAMED_LAYOUTS))
def test_reset_options_give_exactly_that_state(env, layout):
    gym_env = gymnasium.make("internalize/Goals-v0", layout=layout)
    walls = NAMED_LAYOUTS[layout]
    free = [(x, y) for x in range(1, 6) for y in range(1, 6) if (x, y) not in walls]
    for heading in range(4):
        options = {"walls": walls, "goal": free[0], "agent": free[-1], "heading": heading}
        obs, _ = gym_env.reset(seed=heading, options=options)
        expected = env.observe(env.state_from_layout(**options))
        np.testing.assert_array_equal(obs, expected)
        state = gym_env.unwrapped.state
        assert tuple(state.goal) == free[0] and tuple(state.agent) == free[-1]
        assert int(state.heading) == heading
    # A layout name works as walls too.
    gym_env.reset(options={"walls": layout, "goal": free[0], "agent": free[1], "heading": 0})
    assert np.asarray(gym_env.unwrapped.state.walls)[1:-1, 1:-1].sum() == 5


def test_partial_options_draw_the_rest():
    gym_env = gymnasium.make("internalize/Goals-v0", n_blocks=6)
    for seed in range(20):
        gym_env.reset(seed=seed, options={"goal": (3, 3)})
        state = gym_env.unwrapped.state
        walls = np.asarray(state.walls)
        assert tuple(state.goal) == (3, 3) and walls[1:-1, 1:-1].sum() == 6
        assert not walls[tuple(state.agent)] and tuple(state.agent) != (3, 3) and not walls[3, 3]


def test_step_splits_rewards_in_info():
    gym_env = gymnasium.make("internalize/Goals-v0")
    gym_env.reset(seed=0, options={"walls": [], "goal": (3, 2), "agent": (3, 4), "heading": 3})
    _, reward, terminated, truncated, info = gym_env.step(2)
    assert info == {
        "env_reward": pytest.approx(-0.045),
        "social_reward": 0.0,
        "goal_reached": False,
    }
    assert reward == pytest.approx(-0.045) and not terminated and not truncated
    _, reward, terminated, _, info = gym_env.step(2)
    assert info["goal_reached"] and info["social_reward"] == pytest.approx(0.4)
    assert info["env_reward"] == 0.0 and reward == pytest.approx(0.4) and not terminated


def test_episode_truncates_after_max_steps():
    gym_env = gymnasium.make("internalize/Goals-v0", max_steps=5)
    gym_env.reset(seed=0)
    flags = [gym_env.step(0)[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]


def test_seeded_resets_repeat():
    a = gymnasium.make("internalize/Goals-v0")
    b = gymnasium.make("internalize/Goals-v0")
    obs_a, _ = a.reset(seed=42)
    obs_b, _ = b.reset(seed=42)
    np.testing.assert_array_equal(obs_a, obs_b)
    for action in [2, 2, 0, 2, 1, 2, 2, 2]:
        np.testing.assert_array_equal(a.step(action)[0], b.step(action)[0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": "red"}, "unknown reset option"),
        ({"goal": (0, 0)}, "goal \\(0, 0\\) is outside the interior"),
        ({"walls": [(2, 2)], "goal": (2, 2), "agent": (1, 1), "heading": 0}, "on a wall"),
        ({"walls": "spiral"}, "unknown layout"),
        ({"heading": 7}, "heading must be in 0..3"),
        ({"goal": (1.7, 2.9)}, r"goal must be an \(x, y\) pair of integers, got \(1.7, 2.9\)"),
        ({"goal": "12"}, "goal must be an \\(x, y\\) pair of integers, got '12'"),
        ({"agent": (True, 2)}, r"agent must be .* integers, got \(True, 2\)"),
        ({"walls": [(2, 2.0)]}, r"wall must be .* integers, got \(2, 2.0\)"),
        ({"heading": 1.0}, "heading must be an integer in 0..3, got 1.0"),
    ],
)
def test_bad_reset_options_are_named(options, message):
    gym_env = gymnasium.make("internalize/Goals-v0").unwrapped
    with pytest.raises(ValueError, match=message):
        gym_env.reset(seed=0, options=options)


def test_bad_construction_and_actions():
    with pytest.raises(ValueError, match="n_blocks=30 is impossible"):
        gymnasium.make("internalize/Goals-v0", n_blocks=30)
    with pytest.raises(ValueError, match="render_mode"):
        GoalsGymEnv(render_mode="ansi")
    gym_env = gymnasium.make("internalize/Goals-v0").unwrapped
    gym_env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be an integer in 0..2"):
        gym_env.step(3)


REJECTED = {"internalize/Goals-v0": {"goal": (0, 0)}, "internalize/Boulder-v0": {"learner": 3}}
"""Reset options each environment rejects."""


@pytest.mark.parametrize("env_id", sorted(REJECTED))
def test_a_rejected_reset_leaves_the_env_as_it_was(env_id):
    """The env after a rejected reset steps as its twin that never saw one does; under
    `gymnasium.make` (no passive checker: see `internalize`), steps after a rejected first
    reset work too."""
    first, twin = gymnasium.make(env_id), gymnasium.make(env_id)
    with pytest.raises(ValueError):
        first.reset(seed=1, options=REJECTED[env_id])
    for env in (first, twin):
        env.reset(seed=7)
    for action in [2, 2, 0, 2, 1, 2]:
        np.testing.assert_array_equal(first.step(action)[0], twin.step(action)[0])
    with pytest.raises(ValueError):
        first.reset(seed=99, options=REJECTED[env_id])  # neither reseeds nor moves anything
    for a, b in zip(
        jax.tree.leaves(first.unwrapped.state), jax.tree.leaves(twin.unwrapped.state), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.reset()[0], twin.reset()[0])
    np.testing.assert_array_equal(first.step(2)[0], twin.step(2)[0])
