"""benchmarks/boulder_help_length.py: the shortest help it finds in a case counted by hand, and
a random learner's helps, which the learner's start on the goal's side makes rarer."""

import importlib.util
from pathlib import Path

import jax
import numpy as np

from internalize.envs.boulder import BoulderEnv, BoulderRules
from internalize.envs.constants import HEADING_TO_VEC

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "boulder_help_length.py"


def _script():
    spec = importlib.util.spec_from_file_location("boulder_help_length", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shortest_help_of_a_learner_facing_the_boulder_is_two_actions():
    """Partner, goal and learner on three neighbours of the boulder, the learner facing it: it
    picks the boulder up (the partner steps onto the boulder's cell), and the partner steps onto
    its goal: 2 actions, and none in 1."""
    env = BoulderEnv()
    state = env.reset(jax.random.key(0), env.make_params())
    walls = np.asarray(state.walls)
    boulder = np.asarray(state.boulder)
    around = [
        (heading, boulder + step)
        for heading, step in enumerate(HEADING_TO_VEC)
        if not walls[tuple(boulder + step)]
    ]
    assert len(around) >= 3  # the boulder lies on a junction
    (_, partner), (_, goal), (heading, learner) = around[:3]
    facing_boulder = (heading + 2) % 4
    near = env.state_from_layout(
        np.argwhere(walls[1:-1, 1:-1]) + 1, boulder, partner, goal, learner, facing_boulder
    )
    states = jax.tree.map(lambda x: x[None], near)
    assert list(_script().shortest_helps(env, states, depth=10)) == [2]
    assert list(_script().shortest_helps(env, states, depth=1)) == [-1]


def test_a_random_learner_helps_less_often_from_the_goal_side():
    """4,000 episodes gave 0.196 and 0.075 arrivals per episode (docs/fidelity.md); 400 on
    seeds 0, 1, 2 gave 0.173 and 0.075, 0.213 and 0.090, 0.163 and 0.078 (the world and the
    draws are integer arithmetic: the same on every machine)."""
    script = _script()
    key = jax.random.key(0)
    paper = script.random_helps(BoulderEnv(), key, 400)
    goal_side = script.random_helps(
        BoulderEnv(rules=BoulderRules(learner_start="goal_side")), key, 400
    )
    assert paper.shape == goal_side.shape == (400,)
    assert paper.mean() > 0.1
    assert goal_side.mean() < 0.6 * paper.mean()
