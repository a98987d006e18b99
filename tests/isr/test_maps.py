"""Boulder-world reward maps: the caregiver's true reward with the scripted partner, and the
two-agent ISR's prediction, per learner cell, heading and action."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.envs.boulder import BoulderAction, BoulderEnv, agent_cells
from internalize.experiments.prosocial import MAP_GOAL, MAP_SITUATIONS, MAP_WALLS
from internalize.isr.maps import boulder_reward_maps
from internalize.isr.model import ISRNetwork

FREE, BLOCKED = (
    MAP_SITUATIONS["partner next to its goal"],
    MAP_SITUATIONS["boulder blocks the path"],
)


@pytest.fixture(scope="module")
def setting():
    env = BoulderEnv()
    network = ISRNetwork(agent_cells=agent_cells)
    isr = network.init(jax.random.key(3), jnp.zeros(env.obs_shape, jnp.uint8), 0, 0)
    return env, env.make_params(), network, isr


@pytest.fixture(scope="module")
def maps(setting):
    env, params, _, isr = setting
    return {
        name: boulder_reward_maps(
            env, params, {"isr": isr}, MAP_WALLS, cells["partner"], MAP_GOAL, cells["boulder"]
        )
        for name, cells in (("free", FREE), ("blocked", BLOCKED))
    }


def state(env, situation, learner, heading):
    carried = situation["boulder"] is None
    return env.state_from_layout(
        MAP_WALLS,
        boulder=learner if carried else situation["boulder"],
        partner=situation["partner"],
        goal=MAP_GOAL,
        learner=learner,
        heading=heading,
        carrying=carried,
    )


def test_true_rewards_by_hand(maps):
    free, blocked = maps["free"]["true"], maps["blocked"]["true"]
    assert free.shape == blocked.shape == (4, len(BoulderAction), 7, 7)
    open_cells = {(x, y) for x in range(1, 6) for y in range(1, 6) if (x, y) not in MAP_WALLS}
    for cells, true in ((FREE, free), (BLOCKED, blocked)):
        taken = {cells["partner"], cells["boulder"]}
        for x in range(7):
            for y in range(7):
                assert np.isnan(true[:, :, x, y]).all() == ((x, y) not in open_cells - taken)
    # The boulder on the junction: no single step lets the partner arrive.
    np.testing.assert_array_equal(blocked[~np.isnan(blocked)], 0.0)
    # The partner next to its goal arrives after every step but those from the goal, whose
    # only neighbour is the partner's cell: the learner cannot get out of its way.
    expected = np.full_like(free, 0.4)
    expected[:, :, MAP_GOAL[0], MAP_GOAL[1]] = 0.0
    known = ~np.isnan(free)
    np.testing.assert_allclose(free[known], expected[known], atol=1e-7)


@pytest.mark.parametrize(
    ("situation", "learner", "heading", "action"),
    [
        ("free", (3, 4), 1, BoulderAction.FORWARD),
        ("free", MAP_GOAL, 0, BoulderAction.FORWARD),  # blocked by the partner: stays
        ("blocked", (3, 2), 3, BoulderAction.PICKUP),  # clears the path, no arrival yet
        ("blocked", (5, 5), 3, BoulderAction.LEFT),
    ],
)
def test_maps_equal_stepping_the_env_and_calling_the_isr(
    setting, maps, situation, learner, heading, action
):
    env, params, network, isr = setting
    cells = FREE if situation == "free" else BLOCKED
    start = state(env, cells, learner, heading)
    _, transition = env.step(jax.random.key(0), start, action, params)
    x, y = learner
    found = maps[situation]
    assert found["true"][heading, action, x, y] == pytest.approx(float(transition.social_reward))
    predicted = network.apply(isr, env.observe(start), action, transition.partner_action)
    assert found["isr"][heading, action, x, y] == pytest.approx(float(predicted), abs=1e-5)


def test_the_partner_action_given_to_the_isr_is_the_scripted_one(setting, maps):
    # Picking the boulder up opens the path: the partner then moves instead of staying, and the
    # ISR's input differs from that of a step that leaves the boulder where it is.
    env, params, network, isr = setting
    start = state(env, BLOCKED, (3, 2), 3)
    _, picked = env.step(jax.random.key(0), start, BoulderAction.PICKUP, params)
    _, turned = env.step(jax.random.key(0), start, BoulderAction.LEFT, params)
    assert int(picked.partner_action) != 0 and int(turned.partner_action) == 0
    wrong = network.apply(isr, env.observe(start), BoulderAction.PICKUP, turned.partner_action)
    right = maps["blocked"]["isr"][3, BoulderAction.PICKUP, 3, 2]
    assert right != pytest.approx(float(wrong), abs=1e-6)


def test_the_prosocial_run_writes_its_reward_map(all_run):
    run = all_run / "prosocial"
    assert (run / "reward_map.png").stat().st_size > 10_000
    results = json.loads((run / "results.json").read_text())
    assert set(results["reward_map"]["max_abs_error"]) == set(MAP_SITUATIONS)
