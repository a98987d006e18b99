"""The boulder world: placement rules, the partner's breadth-first search, the learner's actions,
rewards, observations, jit/vmap, and the checks on hand-built states."""

from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.envs.boulder import (
    BoulderAction,
    BoulderEnv,
    PartnerAction,
    agent_cells,
)
from internalize.envs.constants import Color, Heading, Tile
from internalize.envs.tree_layouts import load_tree_layouts

# Layout 0 of the shipped data (x across, y down; # wall):
#   y1  # . . . .       leaves (2,1) (3,2) (4,3) (3,4) (2,3);
#   y2  # # . # .       degree 3 at (3,1) (5,3) (3,5)
#   y3  . . # . .
#   y4  . # . # .
#   y5  . . . . .
WALLS = [(1, 1), (1, 2), (2, 2), (2, 4), (3, 3), (4, 2), (4, 4)]
PATH = [(4, 3), (5, 3), (5, 2), (5, 1), (4, 1), (3, 1), (3, 2)]  # partner to goal
KEY = jax.random.key(0)
LEFT, FORWARD, PICKUP, DROP = (
    BoulderAction.LEFT,
    BoulderAction.FORWARD,
    BoulderAction.PICKUP,
    BoulderAction.DROP,
)


@pytest.fixture(scope="module")
def benv():
    return BoulderEnv()


@pytest.fixture(scope="module")
def fns(benv):
    return {
        "step": jax.jit(benv.step),
        "step_joint": jax.jit(benv.step_joint),
        "partner": jax.jit(benv.partner_action),
        "observe": jax.jit(benv.observe),
    }


def scenario(benv, **changes):
    """Partner at (4,3), goal (3,2), boulder on the junction (5,3) between them; the learner
    below the boulder at (5,4), facing it."""
    parts = dict(
        walls=WALLS, boulder=(5, 3), partner=(4, 3), goal=(3, 2), learner=(5, 4), heading=3
    )
    parts.update(changes)
    return benv.state_from_layout(**parts)


def bfs_distances(walls, blocked, goal):
    """Reference breadth-first search in Python: steps to `goal` from every reachable cell."""
    distance = {goal: 0} if goal not in blocked else {}
    queue = deque(distance)
    while queue:
        x, y = queue.popleft()
        for dx, dy in ((1, 0), (0, 1), (-1, 0), (0, -1)):
            cell = (x + dx, y + dy)
            if not walls[cell] and cell not in blocked and cell not in distance:
                distance[cell] = distance[(x, y)] + 1
                queue.append(cell)
    return distance


def as_cell(array):
    return tuple(int(v) for v in np.asarray(array))


# ------------------------------------------------------------------------------- placement


def test_defaults_follow_the_paper(benv):
    params = benv.make_params()
    assert benv.num_actions == 5 and benv.num_partner_actions == 5
    assert benv.obs_shape == (9, 9, 5)
    assert int(params.max_steps) == 100
    assert float(params.forward_cost) == pytest.approx(-0.009)
    assert float(params.goal_reward) == pytest.approx(0.4)


def test_resets_follow_the_placement_rules(benv):
    params = benv.make_params()
    states = jax.jit(jax.vmap(benv.reset, in_axes=(0, None)))(
        jax.random.split(jax.random.key(3), 300), params
    )
    layouts = {layout.tobytes() for layout in load_tree_layouts()}
    seen_layouts = set()
    for i in range(300):
        state = jax.tree.map(lambda x, i=i: np.asarray(x[i]), states)
        walls = state.walls
        assert walls[1:-1, 1:-1].tobytes() in layouts
        seen_layouts.add(walls.tobytes())
        open_cells = ~walls
        degree = {
            (x, y): sum(open_cells[x + dx, y + dy] for dx, dy in ((1, 0), (0, 1), (-1, 0), (0, -1)))
            for x in range(1, 6)
            for y in range(1, 6)
            if open_cells[x, y]
        }
        boulder, partner, goal, learner = (
            as_cell(state.boulder),
            as_cell(state.partner),
            as_cell(state.goal),
            as_cell(state.learner),
        )
        assert degree[boulder] == max(degree.values())
        assert degree[partner] == degree[goal] == degree[learner] == 1
        assert len({partner, goal, learner}) == 3
        # The boulder blocks the partner's only path: no path with it, a path without it.
        assert partner not in bfs_distances(walls, {boulder, learner}, goal)
        assert partner in bfs_distances(walls, {learner}, goal)
        assert not bool(state.carrying) and int(state.time) == 0
    assert len(seen_layouts) > 250  # layouts are drawn from all 1,020


# ---------------------------------------------------------------------------- the partner


def test_the_scripted_partner_takes_a_shortest_path(benv, fns):
    """Over random states (layouts, positions, carried or not), the scripted action steps to a
    cell one closer to the goal by a reference BFS, or stays when no path is open."""
    params = benv.make_params()
    rng = np.random.default_rng(0)
    checked_moves = checked_stays = 0
    reset = jax.jit(benv.reset)
    for i in range(150):
        state = jax.tree.map(np.asarray, reset(jax.random.key(i), params))
        walls = np.asarray(state.walls)
        free = [tuple(c) for c in np.argwhere(~walls)]
        # Move the learner and boulder to random cells to open or close paths.
        partner, goal = as_cell(state.partner), as_cell(state.goal)
        others = [c for c in free if c not in (partner, goal)]
        learner = others[rng.integers(len(others))]
        carrying = bool(rng.integers(2))
        boulder = learner if carrying else others[rng.integers(len(others))]
        if boulder == learner and not carrying:
            continue
        state = state.replace(
            learner=jnp.asarray(learner, jnp.int32),
            boulder=jnp.asarray(boulder, jnp.int32),
            carrying=jnp.bool_(carrying),
        )
        blocked = {learner} | (set() if carrying else {boulder})
        distance = bfs_distances(walls, blocked, goal)
        action = int(fns["partner"](state))
        if partner in distance:
            move = np.asarray(benv_moves()[action])
            assert action != PartnerAction.STAY
            assert distance.get(tuple(np.add(partner, move))) == distance[partner] - 1
            checked_moves += 1
        else:
            assert action == PartnerAction.STAY
            checked_stays += 1
    assert checked_moves > 20 and checked_stays > 20


def benv_moves():
    from internalize.envs.boulder import PARTNER_MOVES

    return PARTNER_MOVES


def test_the_boulder_blocks_and_carrying_it_off_the_path_lets_the_partner_through(benv, fns):
    params = benv.make_params()
    state = scenario(benv)
    assert int(fns["partner"](state)) == PartnerAction.STAY
    # Turning leaves the boulder where it is: the partner waits.
    waiting, step = fns["step"](KEY, state, LEFT, params)
    assert as_cell(waiting.partner) == (4, 3) and int(step.partner_action) == PartnerAction.STAY
    # Pick it up: the learner at (5,4) is off the path, so the partner walks the 6 steps.
    state, step = fns["step"](KEY, state, PICKUP, params)
    assert bool(state.carrying) and as_cell(state.boulder) == (5, 4)
    assert as_cell(state.partner) == (5, 3) and int(step.partner_action) == PartnerAction.RIGHT
    assert float(step.env_reward) == 0.0 and float(step.social_reward) == 0.0
    positions = [as_cell(state.partner)]
    for t in range(5):
        state, step = fns["step"](KEY, state, LEFT, params)
        positions.append(as_cell(state.partner))
        assert bool(step.goal_reached) == (t == 4)
    assert positions[:5] == PATH[1:6]
    assert float(step.social_reward) == pytest.approx(0.4)
    assert int(state.time) == 6  # the episode goes on in a fresh layout
    assert not bool(state.carrying)


def test_the_learner_blocks_the_path_too(benv, fns):
    # Carrying the boulder but standing on the path at (5,2): the partner cannot pass.
    state = scenario(benv, boulder=(5, 2), learner=(5, 2), carrying=True)
    assert int(fns["partner"](state)) == PartnerAction.STAY
    # Standing on the goal blocks it as well.
    state = scenario(benv, boulder=(2, 1), learner=(3, 2), heading=0)
    state = state.replace(boulder=jnp.asarray((3, 2)), carrying=jnp.bool_(True))
    assert int(fns["partner"](state)) == PartnerAction.STAY


def test_dropping_the_boulder_back_blocks_again(benv, fns):
    params = benv.make_params()
    state = scenario(benv, partner=(3, 2), goal=(4, 3))  # the partner comes the other way
    state, _ = fns["step"](KEY, state, PICKUP, params)  # path open, the partner moves to (3,1)
    assert as_cell(state.partner) == (3, 1)
    state, step = fns["step"](KEY, state, DROP, params)  # back onto the junction
    assert not bool(state.carrying) and as_cell(state.boulder) == (5, 3)
    assert int(step.partner_action) == PartnerAction.STAY and as_cell(state.partner) == (3, 1)


def test_a_caller_may_move_the_partner(benv, fns):
    params = benv.make_params()
    state = scenario(benv)
    moved, step = fns["step_joint"](KEY, state, LEFT, PartnerAction.RIGHT, params)
    assert as_cell(moved.partner) == (4, 3)  # the boulder is in the way
    assert int(step.partner_action) == PartnerAction.RIGHT
    state, _ = fns["step"](KEY, state, PICKUP, params)
    moved, _ = fns["step_joint"](KEY, state, LEFT, PartnerAction.LEFT, params)
    assert as_cell(moved.partner) == (4, 3)  # back from (5,3)


# ----------------------------------------------------------------------------- the learner


def test_forward_costs_and_is_blocked_by_the_boulder_walls_and_partner(benv, fns):
    params = benv.make_params()
    state = scenario(benv)
    moved, step = fns["step"](KEY, state, FORWARD, params)
    assert as_cell(moved.learner) == (5, 4)  # the boulder is ahead
    assert float(step.env_reward) == pytest.approx(-0.009)
    facing_wall = scenario(benv, learner=(5, 5), heading=Heading.RIGHT)
    moved, step = fns["step"](KEY, facing_wall, FORWARD, params)
    assert as_cell(moved.learner) == (5, 5) and float(step.env_reward) == pytest.approx(-0.009)
    free = scenario(benv, learner=(4, 5), heading=Heading.LEFT)
    moved, _ = fns["step"](KEY, free, FORWARD, params)
    assert as_cell(moved.learner) == (3, 5)
    # Carrying, the learner walks through the junction with the boulder.
    state, _ = fns["step"](KEY, state, PICKUP, params)
    state = state.replace(partner=jnp.asarray((4, 3)))  # put the partner back for the check
    moved, _ = fns["step"](KEY, state, FORWARD, params)
    assert bool(moved.carrying) and as_cell(moved.learner) == as_cell(moved.boulder) == (5, 3)


def test_pickup_needs_the_boulder_ahead_and_drop_needs_open_floor(benv, fns):
    params = benv.make_params()
    away = scenario(benv, heading=Heading.DOWN)
    state, _ = fns["step"](KEY, away, PICKUP, params)
    assert not bool(state.carrying) and as_cell(state.boulder) == (5, 3)
    carrying = scenario(benv, learner=(5, 5), boulder=(5, 5), carrying=True, heading=Heading.DOWN)
    state, _ = fns["step"](KEY, carrying, DROP, params)  # a wall ahead
    assert bool(state.carrying)
    state, _ = fns["step"](KEY, carrying.replace(heading=jnp.int32(Heading.LEFT)), DROP, params)
    assert not bool(state.carrying) and as_cell(state.boulder) == (4, 5)
    # Turns are free and wrap; a second pick-up while carrying does nothing.
    state, step = fns["step"](KEY, carrying, BoulderAction.RIGHT, params)
    assert int(state.heading) == Heading.LEFT and float(step.env_reward) == 0.0


def test_truncation_at_max_steps(benv, fns):
    params = benv.make_params(max_steps=3)
    state = scenario(benv)
    flags = []
    for _ in range(4):
        state, step = fns["step"](KEY, state, LEFT, params)
        flags.append(bool(step.truncated))
    assert flags == [False, False, True, True]


# ----------------------------------------------------------------------------- observation


def test_observation_hand_computed(benv, fns):
    obs = np.asarray(fns["observe"](scenario(benv)))
    assert obs.shape == (9, 9, 5) and obs.dtype == np.uint8
    assert tuple(obs[4, 4]) == (Tile.AGENT, Color.RED, Heading.UP, 0, 0)  # the learner
    assert tuple(obs[3, 4]) == (Tile.BOX, Color.YELLOW, 0, 0, 1)  # the boulder ahead
    assert tuple(obs[3, 3]) == (Tile.AGENT, Color.BLUE, 0, 0, 0)  # partner ahead-left
    assert tuple(obs[4, 5]) == (Tile.WALL, Color.GREY, 0, 0, 0)  # the outer wall, right
    # Beyond the grid: zeros (MiniGrid's "unseen"), as in task 1. From (5, 4) the window spans
    # x 1..9 and y 0..8, so 81 - 6 * 7 = 39 cells lie beyond the 7x7 grid.
    assert (obs == 0).all(axis=-1).sum() == 39 and not obs[:, 6:, 0].any()
    assert obs[..., 3].sum() == 1 and obs[..., 4].sum() == 1
    goal_row, goal_col = np.argwhere(obs[..., 3])[0]
    assert tuple(obs[goal_row, goal_col, :2]) == (Tile.GOAL, Color.GREEN)
    assert (goal_row, goal_col) == (2, 2)  # two ahead, two to the left
    masks = np.asarray(agent_cells(obs))
    assert masks.shape == (9, 9, 2)
    assert list(map(tuple, np.argwhere(masks[..., 0]))) == [(4, 4)]
    assert list(map(tuple, np.argwhere(masks[..., 1]))) == [(3, 3)]
    # Carried, the boulder shows on the learner's cell.
    carried = scenario(benv, boulder=(5, 4), carrying=True)
    obs = np.asarray(fns["observe"](carried))
    assert tuple(obs[4, 4]) == (Tile.AGENT, Color.RED, Heading.UP, 0, 1)
    assert tuple(obs[3, 4]) == (Tile.EMPTY, 0, 0, 0, 0)


def test_the_map_observation(benv):
    env = BoulderEnv(egocentric=False)
    obs = np.asarray(env.observe(scenario(benv)))
    assert obs.shape == env.obs_shape == (7, 7, 5)
    assert tuple(obs[5, 4]) == (Tile.AGENT, Color.RED, Heading.UP, 0, 0)
    assert tuple(obs[5, 3]) == (Tile.BOX, Color.YELLOW, 0, 0, 1)
    assert tuple(obs[4, 3]) == (Tile.AGENT, Color.BLUE, 0, 0, 0)
    assert tuple(obs[3, 2]) == (Tile.GOAL, Color.GREEN, 0, 1, 0)
    assert (obs[..., 0] == Tile.WALL).sum() == 24 + 7


# ------------------------------------------------------------------------ jit, vmap, batches


def test_step_batch_matches_single_steps_and_is_deterministic(benv):
    params = benv.make_params()
    keys = jax.random.split(jax.random.key(7), 64)
    states = jax.vmap(benv.reset, in_axes=(0, None))(keys, params)
    actions = jnp.arange(64) % 5
    batch = jax.jit(lambda k, s, a: benv.step_batch(k, s, a, params, auto_reset=False))
    first, first_step = batch(KEY, states, actions)
    again, again_step = batch(KEY, states, actions)
    jax.tree.map(np.testing.assert_array_equal, (first, first_step), (again, again_step))
    single = jax.jit(benv.step)
    for i in range(0, 64, 9):
        state = jax.tree.map(lambda x, i=i: x[i], states)
        moved, step = single(KEY, state, actions[i], params)
        if not bool(step.goal_reached):  # fresh layouts come from different keys
            jax.tree.map(lambda a, b, i=i: np.testing.assert_array_equal(a[i], b), first, moved)
            np.testing.assert_array_equal(first_step.obs[i], step.obs)
        assert int(first_step.partner_action[i]) == int(step.partner_action)


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"walls": [(2, 2), (2, 3), (2, 4), (4, 2), (4, 3), (4, 4), (3, 3)]}, "not a tree"),
        ({"walls": WALLS[:6]}, "7 wall blocks, got 6"),
        ({"goal": None}, "the partner has no goal"),
        ({"goal": (4, 3)}, "already stands on its goal"),
        ({"learner": (4, 3)}, "learner and partner overlap"),
        ({"boulder": (4, 3)}, "partner and boulder overlap"),
        ({"boulder": (3, 2)}, "goal and boulder overlap"),
        ({"learner": (1, 1)}, r"learner \(1, 1\) is on a wall"),
        ({"partner": (0, 3)}, "outside the interior"),
        ({"carrying": True}, "a carried boulder is at the learner's cell"),
        ({"heading": 4}, "heading must be in 0..3"),
    ],
)
def test_bad_states_are_named(benv, changes, message):
    with pytest.raises(ValueError, match=message):
        scenario(benv, **changes)


def test_bad_settings_are_named(benv):
    with pytest.raises(ValueError, match="max_steps must be positive"):
        benv.make_params(max_steps=0)
    with pytest.raises(ValueError, match="forward_cost must be a finite number"):
        benv.make_params(forward_cost=float("nan"))
    with pytest.raises(ValueError, match="drawn for a 7x7 grid"):
        BoulderEnv(size=9)
