"""ISR reward maps: what an ISR pays in every agent cell, heading and action of one layout.

A picture of what the ISR has learnt, set beside the true social reward of the same states: an
ISR that pays where the caregiver would not shows the loops a learner can hack.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from internalize.envs.constants import NUM_HEADINGS
from internalize.envs.goals import GoalsEnv, GoalsParams
from internalize.envs.layouts import walls_mask
from internalize.isr.model import ISRNetwork


def goals_reward_maps(
    env: GoalsEnv,
    params: GoalsParams,
    isr_params: Mapping[str, Any],
    walls: Sequence[Sequence[int]],
    goal: Sequence[int],
    network: ISRNetwork | None = None,
) -> dict[str, np.ndarray]:
    """Rewards of every (heading, action, x, y) for the agent on the layout `walls`, `goal`.

    Returns {"true": the social reward R_s of taking the action there, name: the ISR's
    prediction for each `isr_params` entry}, each float[headings, actions, size, size] indexed
    [heading, action, x, y], nan on walls, the outer wall and the goal (the agent is never
    there).
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
            lambda o, isr=isr: network.apply(
                isr, jnp.broadcast_to(o, (len(actions), *o.shape)), actions
            )
        )(obs)
    maps = {}
    xs = np.asarray([cell[0] for cell in cells] * NUM_HEADINGS)
    ys = np.asarray([cell[1] for cell in cells] * NUM_HEADINGS)
    headings = np.repeat(np.arange(NUM_HEADINGS), len(cells))
    for name, value in values.items():
        grid = np.full((NUM_HEADINGS, env.num_actions, env.size, env.size), np.nan)
        grid[headings, :, xs, ys] = np.asarray(value, np.float64)
        maps[name] = grid
    return maps
