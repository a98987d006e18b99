"""The prosocial boulder world of Rong & Kleiman-Weiner (2024), as pure JAX functions (SPEC §3).

Description
    A 7x7 grid with an outer wall around a 5x5 interior holding 7 wall blocks, placed so that the
    open cells form one tree (`internalize.envs.tree_layouts`: 1,020 such layouts, drawn
    uniformly). A boulder lies on a cell of maximum degree of the tree (uniform among them). A
    scripted partner and the partner's goal sit at two leaves in different branches of the
    boulder, so the boulder blocks the partner's only path; the learner starts at another leaf,
    with a random heading. All draws are uniform among the cells the rules allow.

Actions of the learner (`BoulderAction`)
    0 turn left, 1 turn right, 2 move forward (walls, the boulder lying on the floor and the
    partner block the move), 3 pick up the boulder if it lies in the cell ahead, 4 drop the
    carried boulder into the cell ahead if that cell is open floor without the partner (the
    partner's goal counts as floor: the learner may block it). While carried, the boulder moves
    with the learner (`carrying` is part of the state).

The partner (`PartnerAction`: 0 stay, 1 right, 2 down, 3 left, 4 up)
    After the learner's action, the partner takes one step along a shortest path to its goal
    through open cells that hold neither the boulder (on the floor) nor the learner, found by a
    breadth-first search over the grid inside JAX; with no such path it stays. `step_joint`
    lets a caller choose the partner's action instead (a move into a blocked cell stays).

Observation, uint8[7, 7, 5], the whole grid indexed [x, y] (allocentric)
    Channels 0-2 are MiniGrid's encoding (object index, colour index, state): walls (WALL, GREY),
    the partner's goal (GOAL, GREEN), the boulder on the floor (BOX, YELLOW), the partner
    (AGENT, BLUE, 0), the learner (AGENT, RED, heading), empty floor (EMPTY, 0, 0). Channel 3 is
    1 on the partner's goal (also under the learner); channel 4 is 1 on the boulder's cell,
    also while carried (it is then the learner's cell), so the carrying bit is visible.

Rewards, returned apart because the MDP with social reward needs them apart
    `env_reward` (R_e): `forward_cost` (default -0.9 / max_steps = -0.009) for every forward
    action, whether or not the learner moves. `social_reward` (R_s): `goal_reward` (+0.4) when
    the partner reaches its goal.

Goals and episode end
    When the partner reaches its goal (`goal_reached`), the next state is a fresh layout and the
    episode goes on (the step counter is not reset). No terminal state: `truncated` is set on the
    step that reaches `max_steps` (default 100). `step` does not reset by itself; call `reset`.
"""

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from internalize.envs.base import RegeneratingWorld, Transition
from internalize.envs.constants import HEADING_TO_VEC, NUM_HEADINGS, Color, Tile
from internalize.envs.goals import GoalsEnv
from internalize.envs.layouts import border_mask, check_cell
from internalize.envs.tree_layouts import (
    LAYOUT_SIZE,
    N_WALLS,
    check_tree_walls,
    load_tree_layouts,
)

NUM_CHANNELS = 5
"""Observation channels: object index, colour index, state, is-goal, boulder."""
BOULDER_TILE, BOULDER_COLOUR = Tile.BOX, Color.YELLOW
"""How the boulder is encoded (MiniGrid has no boulder; a box is a carryable object)."""
LEARNER_COLOUR, PARTNER_COLOUR = Color.RED, Color.BLUE
UNREACHABLE = 1_000
"""Distance of a cell with no path to the partner's goal."""


class BoulderAction(IntEnum):
    """The learner's actions."""

    LEFT = 0
    """Turn left (counter-clockwise)."""
    RIGHT = 1
    """Turn right (clockwise)."""
    FORWARD = 2
    """Step into the cell ahead unless a wall, the boulder or the partner is there."""
    PICKUP = 3
    """Pick up the boulder lying in the cell ahead."""
    DROP = 4
    """Drop the carried boulder into the cell ahead (open floor, not the partner)."""


class PartnerAction(IntEnum):
    """The partner's moves: stay, or one cell along a `Heading` (action = heading + 1)."""

    STAY = 0
    RIGHT = 1
    DOWN = 2
    LEFT = 3
    UP = 4


NUM_PARTNER_ACTIONS = len(PartnerAction)
PARTNER_MOVES = np.concatenate([np.zeros((1, 2), np.int32), HEADING_TO_VEC])
"""(dx, dy) of each `PartnerAction`, int32[5, 2]."""


@struct.dataclass
class BoulderParams:
    """Settings of the task that may differ between vmapped environments (scalars are 0-d)."""

    max_steps: jax.Array
    """int32: episode length; `truncated` is set on the step that reaches it."""
    forward_cost: jax.Array
    """float32: environment reward of every forward action."""
    goal_reward: jax.Array
    """float32: social reward when the partner reaches its goal."""


@struct.dataclass
class BoulderState:
    """One environment's state; cells are (x, y) int32[2]."""

    walls: jax.Array
    """bool[size, size]: wall cells including the outer wall, indexed [x, y]."""
    boulder: jax.Array
    """int32[2]: the boulder's cell (the learner's while carried)."""
    carrying: jax.Array
    """bool: the learner carries the boulder."""
    learner: jax.Array
    """int32[2]: the learner's cell."""
    heading: jax.Array
    """int32: the learner's heading, a `Heading`."""
    partner: jax.Array
    """int32[2]: the partner's cell."""
    goal: jax.Array
    """int32[2]: the partner's goal cell."""
    time: jax.Array
    """int32: steps taken in this episode (not reset when a new layout is drawn)."""


@struct.dataclass
class BoulderTransition(Transition):
    """What one step returns besides the next state (`goal_reached`: the partner reached its
    goal, for which the caregiver pays R_s), and the partner's action."""

    partner_action: jax.Array
    """int32: the partner's action in this step, a `PartnerAction` (the ISR's second action)."""


def _neighbour(grid: jax.Array, direction: int, fill) -> jax.Array:
    """grid[x + dx, y + dy] for each cell of grid[..., n, n] (`fill` beyond the edge)."""
    dx, dy = (int(v) for v in HEADING_TO_VEC[direction])
    n = grid.shape[-1]
    padded = jnp.pad(grid, [(0, 0)] * (grid.ndim - 2) + [(1, 1), (1, 1)], constant_values=fill)
    return padded[..., 1 + dx : 1 + dx + n, 1 + dy : 1 + dy + n]


def _cell_mask(cell: jax.Array, size: int) -> jax.Array:
    """bool[size, size], True at `cell` (int[2])."""
    coords = jnp.arange(size)
    return (coords[:, None] == cell[0]) & (coords[None, :] == cell[1])


def _choose(key: jax.Array, mask: jax.Array) -> jax.Array:
    """A cell drawn uniformly among the True cells of bool[n, n], as int32[2] (x, y)."""
    n = mask.shape[-1]
    noise = jax.random.uniform(key, mask.shape)
    flat = jnp.argmax(jnp.where(mask, noise, -1.0).reshape(-1))
    return jnp.stack([flat // n, flat % n]).astype(jnp.int32)


def agent_cells(obs: jax.Array) -> jax.Array:
    """Where the learner and the partner are in a boulder-world observation.

    uint8[..., H, W, 5] -> bool[..., H, W, 2] (channel 0 the learner, 1 the partner): the cells
    the ISR writes each agent's action into (`internalize.isr.model.ISRNetwork`).
    """
    agent = obs[..., 0] == Tile.AGENT
    learner = agent & (obs[..., 1] == LEARNER_COLOUR)
    partner = agent & (obs[..., 1] == PARTNER_COLOUR)
    return jnp.stack([learner, partner], axis=-1)


@dataclass(frozen=True)
class BoulderEnv(RegeneratingWorld):
    """The boulder world. `size` is static (it fixes shapes); methods are pure and jittable.
    `reset`, `step`, `step_auto_reset` and `step_batch` come from `RegeneratingWorld`."""

    size: int = LAYOUT_SIZE
    """Grid side including the outer wall; only 7 is shipped with tree layouts."""
    egocentric: bool = True
    """Observe the grid from the learner, as in task 1 (a 9x9 window centred on the learner,
    turned with its heading), or as a fixed 7x7 map (False)."""

    @property
    def view(self) -> int:
        """Side of the observation: `2 * (size - 2) - 1` (9) egocentric, else `size`."""
        return 2 * (self.size - 2) - 1 if self.egocentric else self.size

    def __post_init__(self) -> None:
        if self.size != LAYOUT_SIZE:
            raise ValueError(
                f"the boulder world's tree layouts are drawn for a {LAYOUT_SIZE}x{LAYOUT_SIZE} "
                f"grid, got size {self.size!r}"
            )

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        return (self.view, self.view, NUM_CHANNELS)

    @property
    def num_actions(self) -> int:
        return len(BoulderAction)

    @property
    def num_partner_actions(self) -> int:
        return NUM_PARTNER_ACTIONS

    @property
    def default_max_steps(self) -> int:
        """SPEC §3's episode length."""
        return 100

    @property
    def search_depth(self) -> int:
        """Breadth-first search rounds: the longest path in a tree of the open cells."""
        return (self.size - 2) ** 2 - N_WALLS - 1

    def layouts(self) -> np.ndarray:
        """All tree layouts as full wall masks (outer wall included), bool[1020, size, size]."""
        interior = load_tree_layouts()
        full = np.broadcast_to(border_mask(self.size), (len(interior), self.size, self.size))
        full = full.copy()
        full[:, 1:-1, 1:-1] = interior
        return full

    # ----------------------------------------------------------------------------- parameters

    def make_params(
        self,
        max_steps: int | None = None,
        forward_cost: float | None = None,
        goal_reward: float = 0.4,
    ) -> BoulderParams:
        """Checked parameters; `forward_cost` defaults to `-0.9 / max_steps` (max_steps 100)."""
        max_steps = self.default_max_steps if max_steps is None else max_steps
        if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)):
            raise ValueError(f"max_steps must be an integer, got {max_steps!r}")
        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        forward_cost = -0.9 / max_steps if forward_cost is None else forward_cost
        for name, value in (("forward_cost", forward_cost), ("goal_reward", goal_reward)):
            if not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        return BoulderParams(
            max_steps=jnp.int32(max_steps),
            forward_cost=jnp.float32(forward_cost),
            goal_reward=jnp.float32(goal_reward),
        )

    # ----------------------------------------------------------------------------- layouts

    def place(self, key: jax.Array, walls: jax.Array, time: jax.Array) -> BoulderState:
        """Boulder, partner, goal and learner on the tree layout `walls` (bool[size, size]).

        The boulder on a cell of maximum degree; the partner at a leaf; its goal at a leaf in
        another branch of the boulder; the learner at a third leaf; each uniform among the
        cells allowed, the heading uniform.
        """
        key_boulder, key_partner, key_goal, key_learner, key_heading = jax.random.split(key, 5)
        open_cells = ~walls
        degree = sum(
            (_neighbour(open_cells, d, False) & open_cells).astype(jnp.int32)
            for d in range(NUM_HEADINGS)
        )
        boulder = _choose(key_boulder, open_cells & (degree == degree.max()))
        boulder_mask = _cell_mask(boulder, self.size)
        # Branch labels: each open cell but the boulder's gets the direction (0..3) of the
        # boulder's neighbour whose branch holds it; -1 elsewhere. Branches are disjoint
        # subtrees, so growing every label by a max over neighbours never mixes two.
        others = open_cells & ~boulder_mask
        label = jnp.full((self.size, self.size), -1, jnp.int32)
        for d in range(NUM_HEADINGS):
            label = jnp.where(_neighbour(boulder_mask, (d + 2) % 4, False) & others, d, label)

        def grow(_, label):
            reach = jnp.max(
                jnp.stack([_neighbour(label, d, -1) for d in range(NUM_HEADINGS)]), axis=0
            )
            return jnp.where(others & (label < 0), reach, label)

        label = jax.lax.fori_loop(0, self.search_depth, grow, label)
        leaves = open_cells & (degree == 1)
        partner = _choose(key_partner, leaves)
        goal = _choose(key_goal, leaves & (label != label[partner[0], partner[1]]))
        taken = _cell_mask(partner, self.size) | _cell_mask(goal, self.size)
        learner = _choose(key_learner, leaves & ~taken)
        return BoulderState(
            walls=walls,
            boulder=boulder,
            carrying=jnp.bool_(False),
            learner=learner,
            heading=jax.random.randint(key_heading, (), 0, NUM_HEADINGS, jnp.int32),
            partner=partner,
            goal=goal,
            time=jnp.asarray(time, jnp.int32),
        )

    def sample_layout(self, key: jax.Array, params: BoulderParams, time: jax.Array):
        """A uniformly drawn tree layout with everything `place`d on it."""
        key_layout, key_place = jax.random.split(key)
        layouts = jnp.asarray(self.layouts())
        walls = layouts[jax.random.randint(key_layout, (), 0, layouts.shape[0])]
        return self.place(key_place, walls, time)

    # ----------------------------------------------------------------------------- partner

    def distances_to_goal(self, state: BoulderState) -> jax.Array:
        """Steps from each cell to the partner's goal through passable cells, int32[size, size].

        Passable: open, not the boulder lying on the floor, not the learner. `UNREACHABLE`
        where there is no path (and on impassable cells). A breadth-first search as
        `search_depth` rounds of relaxation, so its shape is static.
        """
        passable = ~state.walls & ~_cell_mask(state.learner, self.size)
        passable &= state.carrying | ~_cell_mask(state.boulder, self.size)
        start = jnp.where(passable & _cell_mask(state.goal, self.size), 0, UNREACHABLE)

        def relax(_, distance):
            nearest = jnp.min(
                jnp.stack([_neighbour(distance, d, UNREACHABLE) for d in range(NUM_HEADINGS)]),
                axis=0,
            )
            return jnp.where(passable, jnp.minimum(distance, nearest + 1), UNREACHABLE)

        return jax.lax.fori_loop(0, self.search_depth, relax, start)

    def partner_action(self, state: BoulderState) -> jax.Array:
        """The scripted partner's action in `state`, int32 `PartnerAction`: the move that takes
        it one step closer to its goal, or STAY when no path is open."""
        distance = self.distances_to_goal(state)
        here = distance[state.partner[0], state.partner[1]]
        ahead = state.partner + jnp.asarray(HEADING_TO_VEC)
        ahead = jnp.clip(ahead, 0, self.size - 1)
        closer = distance[ahead[:, 0], ahead[:, 1]] == here - 1
        closer &= here < UNREACHABLE
        return jnp.where(closer.any(), jnp.argmax(closer) + 1, PartnerAction.STAY).astype(jnp.int32)

    # ----------------------------------------------------------------------------- dynamics

    def step_joint(
        self,
        key: jax.Array,
        state: BoulderState,
        action: jax.Array,
        partner_action: jax.Array,
        params: BoulderParams,
    ) -> tuple[BoulderState, BoulderTransition]:
        """`step` with the partner's action chosen by the caller (a `PartnerAction`)."""
        moved = self.move(state, action, params, partner_action)
        return self.settle(key, *moved, params, auto_reset=False)

    def move(
        self,
        state: BoulderState,
        action: jax.Array,
        params: BoulderParams,
        partner_action: jax.Array | None = None,
    ) -> tuple[BoulderState, BoulderTransition]:
        """The step before any fresh layout: the learner, then the partner (the scripted one,
        or `partner_action` if given); no obs."""
        action = jnp.asarray(action)
        ahead = state.learner + jnp.asarray(HEADING_TO_VEC)[state.heading]
        wall_ahead = state.walls[ahead[0], ahead[1]]
        boulder_ahead = ~state.carrying & jnp.all(state.boulder == ahead)
        partner_ahead = jnp.all(state.partner == ahead)
        blocked = wall_ahead | boulder_ahead | partner_ahead
        forward = action == BoulderAction.FORWARD
        moves = forward & ~blocked
        learner = jnp.where(moves, ahead, state.learner)
        picks = (action == BoulderAction.PICKUP) & boulder_ahead
        drops = (action == BoulderAction.DROP) & state.carrying & ~blocked
        carrying = (state.carrying | picks) & ~drops
        boulder = jnp.where(carrying, learner, jnp.where(drops, ahead, state.boulder))
        turn = (action == BoulderAction.RIGHT).astype(jnp.int32) - (action == BoulderAction.LEFT)
        after_learner = state.replace(
            learner=learner,
            heading=(state.heading + turn) % NUM_HEADINGS,
            carrying=carrying,
            boulder=boulder,
            time=state.time + 1,
        )
        if partner_action is None:
            partner_action = self.partner_action(after_learner)
        partner_action = jnp.asarray(partner_action, jnp.int32)
        target = after_learner.partner + jnp.asarray(PARTNER_MOVES)[partner_action]
        target = jnp.clip(target, 0, self.size - 1)
        target_blocked = (
            after_learner.walls[target[0], target[1]]
            | jnp.all(target == after_learner.learner)
            | (~after_learner.carrying & jnp.all(target == after_learner.boulder))
        )
        partner = jnp.where(target_blocked, after_learner.partner, target)
        goal_reached = jnp.all(partner == state.goal) & ~jnp.all(state.partner == state.goal)
        moved_state = after_learner.replace(partner=partner)
        transition = BoulderTransition(
            obs=None,
            env_reward=jnp.where(forward, params.forward_cost, 0.0),
            social_reward=jnp.where(goal_reached, params.goal_reward, 0.0),
            goal_reached=goal_reached,
            truncated=moved_state.time >= params.max_steps,
            partner_action=partner_action,
        )
        return moved_state, transition

    def observe(self, state: BoulderState) -> jax.Array:
        """The observation of `state`, uint8[size, size, 5] (see the module doc)."""
        size = self.size
        goal = _cell_mask(state.goal, size)
        boulder = _cell_mask(state.boulder, size)
        partner = _cell_mask(state.partner, size)
        learner = _cell_mask(state.learner, size)
        floor_boulder = boulder & ~state.carrying
        # Later entries win: the agents cover the goal, nothing covers a wall.
        layers = [
            (state.walls, Tile.WALL, Color.GREY, 0),
            (goal, Tile.GOAL, Color.GREEN, 0),
            (floor_boulder, BOULDER_TILE, BOULDER_COLOUR, 0),
            (partner, Tile.AGENT, PARTNER_COLOUR, 0),
            (learner, Tile.AGENT, LEARNER_COLOUR, state.heading),
        ]
        obj = jnp.full((size, size), Tile.EMPTY, jnp.int32)
        colour = jnp.zeros((size, size), jnp.int32)
        cell_state = jnp.zeros((size, size), jnp.int32)
        for mask, tile, tile_colour, value in layers:
            obj = jnp.where(mask, tile, obj)
            colour = jnp.where(mask, tile_colour, colour)
            cell_state = jnp.where(mask, value, cell_state)
        channels = [obj, colour, cell_state, goal, boulder]
        grid = jnp.stack([c.astype(jnp.uint8) for c in channels], axis=-1)
        if not self.egocentric:
            return grid
        # As in task 1: pad with zeros (MiniGrid's "unseen"), take the window centred on the
        # learner, turn it.
        half = self.view // 2
        padded = jnp.pad(grid, ((half, half), (half, half), (0, 0)))
        window = jax.lax.dynamic_slice(
            padded, (state.learner[0], state.learner[1], 0), (self.view, self.view, NUM_CHANNELS)
        )
        return GoalsEnv._rotate(window, state.heading)

    # ----------------------------------------------------------------------------- set-up

    def state_from_layout(
        self,
        walls: Any,
        boulder: Any,
        partner: Any,
        goal: Any,
        learner: Any,
        heading: int,
        carrying: bool = False,
        time: int = 0,
    ) -> BoulderState:
        """A state from explicit parts, checked. `walls`: the 7 interior (x, y) wall cells.

        Positions may be anywhere the physics allows (the placement rules of `place` are not
        required, so that tests and users can build any situation). Raises ValueError naming
        the problem: a layout that is not a tree, a cell outside the interior or on a wall,
        overlapping positions, a partner with no goal (None) or already on it, a carried
        boulder that is not at the learner, or a heading outside 0..3.
        """
        mask = check_tree_walls(walls, self.size)
        if goal is None:
            raise ValueError("the partner has no goal: give the goal cell")
        cells = {}
        for name, cell in (
            ("learner", learner),
            ("partner", partner),
            ("goal", goal),
            ("boulder", boulder),
        ):
            if cell is None:
                raise ValueError(f"the {name} cell is missing")
            cells[name] = check_cell(cell, self.size, name)
            if mask[cells[name]]:
                raise ValueError(f"{name} {cells[name]} is on a wall")
        if not isinstance(carrying, (bool, np.bool_)):
            raise ValueError(f"carrying must be True or False, got {carrying!r}")
        if carrying and cells["boulder"] != cells["learner"]:
            raise ValueError(
                f"a carried boulder is at the learner's cell {cells['learner']}, "
                f"got boulder {cells['boulder']}"
            )
        if cells["partner"] == cells["goal"]:
            raise ValueError(f"the partner already stands on its goal {cells['goal']}")
        names = ["learner", "partner", "goal"] + ([] if carrying else ["boulder"])
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                if {first, second} == {"learner", "goal"}:
                    continue  # the learner may stand on the partner's goal
                if cells[first] == cells[second]:
                    raise ValueError(f"{first} and {second} overlap at {cells[first]}")
        if isinstance(heading, bool) or not isinstance(heading, (int, np.integer)):
            raise ValueError(f"heading must be an integer in 0..3, got {heading!r}")
        if not 0 <= heading < NUM_HEADINGS:
            raise ValueError(f"heading must be in 0..3 (right, down, left, up), got {heading}")
        if time < 0:
            raise ValueError(f"time must be non-negative, got {time}")
        return BoulderState(
            walls=jnp.asarray(mask | border_mask(self.size)),
            boulder=jnp.asarray(cells["boulder"], jnp.int32),
            carrying=jnp.bool_(carrying),
            learner=jnp.asarray(cells["learner"], jnp.int32),
            heading=jnp.int32(heading),
            partner=jnp.asarray(cells["partner"], jnp.int32),
            goal=jnp.asarray(cells["goal"], jnp.int32),
            time=jnp.int32(time),
        )
