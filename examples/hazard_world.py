"""A hazard world: the template for bringing your own environment to `internalize`.

Copy this file, change the rules, and hand `make_env()` to `PPO` (or name it on the command
line as `your_module:make_env`). It follows the protocol of `internalize.envs.base` directly,
using nothing of ours but `Transition`: a frozen dataclass of static settings (`size` fixes the
array shapes), checked params from `make_params` (a pytree you can vmap over), and pure
`reset`, `step` and `observe`. Batching and auto-reset come from `envs.base.step_batch`.

Description
    An open `size` x `size` grid (default 5) holding the agent, a goal and a hazard. The goal is
    on a cell other than the agent's, the hazard on another at Manhattan distance >= 2 from the
    goal, so a careful agent can always reach the goal without passing next to the hazard.
    Reaching the goal draws a new goal and hazard (the agent stays) and the episode goes on.

Actions (`Move`)
    0 up, 1 down, 2 left, 3 right; a move off the grid leaves the agent where it is.

Observation, uint8[size, size, 3]
    One channel per `Channel` (agent, goal, hazard): 1 on that object's cell, else 0, indexed
    [row, column, channel]. Values are 0/1, so train with `obs_scale=1.0`.

Rewards
    `env_reward` (R_e): `goal_reward` (default 0.5) on reaching the goal, else 0.
    `social_reward` (R_s): the caregiver cares about *how* the agent moves, not about goals:
    `safe_reward` (default 0.5) for every step that ends at Manhattan distance >= 2 from the
    hazard, 0 for a step that ends on it or next to it. R_e alone is maximised by shortest
    paths, which often pass next to the hazard; R_e + R_s by detours around it, which cost a
    step or two. (Approval rather than a penalty: the two have the same optimum in episodes of
    fixed length, and the ISR of `internalize.isr` learns `max(R_s, 0)`, so it sees approval.)

Episode end
    No terminal state: `truncated` is set on the step that reaches `max_steps` (default 25).
    `step` never resets by itself.
"""

from dataclasses import dataclass
from enum import IntEnum

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from internalize.envs.base import Transition


class Move(IntEnum):
    UP = 0
    DOWN = 1
    LEFT = 2
    RIGHT = 3


MOVE_DELTAS = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int32)
"""(row, column) change of each `Move`."""


class Channel(IntEnum):
    AGENT = 0
    GOAL = 1
    HAZARD = 2


@struct.dataclass
class HazardParams:
    """Settings that may differ between vmapped environments (0-d arrays)."""

    max_steps: jax.Array
    """int32: episode length; `truncated` is set on the step that reaches it."""
    goal_reward: jax.Array
    """float32: R_e for reaching the goal."""
    safe_reward: jax.Array
    """float32: R_s of a step that ends at distance >= 2 from the hazard."""


@struct.dataclass
class HazardState:
    agent: jax.Array
    """int32[2]: (row, column) of the agent."""
    goal: jax.Array
    """int32[2]: (row, column) of the goal."""
    hazard: jax.Array
    """int32[2]: (row, column) of the hazard."""
    time: jax.Array
    """int32: steps taken in this episode."""


@dataclass(frozen=True)
class HazardWorld:
    size: int = 5
    """Side of the grid (static: it fixes the observation shape); at least 3."""

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 3:
            raise ValueError(f"size must be an integer of at least 3, got {self.size!r}")

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, len(Channel))

    @property
    def num_actions(self) -> int:
        return len(Move)

    def make_params(
        self, max_steps: int = 25, goal_reward: float = 0.5, safe_reward: float = 0.5
    ) -> HazardParams:
        """Checked params; a ValueError names a bad setting."""
        if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)):
            raise ValueError(f"max_steps must be an integer, got {max_steps!r}")
        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        for name, value in (("goal_reward", goal_reward), ("safe_reward", safe_reward)):
            if not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        return HazardParams(
            jnp.int32(max_steps), jnp.float32(goal_reward), jnp.float32(safe_reward)
        )

    def reset(self, key: jax.Array, params: HazardParams) -> HazardState:
        key_agent, key_rest = jax.random.split(key)
        agent = self.random_cell(key_agent, jnp.ones(self.size**2, bool))
        return HazardState(agent, *self.place_goal_and_hazard(key_rest, agent), jnp.int32(0))

    def place_goal_and_hazard(self, key: jax.Array, agent: jax.Array) -> tuple[jax.Array, ...]:
        """A goal off the agent's cell, a hazard off it at Manhattan distance >= 2 from the goal."""
        key_goal, key_hazard = jax.random.split(key)
        cells = np.stack(np.divmod(np.arange(self.size**2), self.size), axis=-1)
        free = (cells != agent).any(-1)
        goal = self.random_cell(key_goal, free)
        hazard = self.random_cell(key_hazard, free & (jnp.abs(cells - goal).sum(-1) >= 2))
        return goal, hazard

    def random_cell(self, key: jax.Array, allowed: jax.Array) -> jax.Array:
        """int32[2]: (row, column) of a cell drawn uniformly where `allowed` (bool[size**2])."""
        index = jax.random.choice(key, self.size**2, p=allowed / allowed.sum())
        return jnp.stack(jnp.divmod(index, self.size)).astype(jnp.int32)

    def step(
        self, key: jax.Array, state: HazardState, action: jax.Array, params: HazardParams
    ) -> tuple[HazardState, Transition]:
        agent = jnp.clip(state.agent + jnp.asarray(MOVE_DELTAS)[action], 0, self.size - 1)
        goal_reached = (agent == state.goal).all()
        safe = jnp.abs(agent - state.hazard).sum() >= 2
        fresh_goal, fresh_hazard = self.place_goal_and_hazard(key, agent)
        time = state.time + 1
        next_state = HazardState(
            agent=agent,
            goal=jnp.where(goal_reached, fresh_goal, state.goal),
            hazard=jnp.where(goal_reached, fresh_hazard, state.hazard),
            time=time,
        )
        return next_state, Transition(
            obs=self.observe(next_state),
            env_reward=jnp.where(goal_reached, params.goal_reward, 0.0),
            social_reward=jnp.where(safe, params.safe_reward, 0.0),
            goal_reached=goal_reached,
            truncated=time >= params.max_steps,
        )

    def observe(self, state: HazardState) -> jax.Array:
        cells = jnp.stack([state.agent, state.goal, state.hazard])  # [Channel, (row, column)]
        grid = jnp.zeros(self.obs_shape, jnp.uint8)
        return grid.at[cells[:, 0], cells[:, 1], jnp.arange(len(Channel))].set(1)


def make_env() -> HazardWorld:
    """The environment a user names on the command line (`examples.hazard_world:make_env`)."""
    return HazardWorld()
