"""The boulder world's PettingZoo and Gymnasium adapters pass their libraries' API checks."""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import internalize  # noqa: F401  (registers internalize/Boulder-v0)
from internalize.adapters.pettingzoo import BoulderParallelEnv
from internalize.envs.boulder import BoulderAction, BoulderEnv, PartnerAction

WALLS = [(1, 1), (1, 2), (2, 2), (2, 4), (3, 3), (4, 2), (4, 4)]  # see tests/envs/test_boulder.py
SCENARIO = {
    "walls": WALLS,
    "boulder": (5, 3),
    "partner": (4, 3),
    "goal": (3, 2),
    "learner": (5, 4),
    "heading": 3,
}


def test_parallel_api_test_passes():
    parallel_api_test(BoulderParallelEnv(max_steps=30), num_cycles=200)


def test_playing_the_scripted_partner_helps_it_home():
    env = BoulderParallelEnv()
    obs, infos = env.reset(seed=0, options=SCENARIO)
    assert set(obs) == {"learner", "partner"} and obs["learner"].shape == (9, 9, 5)
    assert infos["partner"]["scripted_action"] == PartnerAction.STAY
    assert env.scripted_partner_action() == PartnerAction.STAY
    actions = {"learner": BoulderAction.PICKUP, "partner": env.scripted_partner_action()}
    _, rewards, _, _, infos = env.step(actions)
    # The partner's own action was STAY this step (chosen before the pick-up); now it goes.
    assert infos["partner"]["scripted_action"] == PartnerAction.RIGHT
    total = 0.0
    for _ in range(7):
        actions = {"learner": BoulderAction.LEFT, "partner": env.scripted_partner_action()}
        _, rewards, _, _, infos = env.step(actions)
        total += rewards["partner"]
        if infos["learner"]["goal_reached"]:
            break
    assert infos["learner"]["goal_reached"] and rewards["learner"] == pytest.approx(0.4)
    assert total == pytest.approx(0.4)


def test_episodes_truncate_for_both_agents():
    env = BoulderParallelEnv(max_steps=3)
    env.reset(seed=1)
    for t in range(3):
        _, _, terminations, truncations, _ = env.step({"learner": 0, "partner": 0})
        assert not any(terminations.values())
        assert all(truncations.values()) == (t == 2)
    assert env.agents == []


def test_check_env_passes_for_the_learners_view():
    env = gymnasium.make("internalize/Boulder-v0", render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (9, 9, 5), np.uint8)
    assert env.action_space == gymnasium.spaces.Discrete(5)


def test_gym_reset_options_set_the_state():
    env = gymnasium.make("internalize/Boulder-v0")
    obs, _ = env.reset(seed=0, options=SCENARIO)
    expected = BoulderEnv().state_from_layout(**SCENARIO)
    np.testing.assert_array_equal(obs, BoulderEnv().observe(expected))
    _, reward, _, _, info = env.step(BoulderAction.PICKUP)
    assert info["partner_action"] == PartnerAction.RIGHT and reward == 0.0
    # Walls alone: positions drawn by the task's rules on that layout.
    env.reset(seed=3, options={"walls": WALLS})
    state = env.unwrapped.state
    assert np.asarray(state.walls)[1:-1, 1:-1].sum() == 7
    assert tuple(np.asarray(state.boulder)) in {(3, 1), (5, 3), (3, 5)}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"boulder": (5, 3)}, "need 'walls'"),
        ({"walls": WALLS, "boulder": (5, 3)}, "but not partner, goal, learner"),
        ({**SCENARIO, "walls": WALLS[:6] + [(3, 2)]}, "not a tree"),
        ({**SCENARIO, "goal": None}, "the partner has no goal"),
        ({**SCENARIO, "learner": (4, 3)}, "learner and partner overlap"),
    ],
)
def test_bad_reset_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        gymnasium.make("internalize/Boulder-v0").unwrapped.reset(seed=0, options=options)
    with pytest.raises(ValueError, match=message):
        BoulderParallelEnv().reset(seed=0, options=options)


def test_unknown_options_raise_in_gymnasium_and_warn_in_pettingzoo():
    with pytest.raises(ValueError, match="unknown reset option"):
        gymnasium.make("internalize/Boulder-v0").unwrapped.reset(seed=0, options={"colour": 1})
    with pytest.warns(UserWarning, match="unknown reset option.*ignored"):
        BoulderParallelEnv().reset(seed=0, options={"colour": 1})
