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

The original's rules (SPEC §7), each a field of `BoulderRules` (`BoulderEnv.rules`; all of them:
`BoulderRules.original()`); the defaults are the model above (SPEC §3)
    `n_walls=8`: 8 wall blocks, 17 open cells, still a tree (8,445 layouts).
    `actions="original"`: the learner's actions are `OriginalAction` (0 still, 1 left, 2 right,
    3 forward, 4 pick up): it never drops the boulder.
    `learner_start="goal_side"`: the learner starts at a leaf on the goal's side of the boulder.
    `partner="original"`: the partner has a heading and the actions `OriginalAction` 0..3; it
    plans over walls only (in a tree, depth-first search finds the one path), faces the path's
    first cell by turning left until it does, then presses forward, blocked or not.
    `order="random"`: a fair coin (from the step's key) says who acts first; the learner's step
    cost is assigned, so where the partner arrives first and the learner then moves forward,
    the step's social reward is overwritten (0; the arrival still counts and regenerates).
    `observation="original"`: uint8[..., 7] cells as the original's multigrid fork encoded them
    (type, colour, carried type, carried colour, direction, an agent flag that is always 0,
    is-goal), on the same view.
"""

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from internalize.envs.base import RegeneratingWorld, Transition, move_key, select
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
ORIGINAL_CHANNELS = 7
"""Observation channels of `observation="original"`: type, colour, carried type, carried colour,
direction, agent flag (always 0), is-goal."""
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


class OriginalAction(IntEnum):
    """The learner's actions under `actions="original"` (multigrid's first five; the original
    declared its action space from 1, which Stable-Baselines3 ignored, so 0 is `still` and drop
    is out of reach), and the original partner's (0..3)."""

    STILL = 0
    """Do nothing."""
    LEFT = 1
    """Turn left (counter-clockwise)."""
    RIGHT = 2
    """Turn right (clockwise)."""
    FORWARD = 3
    """Step into the cell ahead unless a wall, the boulder or the other agent is there."""
    PICKUP = 4
    """Pick up the boulder lying in the cell ahead."""


NO_ACTION = len(BoulderAction)
"""The `BoulderAction` code that does nothing (`OriginalAction.STILL` is translated to it)."""
ORIGINAL_TO_PAPER = np.array(
    [
        NO_ACTION,
        BoulderAction.LEFT,
        BoulderAction.RIGHT,
        BoulderAction.FORWARD,
        BoulderAction.PICKUP,
    ],
    np.int32,
)
"""`BoulderAction` code of each `OriginalAction`."""
NUM_ORIGINAL_PARTNER_ACTIONS = 4
"""The original partner's actions: `OriginalAction` still, left, right, forward."""


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


ACTION_SETS = ("paper", "original")
LEARNER_STARTS = ("any_leaf", "goal_side")
PARTNERS = ("paper", "original")
ORDERS = ("learner_first", "random")
OBSERVATIONS = ("paper", "original")


@dataclass(frozen=True)
class BoulderRules:
    """The rules of the boulder world: SPEC §3's model by default, each one settable to what the
    original's code did (SPEC §7, docs/fidelity.md). Static: they fix shapes and code paths."""

    n_walls: int = N_WALLS
    """Interior wall blocks: 7 (SPEC §3: 18 open cells, 1,020 layouts) or 8 (the original's: 17
    open cells, 8,445 layouts); the open cells form a tree either way."""
    actions: str = "paper"
    """The learner's actions: `paper` (left, right, forward, pick up, drop) or `original` (still,
    left, right, forward, pick up: the original never drops the boulder, it can only carry it
    away or block with its body)."""
    learner_start: str = "any_leaf"
    """Where the learner starts: `any_leaf` (a leaf other than the partner's and its goal's) or
    `goal_side` (the original's: a leaf on the goal's side of the boulder, opposite the partner;
    where that side has no leaf but the goal, another cell of that side; where it is the goal
    alone, any free cell)."""
    partner: str = "paper"
    """The scripted partner: `paper` (one cell along a shortest path through cells free of the
    boulder and the learner, waiting when none is open) or `original` (a heading; it plans over
    walls only, ignoring the boulder and the learner, turns left until it faces the path's first
    cell, not the shorter way, and then presses forward, even when blocked)."""
    order: str = "learner_first"
    """Who acts first in a step: `learner_first`, or `random` (the original's: a fair coin each
    step; the learner's step cost is assigned, not added, so a learner moving forward after the
    partner arrived overwrites that step's social reward)."""
    observation: str = "paper"
    """Observation channels: `paper` (5: MiniGrid's three, is-goal, boulder) or `original` (the
    original's 7 multigrid channels: type, colour, carried type, carried colour, direction, an
    agent flag that is always 0, is-goal; learners scale them by `ppo.obs_scale`, which the
    original left at 1: not divided by 255)."""

    def __post_init__(self) -> None:
        if self.n_walls not in (7, 8):
            raise ValueError(f"n_walls must be 7 or 8, got {self.n_walls!r}")
        for name, known in (
            ("actions", ACTION_SETS),
            ("learner_start", LEARNER_STARTS),
            ("partner", PARTNERS),
            ("order", ORDERS),
            ("observation", OBSERVATIONS),
        ):
            if getattr(self, name) not in known:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; known: {list(known)}")

    @classmethod
    def original(cls) -> "BoulderRules":
        """Every rule as the original's code had it (SPEC §7)."""
        return cls(
            n_walls=8,
            actions="original",
            learner_start="goal_side",
            partner="original",
            order="random",
            observation="original",
        )


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
    partner_heading: jax.Array
    """int32: the partner's heading, a `Heading` (only `partner="original"` turns; else 0)."""
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


def _first_nonempty(masks: list[jax.Array]) -> jax.Array:
    """The first of the bool[n, n] `masks` with a True cell (the last if none has one)."""
    chosen = masks[-1]
    for mask in reversed(masks[:-1]):
        chosen = jnp.where(mask.any(), mask, chosen)
    return chosen


def agent_cells(obs: jax.Array) -> jax.Array:
    """Where the learner and the partner are in a boulder-world observation.

    uint8[..., H, W, C] (5 or 7 channels) -> bool[..., H, W, 2] (channel 0 the learner, 1 the
    partner): the cells the ISR writes each agent's action into
    (`internalize.isr.model.ISRNetwork`).
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
    rules: BoulderRules = BoulderRules()
    """The world's rules: SPEC §3's by default, or the original's (`BoulderRules`)."""

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
    def channels(self) -> int:
        """Channels of an observation: 5, or 7 with `observation="original"`."""
        return ORIGINAL_CHANNELS if self.rules.observation == "original" else NUM_CHANNELS

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        return (self.view, self.view, self.channels)

    @property
    def num_actions(self) -> int:
        return len(BoulderAction)

    @property
    def action_names(self) -> tuple[str, ...]:
        """The learner's actions by index, in lower case."""
        actions = OriginalAction if self.rules.actions == "original" else BoulderAction
        return tuple(action.name.lower() for action in actions)

    @property
    def num_partner_actions(self) -> int:
        """5 `PartnerAction`s, or 4 `OriginalAction`s (still, left, right, forward)."""
        if self.rules.partner == "original":
            return NUM_ORIGINAL_PARTNER_ACTIONS
        return NUM_PARTNER_ACTIONS

    @property
    def default_max_steps(self) -> int:
        """SPEC §3's episode length."""
        return 100

    @property
    def search_depth(self) -> int:
        """Breadth-first search rounds: the longest path in a tree of the open cells."""
        return (self.size - 2) ** 2 - self.rules.n_walls - 1

    def layouts(self) -> np.ndarray:
        """All tree layouts as full wall masks (outer wall included), bool[L, size, size] (L:
        1,020 with 7 walls, 8,445 with 8)."""
        interior = load_tree_layouts(self.rules.n_walls)
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
        another branch of the boulder; the learner at a third leaf (with `learner_start=
        "goal_side"`, one in the goal's branch); each uniform among the cells allowed, the
        heading uniform (the original partner's too). Where no such leaf exists (8-block
        layouts only: a path has two leaves; a goal's branch may hold no other), the learner
        takes another cell of the goal's branch (`goal_side`), else any free cell.
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
        goal_mask = _cell_mask(goal, self.size)
        taken = _cell_mask(partner, self.size) | goal_mask
        if self.rules.learner_start == "goal_side":
            side = others & (label == label[goal[0], goal[1]]) & ~goal_mask
            allowed = [leaves & side, side]
        else:
            allowed = [leaves & ~taken]
        learner = _choose(key_learner, _first_nonempty([*allowed, others & ~taken]))
        partner_heading = jnp.int32(0)
        if self.rules.partner == "original":  # a key of its own: the others' draws stay as they are
            partner_heading = jax.random.randint(
                jax.random.fold_in(key, 1), (), 0, NUM_HEADINGS, jnp.int32
            )
        return BoulderState(
            walls=walls,
            boulder=boulder,
            carrying=jnp.bool_(False),
            learner=learner,
            heading=jax.random.randint(key_heading, (), 0, NUM_HEADINGS, jnp.int32),
            partner=partner,
            partner_heading=partner_heading,
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

    def distances_to_goal(self, state: BoulderState, walls_only: bool = False) -> jax.Array:
        """Steps from each cell to the partner's goal through passable cells, int32[size, size].

        Passable: open, not the boulder lying on the floor, not the learner (with `walls_only`,
        every open cell: the original partner's plan). `UNREACHABLE` where there is no path
        (and on impassable cells). A breadth-first search as `search_depth` rounds of
        relaxation, so its shape is static.
        """
        passable = ~state.walls
        if not walls_only:
            passable &= ~_cell_mask(state.learner, self.size)
            passable &= state.carrying | ~_cell_mask(state.boulder, self.size)
        start = jnp.where(passable & _cell_mask(state.goal, self.size), 0, UNREACHABLE)

        def relax(_, distance):
            nearest = jnp.min(
                jnp.stack([_neighbour(distance, d, UNREACHABLE) for d in range(NUM_HEADINGS)]),
                axis=0,
            )
            return jnp.where(passable, jnp.minimum(distance, nearest + 1), UNREACHABLE)

        return jax.lax.fori_loop(0, self.search_depth, relax, start)

    def _closer(self, state: BoulderState, walls_only: bool) -> jax.Array:
        """bool[4]: for each heading, whether the partner's neighbour there is one step closer
        to its goal (all False with no path)."""
        distance = self.distances_to_goal(state, walls_only)
        here = distance[state.partner[0], state.partner[1]]
        ahead = state.partner + jnp.asarray(HEADING_TO_VEC)
        ahead = jnp.clip(ahead, 0, self.size - 1)
        return (distance[ahead[:, 0], ahead[:, 1]] == here - 1) & (here < UNREACHABLE)

    def partner_action(self, state: BoulderState) -> jax.Array:
        """The scripted partner's action in `state`, int32: the `PartnerAction` that takes it
        one step closer to its goal, or STAY when no path is open; with `partner="original"`
        the `OriginalAction` FORWARD if it faces the first cell of its path over walls only,
        else LEFT (STILL on its goal)."""
        if self.rules.partner == "original":
            closer = self._closer(state, walls_only=True)
            facing = jnp.argmax(closer) == state.partner_heading
            action = jnp.where(facing, OriginalAction.FORWARD, OriginalAction.LEFT)
            return jnp.where(closer.any(), action, OriginalAction.STILL).astype(jnp.int32)
        closer = self._closer(state, walls_only=False)
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
        """`step` with the partner's action chosen by the caller (a `PartnerAction`, or with
        `partner="original"` an `OriginalAction` 0..3)."""
        moved = self.move(state, action, params, partner_action, key=move_key(key))
        return self.settle(key, *moved, params, auto_reset=False)

    def move(
        self,
        state: BoulderState,
        action: jax.Array,
        params: BoulderParams,
        partner_action: jax.Array | None = None,
        key: jax.Array | None = None,
    ) -> tuple[BoulderState, BoulderTransition]:
        """The step before any fresh layout: the learner, then the partner (the scripted one,
        or `partner_action` if given), or with `order="random"` the two in the order a coin
        drawn from `key` says; no obs."""
        code = jnp.asarray(action)
        if self.rules.actions == "original":
            code = jnp.asarray(ORIGINAL_TO_PAPER)[code]
        forward = code == BoulderAction.FORWARD
        if self.rules.order == "random":
            if key is None:
                raise ValueError('order="random" draws who acts first: move needs a key')
            partner_first = jax.random.bernoulli(key)
            learner_then = self._partner_acts(self._learner_acts(state, code), partner_action)
            partner_then = self._partner_acts(state, partner_action)
            partner_then = (self._learner_acts(partner_then[0], code), partner_then[1])
            after, partner_action = select(partner_first, partner_then, learner_then)
            # The learner's step cost is assigned after the partner's reward: it overwrites it.
            paid = ~(partner_first & forward)
        else:
            after, partner_action = self._partner_acts(
                self._learner_acts(state, code), partner_action
            )
            paid = jnp.bool_(True)
        moved_state = after.replace(time=state.time + 1)
        arrived = jnp.all(after.partner == state.goal) & ~jnp.all(state.partner == state.goal)
        transition = BoulderTransition(
            obs=None,
            env_reward=jnp.where(forward, params.forward_cost, 0.0),
            social_reward=jnp.where(arrived & paid, params.goal_reward, 0.0),
            goal_reached=arrived,
            truncated=moved_state.time >= params.max_steps,
            partner_action=partner_action,
        )
        return moved_state, transition

    def _learner_acts(self, state: BoulderState, code: jax.Array) -> BoulderState:
        """`state` after the learner's `BoulderAction` `code` (`NO_ACTION`: nothing)."""
        ahead = state.learner + jnp.asarray(HEADING_TO_VEC)[state.heading]
        wall_ahead = state.walls[ahead[0], ahead[1]]
        boulder_ahead = ~state.carrying & jnp.all(state.boulder == ahead)
        partner_ahead = jnp.all(state.partner == ahead)
        blocked = wall_ahead | boulder_ahead | partner_ahead
        moves = (code == BoulderAction.FORWARD) & ~blocked
        learner = jnp.where(moves, ahead, state.learner)
        picks = (code == BoulderAction.PICKUP) & boulder_ahead
        drops = (code == BoulderAction.DROP) & state.carrying & ~blocked
        carrying = (state.carrying | picks) & ~drops
        boulder = jnp.where(carrying, learner, jnp.where(drops, ahead, state.boulder))
        turn = (code == BoulderAction.RIGHT).astype(jnp.int32) - (code == BoulderAction.LEFT)
        return state.replace(
            learner=learner,
            heading=(state.heading + turn) % NUM_HEADINGS,
            carrying=carrying,
            boulder=boulder,
        )

    def _partner_acts(
        self, state: BoulderState, partner_action: jax.Array | None
    ) -> tuple[BoulderState, jax.Array]:
        """`state` after the partner's action (the scripted one if None), and that action."""
        if partner_action is None:
            partner_action = self.partner_action(state)
        partner_action = jnp.asarray(partner_action, jnp.int32)
        heading = state.partner_heading
        if self.rules.partner == "original":
            turn = (partner_action == OriginalAction.RIGHT).astype(jnp.int32) - (
                partner_action == OriginalAction.LEFT
            )
            forward = partner_action == OriginalAction.FORWARD
            step = jnp.where(forward, jnp.asarray(HEADING_TO_VEC)[heading], 0)
            heading = (heading + turn) % NUM_HEADINGS
        else:
            step = jnp.asarray(PARTNER_MOVES)[partner_action]
        target = jnp.clip(state.partner + step, 0, self.size - 1)
        target_blocked = (
            state.walls[target[0], target[1]]
            | jnp.all(target == state.learner)
            | (~state.carrying & jnp.all(target == state.boulder))
        )
        partner = jnp.where(target_blocked, state.partner, target)
        return state.replace(partner=partner, partner_heading=heading), partner_action

    def observe(self, state: BoulderState) -> jax.Array:
        """The observation of `state`, uint8[view, view, channels] (see the module doc)."""
        size = self.size
        goal = _cell_mask(state.goal, size)
        boulder = _cell_mask(state.boulder, size)
        partner = _cell_mask(state.partner, size)
        learner = _cell_mask(state.learner, size)
        floor_boulder = boulder & ~state.carrying
        original = self.rules.observation == "original"
        # Later entries win: the agents cover the goal, nothing covers a wall. The paper's
        # third channel is MiniGrid's state (the learner's heading); the original's fifth is
        # every agent's direction.
        partner_direction = state.partner_heading if original else 0
        layers = [
            (state.walls, Tile.WALL, Color.GREY, 0),
            (goal, Tile.GOAL, Color.GREEN, 0),
            (floor_boulder, BOULDER_TILE, BOULDER_COLOUR, 0),
            (partner, Tile.AGENT, PARTNER_COLOUR, partner_direction),
            (learner, Tile.AGENT, LEARNER_COLOUR, state.heading),
        ]
        obj = jnp.full((size, size), Tile.EMPTY, jnp.int32)
        colour = jnp.zeros((size, size), jnp.int32)
        cell_state = jnp.zeros((size, size), jnp.int32)
        for mask, tile, tile_colour, value in layers:
            obj = jnp.where(mask, tile, obj)
            colour = jnp.where(mask, tile_colour, colour)
            cell_state = jnp.where(mask, value, cell_state)
        if original:
            carried = learner & state.carrying
            channels = [
                obj,
                colour,
                jnp.where(carried, BOULDER_TILE, 0),
                jnp.where(carried, BOULDER_COLOUR, 0),
                cell_state,
                jnp.zeros((size, size), jnp.int32),
                goal,
            ]
        else:
            channels = [obj, colour, cell_state, goal, boulder]
        grid = jnp.stack([c.astype(jnp.uint8) for c in channels], axis=-1)
        if not self.egocentric:
            return grid
        # As in task 1: pad with zeros (MiniGrid's "unseen"), take the window centred on the
        # learner, turn it.
        half = self.view // 2
        padded = jnp.pad(grid, ((half, half), (half, half), (0, 0)))
        window = jax.lax.dynamic_slice(
            padded, (state.learner[0], state.learner[1], 0), (self.view, self.view, self.channels)
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
        partner_heading: int = 0,
    ) -> BoulderState:
        """A state from explicit parts, checked. `walls`: the `rules.n_walls` interior (x, y)
        wall cells; `partner_heading` matters to the original partner only.

        Positions may be anywhere the physics allows (the placement rules of `place` are not
        required, so that tests and users can build any situation). Raises ValueError naming
        the problem: a layout that is not a tree, a cell outside the interior or on a wall,
        overlapping positions, a partner with no goal (None) or already on it, a carried
        boulder that is not at the learner, or a heading outside 0..3.
        """
        mask = check_tree_walls(walls, self.size, self.rules.n_walls)
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
        for name, value in (("heading", heading), ("partner_heading", partner_heading)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name} must be an integer in 0..3, got {value!r}")
            if not 0 <= value < NUM_HEADINGS:
                raise ValueError(f"{name} must be in 0..3 (right, down, left, up), got {value}")
        if time < 0:
            raise ValueError(f"time must be non-negative, got {time}")
        return BoulderState(
            walls=jnp.asarray(mask | border_mask(self.size)),
            boulder=jnp.asarray(cells["boulder"], jnp.int32),
            carrying=jnp.bool_(carrying),
            learner=jnp.asarray(cells["learner"], jnp.int32),
            heading=jnp.int32(heading),
            partner=jnp.asarray(cells["partner"], jnp.int32),
            partner_heading=jnp.int32(partner_heading),
            goal=jnp.asarray(cells["goal"], jnp.int32),
            time=jnp.int32(time),
        )
