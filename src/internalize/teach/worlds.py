"""What a teaching session needs of each world: the environment, its ISR network, the state as
the page draws it, and where the learner can stand (for the ISR's reward map).

`WORLDS` maps `--env` names to a `World`; a world of one's own is one more entry.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from internalize.envs.boulder import BoulderEnv, agent_cells
from internalize.envs.constants import NUM_HEADINGS
from internalize.envs.goals import GoalsEnv
from internalize.isr.model import centre_cell


def _cells(value) -> list[list[int]]:
    return np.argwhere(np.asarray(value)).tolist()


def _interior_walls(walls) -> list[list[int]]:
    walls = np.asarray(walls)
    return [
        [x, y]
        for x, y in _cells(walls)
        if 0 < x < walls.shape[0] - 1 and 0 < y < walls.shape[1] - 1
    ]


def _goals_picture(state) -> dict:
    return {
        "walls": _interior_walls(state.walls),
        "goal": np.asarray(state.goal).tolist(),
        "agent": np.asarray(state.agent).tolist(),
        "heading": int(state.heading),
    }


def _boulder_picture(state) -> dict:
    return {
        "walls": _interior_walls(state.walls),
        "goal": np.asarray(state.goal).tolist(),
        "agent": np.asarray(state.learner).tolist(),
        "heading": int(state.heading),
        "partner": np.asarray(state.partner).tolist(),
        "boulder": np.asarray(state.boulder).tolist(),
        "carrying": bool(state.carrying),
    }


def _goals_place(state, cell: jax.Array, heading: jax.Array):
    """`state` with the agent at `cell` facing `heading`, and whether it may stand there."""
    free = ~state.walls[cell[0], cell[1]] & ~jnp.all(cell == state.goal)
    return state.replace(agent=cell, heading=heading), free


def _boulder_place(state, cell: jax.Array, heading: jax.Array):
    occupied = jnp.all(cell == state.partner) | (~state.carrying & jnp.all(cell == state.boulder))
    free = ~state.walls[cell[0], cell[1]] & ~occupied
    boulder = jnp.where(state.carrying, cell, state.boulder)
    return state.replace(learner=cell, heading=heading, boulder=boulder), free


@dataclass(frozen=True)
class World:
    """One world a person can teach in."""

    make_env: Callable[[], Any]
    agent_cells: Callable[[jax.Array], jax.Array]
    """Where the ISR finds the agents in an observation (`isr.model.isr_input`)."""
    picture: Callable[[Any], dict]
    """A state (numpy leaves) as the page draws it: JSON-ready cells (x, y), heading."""
    place: Callable[[Any, jax.Array, jax.Array], tuple[Any, jax.Array]]
    """`(state, cell, heading) -> (state with the learner there, bool: it may stand there)`."""
    partner: bool = False
    """Two agents: the ISR reads the partner's action too."""


def map_key(picture: dict) -> str:
    """What the reward map of a state depends on, from its picture: everything but the learner,
    which the map places on every cell (a carried boulder with it)."""
    layout = {k: v for k, v in picture.items() if k not in ("agent", "heading")}
    if layout.get("carrying"):
        del layout["boulder"]
    return json.dumps(layout, sort_keys=True)


WORLDS = {
    "goals": World(GoalsEnv, centre_cell, _goals_picture, _goals_place),
    "boulder": World(BoulderEnv, agent_cells, _boulder_picture, _boulder_place, partner=True),
}


def reward_map(world: World, env, network, isr_params, state, weight) -> jax.Array:
    """float32[size, size]: the most the ISR pays the learner in each cell of `state`'s layout,
    over its headings and actions (0 where it cannot stand, and everywhere while `weight` is 0:
    no ISR yet). Jittable: every cell is tried, so the shape never changes."""
    size = env.size
    xs, ys = jnp.meshgrid(jnp.arange(size), jnp.arange(size), indexing="ij")
    cells = jnp.stack([xs.ravel(), ys.ravel()], axis=-1)
    actions = jnp.arange(env.num_actions)

    def best(cell):
        def one_heading(heading):
            placed, free = world.place(state, cell, heading)
            obs = jnp.broadcast_to(env.observe(placed), (len(actions), *env.obs_shape))
            partner = None
            if world.partner:
                partner = jnp.broadcast_to(env.partner_action(placed), actions.shape)
            return network.apply(isr_params, obs, actions, partner).max(), free

        values, free = jax.vmap(one_heading)(jnp.arange(NUM_HEADINGS))
        return jnp.where(free.any(), values.max(), 0.0)

    return (jax.vmap(best)(cells) * weight).reshape(size, size)
