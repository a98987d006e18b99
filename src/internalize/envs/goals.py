"""The goals gridworld of Rong & Kleiman-Weiner (2024), as pure JAX functions (SPEC §2).

Description
    A `size` x `size` grid (default 7) with an outer wall around a square interior. Some interior
    cells are wall blocks, one is the goal, one holds the agent, which faces one of four headings.
    The blocks are either `n_blocks` random cells, redrawn with every layout, or a fixed layout
    (see `internalize.envs.layouts`); goal, agent and heading are always random.

Actions (`Action`)
    0 turn left, 1 turn right, 2 move forward (a wall ahead blocks the move).

Observation, uint8[view, view, 4] with `view = 2 * (size - 2) - 1` (9 for the 7x7 grid)
    An egocentric window centred on the agent that always covers the whole interior, rotated so
    that row 0 lies ahead of the agent and columns run from its left to its right. Each cell holds
    MiniGrid's encoding (object index, colour index, state) and a fourth channel, 1 on the goal.
    The agent's own (centre) cell holds (AGENT, RED, heading). Cells beyond the grid are zeros,
    (0, 0, 0, 0): MiniGrid's "unseen" code, as `np.pad`'s default fill gives in the original (not
    the "empty" object 1). This is SPEC §2's reference construction: MiniGrid's `grid.encode()`
    with the agent drawn in, padded with zeros, windowed, `np.rot90(v, -(heading + 2))`, then
    `np.flip(v, axis=1)`.

Rewards, returned apart because the MDP with social reward needs them apart
    `env_reward` (R_e): `forward_cost` (default -0.9 / max_steps) for every forward action,
    whether or not it moves the agent, except the one that reaches the goal, which costs nothing.
    `social_reward` (R_s): `goal_reward` (default +0.4) on stepping onto the goal.

Goals and episode end
    Reaching the goal regenerates the layout at once (new blocks unless fixed, new goal, agent
    position and heading) and the episode goes on, so several goals fit in one episode. There is
    no terminal state: `truncated` is set on the step that reaches `max_steps` (default
    `4 * (size - 2) ** 2 // 5`, 20 for 7x7). `step` does not reset by itself; call `reset`.
"""

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from internalize.envs.base import RegeneratingWorld, Transition
from internalize.envs.constants import (
    HEADING_TO_VEC,
    NUM_HEADINGS,
    Action,
    Color,
    Tile,
)
from internalize.envs.layouts import border_mask, check_cell, named_layout, walls_mask

NUM_CHANNELS = 4
"""Observation channels: object index, colour index, state, is-goal."""


@struct.dataclass
class GoalsParams:
    """Settings of the task that may differ between vmapped environments (scalars are 0-d)."""

    n_blocks: jax.Array
    """int32: number of random wall blocks per layout (ignored when `use_fixed_walls`)."""
    fixed_walls: jax.Array
    """bool[size, size]: the fixed interior wall layout, indexed [x, y] (all False if random)."""
    use_fixed_walls: jax.Array
    """bool: draw walls from `fixed_walls` instead of `n_blocks` random cells."""
    max_steps: jax.Array
    """int32: episode length; `truncated` is set on the step that reaches it."""
    forward_cost: jax.Array
    """float32: environment reward of a forward action that does not reach the goal."""
    goal_reward: jax.Array
    """float32: social reward for stepping onto the goal."""


@struct.dataclass
class GoalsState:
    """One environment's state."""

    walls: jax.Array
    """bool[size, size]: wall cells including the outer wall, indexed [x, y]."""
    goal: jax.Array
    """int32[2]: goal cell (x, y)."""
    agent: jax.Array
    """int32[2]: agent cell (x, y)."""
    heading: jax.Array
    """int32: the agent's heading, a `Heading`."""
    time: jax.Array
    """int32: steps taken in this episode (not reset when a goal regenerates the layout)."""


def _pack(obj: int, colour: int, cell_state: int = 0, is_goal: int = 0) -> int:
    """A cell's four observation channels packed in one uint32, channel 0 in the low byte."""
    return obj | colour << 8 | cell_state << 16 | is_goal << 24


UNSEEN_CELL = 0  # beyond the grid: MiniGrid's "unseen" object 0 in every channel
EMPTY_CELL = _pack(Tile.EMPTY, 0)
WALL_CELL = _pack(Tile.WALL, Color.GREY)
GOAL_CELL = _pack(Tile.GOAL, Color.GREEN, is_goal=1)
AGENT_CELL = _pack(Tile.AGENT, Color.RED)  # the heading goes in the state channel
CHANNEL_SHIFTS = (0, 8, 16, 24)


def _rank(keys: jax.Array) -> jax.Array:
    """Rank of each element of `keys` in ascending order, ties broken by index, int32[n].

    All n x n comparisons rather than a sort: for the 25 cells of a layout this vectorises
    well on a CPU, where XLA's sort does not. The ranks are always a permutation of 0..n-1.
    """
    index = jnp.arange(keys.shape[0])
    before = (keys[None, :] < keys[:, None]) | (
        (keys[None, :] == keys[:, None]) & (index[None, :] < index[:, None])
    )
    return before.sum(axis=1, dtype=jnp.int32)


@dataclass(frozen=True)
class GoalsEnv(RegeneratingWorld):
    """The goals gridworld. `size` is static (it fixes array shapes); methods are pure, jittable.
    `reset`, `step`, `step_auto_reset` and `step_batch` come from `RegeneratingWorld`."""

    size: int = 7
    """Grid side including the outer wall; at least 4, so a goal and an agent fit inside."""

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 4:
            raise ValueError(f"grid size must be an integer of at least 4, got {self.size!r}")

    @property
    def interior(self) -> int:
        """Side of the interior (size - 2)."""
        return self.size - 2

    @property
    def view(self) -> int:
        """Side of the egocentric observation window."""
        return 2 * self.interior - 1

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        return (self.view, self.view, NUM_CHANNELS)

    @property
    def num_actions(self) -> int:
        return len(Action)

    @property
    def default_max_steps(self) -> int:
        """The original's episode length, `4 * interior**2 // 5` (20 for the 7x7 grid)."""
        return 4 * self.interior**2 // 5

    # ----------------------------------------------------------------------------- parameters

    def make_params(
        self,
        n_blocks: int | None = None,
        layout: str | Any | None = None,
        max_steps: int | None = None,
        forward_cost: float | None = None,
        goal_reward: float = 0.4,
    ) -> GoalsParams:
        """Checked parameters. Give `n_blocks` (random blocks, default 3) or `layout`, not both.

        `layout` is a name from `NAMED_LAYOUTS` or a sequence of interior `(x, y)` wall cells.
        `forward_cost` defaults to `-0.9 / max_steps`. Raises ValueError on impossible values.
        """
        if n_blocks is not None and layout is not None:
            raise ValueError(
                "give either n_blocks (random blocks) or layout (fixed walls), not both"
            )
        if layout is None:
            n_blocks = 3 if n_blocks is None else n_blocks
            self.check_blocks(n_blocks)
            fixed = np.zeros((self.size, self.size), dtype=bool)
        else:
            fixed = (
                named_layout(layout, self.size)
                if isinstance(layout, str)
                else walls_mask(layout, self.size)
            )
            n_blocks = int(fixed.sum())
        max_steps = self.default_max_steps if max_steps is None else max_steps
        if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)):
            raise ValueError(f"max_steps must be an integer, got {max_steps!r}")
        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        forward_cost = -0.9 / max_steps if forward_cost is None else forward_cost
        for name, value in (("forward_cost", forward_cost), ("goal_reward", goal_reward)):
            if not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        return GoalsParams(
            n_blocks=jnp.int32(n_blocks),
            fixed_walls=jnp.asarray(fixed),
            use_fixed_walls=jnp.bool_(layout is not None),
            max_steps=jnp.int32(max_steps),
            forward_cost=jnp.float32(forward_cost),
            goal_reward=jnp.float32(goal_reward),
        )

    def check_blocks(self, n_blocks: int) -> None:
        """Raise ValueError unless `n_blocks` random blocks fit beside a goal and an agent."""
        max_blocks = self.interior**2 - 2
        if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)):
            raise ValueError(f"n_blocks must be an integer, got {n_blocks!r}")
        if not 0 <= n_blocks <= max_blocks:
            raise ValueError(
                f"n_blocks={n_blocks} is impossible on a {self.size}x{self.size} grid: "
                f"the {self.interior**2} interior cells hold at most {max_blocks} blocks "
                "beside a goal and an agent"
            )

    # ----------------------------------------------------------------------------- dynamics

    def sample_layout(self, key: jax.Array, params: GoalsParams, time: jax.Array) -> GoalsState:
        """A random layout: blocks (unless fixed), then goal and agent on distinct free cells.

        One random order of the interior cells, with fixed walls (if any) sorted first, gives
        all three: the first `n` cells are the walls, the next the goal, the next the agent.
        """
        n = self.interior
        cells = n * n
        bits = jax.random.bits(key, (cells + 1,), jnp.uint32)
        draws, heading = bits[:cells], (bits[cells] % NUM_HEADINGS).astype(jnp.int32)
        fixed = params.use_fixed_walls & params.fixed_walls[1:-1, 1:-1].reshape(cells)
        n_walls = jnp.where(params.use_fixed_walls, fixed.sum(), params.n_blocks)
        # The top bit sorts fixed walls first; the other 31 are random.
        rank = _rank(jnp.where(fixed, 0, jnp.uint32(1 << 31)) | (draws >> 1))
        flat = jnp.arange(cells)
        goal = jnp.sum(jnp.where(rank == n_walls, flat, 0))
        agent = jnp.sum(jnp.where(rank == n_walls + 1, flat, 0))
        border = jnp.asarray(border_mask(self.size))
        return GoalsState(
            walls=border.at[1:-1, 1:-1].set((rank < n_walls).reshape(n, n)),
            goal=jnp.stack([goal // n + 1, goal % n + 1]).astype(jnp.int32),
            agent=jnp.stack([agent // n + 1, agent % n + 1]).astype(jnp.int32),
            heading=heading,
            time=jnp.asarray(time, jnp.int32),
        )

    def move(
        self,
        state: GoalsState,
        action: jax.Array,
        params: GoalsParams,
        key: jax.Array | None = None,
    ) -> tuple[GoalsState, Transition]:
        """The step before any fresh layout: the agent moved or turned, rewards, flags; no obs.
        `key` is not used: nothing in a move of the goals world is random."""
        action = jnp.asarray(action)  # a plain Python int works too, outside jit
        forward = action == Action.FORWARD
        ahead = state.agent + jnp.asarray(HEADING_TO_VEC)[state.heading]
        moved = forward & ~state.walls[ahead[0], ahead[1]]
        agent = jnp.where(moved, ahead, state.agent)
        goal_reached = moved & jnp.all(agent == state.goal)
        turn = (action == Action.RIGHT).astype(jnp.int32) - (action == Action.LEFT)
        time = state.time + 1
        moved_state = state.replace(
            agent=agent, heading=(state.heading + turn) % NUM_HEADINGS, time=time
        )
        transition = Transition(
            obs=None,
            env_reward=jnp.where(forward & ~goal_reached, params.forward_cost, 0.0),
            social_reward=jnp.where(goal_reached, params.goal_reward, 0.0),
            goal_reached=goal_reached,
            truncated=time >= params.max_steps,
        )
        return moved_state, transition

    def observe(self, state: GoalsState) -> jax.Array:
        """The egocentric observation of `state`, uint8[view, view, 4] (see the module doc)."""
        half = self.view // 2
        # The grid padded with zeros (MiniGrid's "unseen"), each cell's channels packed in a
        # uint32, so that the window is one slice (a gather of 81 single cells is several times
        # slower on a CPU).
        coords = jnp.arange(self.size + 2 * half) - half
        is_goal = (coords[:, None] == state.goal[0]) & (coords[None, :] == state.goal[1])
        walls = jnp.pad(state.walls, half)
        inside = jnp.pad(jnp.ones_like(state.walls), half)
        cells = jnp.where(is_goal, GOAL_CELL, jnp.where(walls, WALL_CELL, EMPTY_CELL))
        cells = jnp.where(inside, cells, UNSEEN_CELL)
        window = jax.lax.dynamic_slice(
            cells.astype(jnp.uint32), (state.agent[0], state.agent[1]), (self.view, self.view)
        )
        window = self._rotate(window, state.heading)
        agent = jnp.uint32(AGENT_CELL) | state.heading.astype(jnp.uint32) << 16
        window = window.at[half, half].set(agent)
        shifts = jnp.asarray(CHANNEL_SHIFTS, jnp.uint32)
        return (window[..., None] >> shifts & 0xFF).astype(jnp.uint8)

    @staticmethod
    def _rotate(window: jax.Array, heading: jax.Array) -> jax.Array:
        """SPEC §2's turn of a window indexed [x, y] into the agent's frame.

        `np.rot90(v, -(heading + 2))` then `np.flip(v, axis=1)`; all four headings are computed
        and one selected, which is cheaper than a gather.
        """
        turned = [
            jnp.flip(jnp.rot90(window, k=-(h + 2), axes=(0, 1)), axis=1)
            for h in range(NUM_HEADINGS)
        ]
        return jnp.select([heading == h for h in range(NUM_HEADINGS)], turned)

    # ----------------------------------------------------------------------------- set-up

    def state_from_layout(
        self,
        walls: Any,
        goal: Any,
        agent: Any,
        heading: int,
        time: int = 0,
    ) -> GoalsState:
        """A state from explicit parts, checked. `walls`: a layout name or interior (x, y) cells.

        Raises ValueError for cells outside the interior, a goal or agent on a wall, the agent on
        the goal, or a heading outside 0..3.
        """
        mask = (
            named_layout(walls, self.size)
            if isinstance(walls, str)
            else walls_mask(walls, self.size)
        )
        goal = check_cell(goal, self.size, "goal")
        agent = check_cell(agent, self.size, "agent")
        if mask[goal]:
            raise ValueError(f"goal {goal} is on a wall")
        if mask[agent]:
            raise ValueError(f"agent {agent} is on a wall")
        if goal == agent:
            raise ValueError(f"agent and goal are both at {goal}")
        if isinstance(heading, bool) or not isinstance(heading, (int, np.integer)):
            raise ValueError(f"heading must be an integer in 0..3, got {heading!r}")
        if not 0 <= heading < NUM_HEADINGS:
            raise ValueError(f"heading must be in 0..3 (right, down, left, up), got {heading}")
        if time < 0:
            raise ValueError(f"time must be non-negative, got {time}")
        return GoalsState(
            walls=jnp.asarray(mask | border_mask(self.size)),
            goal=jnp.asarray(goal, jnp.int32),
            agent=jnp.asarray(agent, jnp.int32),
            heading=jnp.int32(heading),
            time=jnp.int32(time),
        )
