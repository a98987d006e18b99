"""ISR reward maps: what an ISR pays in every agent cell, heading and action of one layout.

`goals_reward_maps` for the goals gridworld, `boulder_reward_maps` for the boulder world's
two-agent ISR (the partner's scripted move taken as the second action).

A picture of what the ISR has learnt, set beside the true social reward of the same states: an
ISR that pays where the caregiver would not shows the loops a learner can hack.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from internalize.envs.boulder import BoulderEnv, BoulderParams, agent_cells
from internalize.envs.constants import NUM_HEADINGS
from internalize.envs.goals import GoalsEnv, GoalsParams
from internalize.envs.layouts import walls_mask
from internalize.isr.ensemble import predict
from internalize.isr.model import ISRNetwork


def goals_reward_maps(
    env: GoalsEnv,
    params: GoalsParams,
    isr_params: Mapping[str, Any],
    walls: Sequence[Sequence[int]],
    goal: Sequence[int],
    network: ISRNetwork | None = None,
    measure=predict,
) -> dict[str, np.ndarray]:
    """Rewards of every (heading, action, x, y) for the agent on the layout `walls`, `goal`.

    Returns {"true": the social reward R_s of taking the action there, name: the ISR's
    prediction for each `isr_params` entry (an ensemble's aggregated reward; `measure`
    `internalize.isr.ensemble.disagreement` maps its members' disagreement instead)}, each
    float[headings, actions, size, size] indexed [heading, action, x, y], nan on walls, the
    outer wall and the goal (the agent is never there).
    """
    network = network or ISRNetwork()
    mask = walls_mask(walls, env.size)
    cells = [
        (x, y)
        for x in range(1, env.size - 1)
        for y in range(1, env.size - 1)
        if not mask[x, y] and (x, y) != tuple(goal)
    ]
    states = [
        env.state_from_layout(walls, goal, cell, heading)
        for heading in range(NUM_HEADINGS)
        for cell in cells
    ]
    states = jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)
    obs = jax.vmap(env.observe)(states)
    actions = jnp.arange(env.num_actions)

    def true_reward(state, action):
        _, transition = env.step(jax.random.key(0), state, action, params)
        return transition.social_reward

    values = {"true": jax.vmap(lambda s: jax.vmap(lambda a: true_reward(s, a))(actions))(states)}
    for name, isr in isr_params.items():
        values[name] = jax.vmap(
            lambda o, isr=isr: measure(
                network, isr, jnp.broadcast_to(o, (len(actions), *o.shape)), actions
            )
        )(obs)
    return _to_grids(values, cells, env.num_actions, env.size)


def boulder_reward_maps(
    env: BoulderEnv,
    params: BoulderParams,
    isr_params: Mapping[str, Any],
    walls: Sequence[Sequence[int]],
    partner: Sequence[int],
    goal: Sequence[int],
    boulder: Sequence[int] | None = None,
    network: ISRNetwork | None = None,
) -> dict[str, np.ndarray]:
    """Rewards of every (heading, action, x, y) for the learner of the boulder world.

    The tree layout `walls` (interior (x, y) wall cells) with the partner at `partner`, its
    goal at `goal`, and the boulder lying at `boulder`, or carried by the learner if None. For
    each learner cell and heading, each learner action is taken and the scripted partner
    moves (`BoulderEnv.step`); "true" is the caregiver's social reward R_s of that joint step
    (nonzero only when the partner arrives), and each `isr_params` entry the two-agent ISR's
    prediction for the same observation, learner action and the partner's scripted action.
    Each is float[headings, 5 actions, size, size] indexed [heading, action, x, y], nan where
    the learner cannot stand (walls, the partner, the boulder on the floor); the learner may
    stand on the goal.
    """
    network = network or ISRNetwork(agent_cells=agent_cells)
    mask = walls_mask(walls, env.size)
    taken = {tuple(partner)} | ({tuple(boulder)} if boulder is not None else set())
    cells = [
        (x, y)
        for x in range(1, env.size - 1)
        for y in range(1, env.size - 1)
        if not mask[x, y] and (x, y) not in taken
    ]
    states = [
        env.state_from_layout(
            walls,
            boulder=cell if boulder is None else boulder,
            partner=partner,
            goal=goal,
            learner=cell,
            heading=heading,
            carrying=boulder is None,
        )
        for heading in range(NUM_HEADINGS)
        for cell in cells
    ]
    states = jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)
    actions = jnp.arange(env.num_actions)

    def joint_step(state, action):
        _, transition = env.step(jax.random.key(0), state, action, params)
        return transition.social_reward, transition.partner_action

    true, partner_actions = jax.jit(
        jax.vmap(lambda s: jax.vmap(lambda a: joint_step(s, a))(actions))
    )(states)
    obs = jax.vmap(env.observe)(states)
    values = {"true": true}
    for name, isr in isr_params.items():
        values[name] = jax.vmap(
            lambda o, partner_action, isr=isr: predict(
                network, isr, jnp.broadcast_to(o, (len(actions), *o.shape)), actions, partner_action
            )
        )(obs, partner_actions)
    return _to_grids(values, cells, env.num_actions, env.size)


def _to_grids(values, cells, num_actions: int, size: int) -> dict[str, np.ndarray]:
    """float[headings * cells, actions] values (heading-major) -> nan-filled
    float[headings, actions, size, size] grids."""
    xs = np.asarray([cell[0] for cell in cells] * NUM_HEADINGS)
    ys = np.asarray([cell[1] for cell in cells] * NUM_HEADINGS)
    headings = np.repeat(np.arange(NUM_HEADINGS), len(cells))
    maps = {}
    for name, value in values.items():
        grid = np.full((NUM_HEADINGS, num_actions, size, size), np.nan)
        grid[headings, :, xs, ys] = np.asarray(value, np.float64)
        maps[name] = grid
    return maps
