"""The boulder world's original rules (SPEC §7), one `BoulderRules` field each, pinned by
hand-computed cases: 8 wall blocks, no drop, the learner's start on the goal's side, the partner
that plans over walls only, the random order with the learner's cost overwriting the +0.4, and
the 7 multigrid channels."""

import jax
import numpy as np
import pytest

from internalize.envs.base import move_key
from internalize.envs.boulder import BoulderEnv, BoulderRules, OriginalAction
from internalize.envs.constants import Color, Heading, Tile
from internalize.envs.tree_layouts import (
    check_tree_walls,
    is_tree,
    load_tree_layouts,
    neighbour_counts,
)

# The 7-block layout 0 of tests/envs/test_boulder.py with an eighth block at (2,1), a leaf
# (x across, y down; # wall):
#   y1  # # . . .       leaves (3,2) (4,3) (2,3) (3,4)
#   y2  # # . # .       degree 3 at (5,3) and (3,5)
#   y3  . . # . .
#   y4  . # . # .
#   y5  . . . . .
WALLS = [(1, 1), (1, 2), (2, 2), (2, 4), (3, 3), (4, 2), (4, 4), (2, 1)]
STILL, LEFT, RIGHT, FORWARD, PICKUP = OriginalAction
KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def oenv():
    return BoulderEnv(rules=BoulderRules.original())


@pytest.fixture(scope="module")
def step(oenv):
    return jax.jit(oenv.step)


@pytest.fixture(scope="module")
def move(oenv):
    """`oenv.move` with the scripted partner, given the move's own key."""
    return jax.jit(lambda state, action, key: oenv.move(state, action, oenv.make_params(), key=key))


@pytest.fixture(scope="module")
def partner(oenv):
    return jax.jit(oenv.partner_action)


@pytest.fixture(scope="module")
def place_600(oenv):
    """`oenv.place` of 600 keys on 600 layouts (one compiled call for the tests below)."""
    place = jax.jit(jax.vmap(oenv.place, in_axes=(0, 0, None)))
    return lambda walls: place(jax.random.split(KEY, 600), np.resize(walls, (600, 7, 7)), 0)


def scenario(env, **changes):
    """Partner at (4,3) facing right, its goal (3,2), the boulder on the junction (5,3) between
    them; the learner below the boulder at (5,4), facing it."""
    parts = dict(
        walls=WALLS,
        boulder=(5, 3),
        partner=(4, 3),
        goal=(3, 2),
        learner=(5, 4),
        heading=Heading.UP,
        partner_heading=Heading.RIGHT,
    )
    parts.update(changes)
    return env.state_from_layout(**parts)


def cell(array):
    return tuple(int(v) for v in np.asarray(array))


def keys_where(partner_first: bool, count: int = 1) -> list:
    """Step keys whose coin says the partner acts first (or not)."""
    found = []
    for i in range(100):
        key = jax.random.key(i)
        if bool(jax.random.bernoulli(move_key(key))) == partner_first:
            found.append(key)
        if len(found) == count:
            return found
    raise AssertionError("no such key in 100")


def test_the_rules_default_to_the_paper_and_name_bad_values():
    assert BoulderEnv().rules == BoulderRules()
    assert BoulderRules().n_walls == 7 and BoulderRules.original().n_walls == 8
    with pytest.raises(ValueError, match="n_walls must be 7 or 8, got 9"):
        BoulderRules(n_walls=9)
    with pytest.raises(ValueError, match=r"unknown order 'sometimes'; known: \['learner_first'"):
        BoulderRules(order="sometimes")


def test_shapes_and_names_of_the_original(oenv):
    assert oenv.obs_shape == (9, 9, 7)
    assert oenv.num_actions == 5 and oenv.num_partner_actions == 4
    assert oenv.action_names == ("still", "left", "right", "forward", "pickup")
    assert BoulderEnv().action_names == ("left", "right", "forward", "pickup", "drop")


# -------------------------------------------------------------------------------- 8 blocks


def test_an_eight_block_layout_is_a_tree_of_17_cells(oenv):
    mask = check_tree_walls(WALLS, n_walls=8)
    open_cells = ~mask[1:-1, 1:-1]
    assert open_cells.sum() == 17 and bool(is_tree(open_cells))
    with pytest.raises(ValueError, match="has 8 wall blocks, got 7"):
        scenario(oenv, walls=WALLS[:7])
    with pytest.raises(ValueError, match="has 7 wall blocks, got 8"):
        scenario(BoulderEnv(), walls=WALLS)
    assert oenv.layouts().shape == (8445, 7, 7)
    assert (oenv.layouts()[:, 1:-1, 1:-1].sum(axis=(1, 2)) == 8).all()


# -------------------------------------------------------------------------------- no drop


def test_pick_up_is_allowed_and_nothing_drops(oenv, step):
    params = oenv.make_params()
    state, transition = step(KEY, scenario(oenv), PICKUP, params)  # the boulder is ahead
    assert bool(state.carrying) and cell(state.boulder) == (5, 4)
    assert float(transition.env_reward) == 0.0
    # Facing open floor at (4,5) with the boulder: action 4 is pick up, which drops nothing,
    # and no action lets it go (the paper's drop, 4, would put it at (4,5)).
    carrying = scenario(oenv, learner=(5, 5), boulder=(5, 5), carrying=True, heading=Heading.LEFT)
    for action in OriginalAction:
        after, _ = step(KEY, carrying, action, params)
        assert bool(after.carrying), action.name
    paper = BoulderEnv(rules=BoulderRules(n_walls=8))
    dropped, _ = jax.jit(paper.move)(
        scenario(paper, learner=(5, 5), boulder=(5, 5), carrying=True, heading=2), 4, params
    )
    assert not bool(dropped.carrying) and cell(dropped.boulder) == (4, 5)


def test_still_changes_nothing_but_the_clock_and_costs_nothing(oenv, step):
    state = scenario(oenv)
    after, transition = step(KEY, state, STILL, oenv.make_params())
    assert (cell(after.learner), int(after.heading)) == ((5, 4), Heading.UP)
    assert int(after.time) == 1 and float(transition.env_reward) == 0.0
    turned, _ = step(KEY, state, LEFT, oenv.make_params())
    assert int(turned.heading) == Heading.LEFT


# ---------------------------------------------------------------------- the learner's start


def _branches(walls: np.ndarray, boulder: tuple) -> dict:
    """Reference: each open cell but the boulder's -> the boulder's neighbour its branch hangs
    from."""
    label = {}
    for dx, dy in ((1, 0), (0, 1), (-1, 0), (0, -1)):
        root = (boulder[0] + dx, boulder[1] + dy)
        if walls[root]:
            continue
        stack, label[root] = [root], root
        while stack:
            x, y = stack.pop()
            for ex, ey in ((1, 0), (0, 1), (-1, 0), (0, -1)):
                nxt = (x + ex, y + ey)
                if not walls[nxt] and nxt != boulder and nxt not in label:
                    label[nxt] = root
                    stack.append(nxt)
    return label


def goal_side_starts(walls: np.ndarray, boulder, partner, goal) -> set:
    """Reference: where the learner may start (see `BoulderRules.learner_start`)."""
    label = _branches(walls, boulder)
    side = {c for c, root in label.items() if root == label[goal] and c != goal}
    steps = ((1, 0), (0, 1), (-1, 0), (0, -1))
    leaves = {c for c in side if sum(not walls[c[0] + a, c[1] + b] for a, b in steps) == 1}
    free = {c for c in label if c not in (partner, goal)}
    return leaves or side or free


def test_the_learner_starts_at_a_leaf_on_the_goals_side(oenv, place_600):
    """On the hand layout, with the boulder at (5,3): partner (3,2) and goal (2,3) leave the
    learner one leaf on the goal's side, (3,4); goal (3,2) (its branch has no other leaf) a
    cell of that branch; goal (4,3) (its branch is the goal alone) any free cell."""
    walls = np.asarray(scenario(oenv).walls)
    states = place_600(walls[None])
    expected = {((5, 3), (3, 2), (2, 3)): {(3, 4)}, ((5, 3), (2, 3), (3, 2)): {(5, 2), (5, 1)}}
    expected[((5, 3), (2, 3), (3, 2))] |= {(4, 1), (3, 1)}
    seen = set()
    for i in range(600):
        s = jax.tree.map(lambda x, i=i: np.asarray(x[i]), states)
        boulder, partner, goal, learner = map(cell, (s.boulder, s.partner, s.goal, s.learner))
        assert learner in goal_side_starts(walls, boulder, partner, goal)
        if (boulder, partner, goal) in expected:
            assert learner in expected[(boulder, partner, goal)]
            seen.add((boulder, partner, goal))
        assert 0 <= int(s.partner_heading) < 4
    assert seen == set(expected)


def test_a_path_layout_still_places_everyone(oenv, place_600):
    """56 of the 8-block layouts are paths (two leaves, the boulder on a cell of degree 2):
    with no leaf on the goal's side but the goal, the learner takes another cell of that side,
    and with none (the goal next to the boulder), any free cell."""
    open_cells = ~load_tree_layouts(8)
    degree = neighbour_counts(open_cells) * open_cells
    paths = oenv.layouts()[degree.max(axis=(1, 2)) == 2]
    assert len(paths) == 56
    states = place_600(paths)
    walls = np.resize(paths, (600, 7, 7))
    cells = np.stack([states.boulder, states.partner, states.goal, states.learner], axis=1)
    assert all(len({tuple(c) for c in four}) == 4 for four in cells)
    assert not walls[np.arange(600)[:, None], cells[..., 0], cells[..., 1]].any()
    kinds = set()
    for i, four in enumerate(cells):
        boulder, partner, goal, learner = map(tuple, four)
        assert learner in goal_side_starts(walls[i], boulder, partner, goal)
        label = _branches(walls[i], boulder)
        kinds.add("goal's side" if label[learner] == label[goal] else "elsewhere")
    assert kinds == {"goal's side", "elsewhere"}  # both fallbacks were taken


# ----------------------------------------------------------------------------- the partner


def test_the_partner_presses_forward_into_the_boulder(oenv, step):
    """Facing its path's first cell (5,3), which holds the boulder, the original partner goes
    forward and stays where it is (the paper's partner waits: no path is open)."""
    params = oenv.make_params()
    for key in (*keys_where(True), *keys_where(False)):  # either order: the learner turns
        after, transition = step(key, scenario(oenv), LEFT, params)
        assert int(transition.partner_action) == FORWARD
        assert cell(after.partner) == (4, 3) and int(after.partner_heading) == Heading.RIGHT


def test_the_partner_turns_left_even_where_right_is_shorter(oenv, move, partner):
    """Heading up, it wants right (one right turn); it turns left: up -> left -> down -> right."""
    state = scenario(oenv, partner_heading=Heading.UP)
    headings = []
    for _ in range(3):
        assert int(partner(state)) == LEFT
        state, _ = move(state, STILL, move_key(KEY))
        headings.append(int(state.partner_heading))
    assert headings == [Heading.LEFT, Heading.DOWN, Heading.RIGHT]
    assert int(partner(state)) == FORWARD


def test_the_partner_plans_over_walls_only(oenv, move):
    """The learner carries the boulder but stands on the path at (5,2): the original partner
    walks to (5,3), turns up and presses forward into the learner, where the paper's partner
    waits at (4,3) (no open path)."""
    state = scenario(oenv, learner=(5, 2), boulder=(5, 2), carrying=True, heading=Heading.UP)
    actions, cells = [], []
    for _ in range(3):  # the learner stays still: the order does not matter
        state, transition = move(state, STILL, move_key(KEY))
        actions.append(int(transition.partner_action))
        cells.append(cell(state.partner))
    assert actions == [FORWARD, LEFT, FORWARD]
    assert cells == [(5, 3), (5, 3), (5, 3)] and int(state.partner_heading) == Heading.UP
    paper = BoulderEnv(rules=BoulderRules(n_walls=8))
    paper_state = scenario(paper, learner=(5, 2), boulder=(5, 2), carrying=True)
    assert int(paper.partner_action(paper_state)) == 0  # PartnerAction.STAY


# --------------------------------------------------------------------------- random order


def test_the_learners_cost_overwrites_the_partners_reward_when_it_acts_second(oenv, step):
    """The partner at (3,1) faces its goal (3,2) below; the learner presses forward into the
    boulder. Partner first: it arrives, then the learner's -0.009 is assigned: R_s 0, R_e
    -0.009, though the arrival counts. Learner first: -0.009, then the partner's +0.4."""
    params = oenv.make_params()
    state = scenario(oenv, partner=(3, 1), partner_heading=Heading.DOWN)
    outcomes = {}
    for partner_first in (True, False):
        (key,) = keys_where(partner_first)
        _, transition = step(key, state, FORWARD, params)
        assert bool(transition.goal_reached) and int(transition.partner_action) == FORWARD
        outcomes[partner_first] = (float(transition.env_reward), float(transition.social_reward))
    assert outcomes[True] == pytest.approx((-0.009, 0.0))
    assert outcomes[False] == pytest.approx((-0.009, 0.4))
    fresh, _ = step(key, state, FORWARD, params)  # the arrival draws one of the 8-block layouts
    assert np.asarray(fresh.walls)[1:-1, 1:-1].sum() == 8 and int(fresh.time) == 1
    # Without the forward action nothing is overwritten.
    (key,) = keys_where(True)
    _, transition = step(key, state, LEFT, params)
    assert (float(transition.env_reward), float(transition.social_reward)) == pytest.approx(
        (0.0, 0.4)
    )


def test_whoever_acts_first_takes_the_cell(oenv, move):
    """Both head for (5,1): the partner from (5,2) facing up, the learner from (4,1) facing
    right. The first to act moves there; the other is blocked."""
    params = oenv.make_params()
    state = scenario(
        oenv, partner=(5, 2), partner_heading=Heading.UP, learner=(4, 1), heading=Heading.RIGHT
    )
    (first,) = keys_where(True)
    (second,) = keys_where(False)
    moved, _ = move(state, FORWARD, move_key(first))
    assert (cell(moved.partner), cell(moved.learner)) == ((5, 1), (4, 1))
    moved, _ = move(state, FORWARD, move_key(second))
    assert (cell(moved.partner), cell(moved.learner)) == ((5, 2), (5, 1))
    with pytest.raises(ValueError, match="needs a key"):
        oenv.move(state, FORWARD, params)


def test_the_coin_is_fair_and_learner_first_is_the_default(oenv):
    coins = jax.vmap(lambda k: jax.random.bernoulli(move_key(k)))(jax.random.split(KEY, 4000))
    assert abs(float(coins.mean()) - 0.5) < 0.03
    paper = BoulderEnv(rules=BoulderRules(n_walls=8, partner="original"))
    state = scenario(
        paper, partner=(5, 2), partner_heading=Heading.UP, learner=(4, 1), heading=Heading.RIGHT
    )
    moved, _ = paper.move(state, 2, paper.make_params())  # BoulderAction.FORWARD
    assert (cell(moved.partner), cell(moved.learner)) == ((5, 2), (5, 1))


# ---------------------------------------------------------------------------- observation


def test_the_seven_channel_observation_hand_computed(oenv):
    """(type, colour, carried type, carried colour, direction, agent flag, is-goal), uint8,
    the values as they are (the largest is the agent's 10), on the egocentric 9x9 view."""
    state = scenario(oenv, partner_heading=Heading.LEFT)
    obs = np.asarray(oenv.observe(state))
    assert obs.shape == (9, 9, 7) and obs.dtype == np.uint8 and obs.max() == Tile.AGENT
    assert tuple(obs[4, 4]) == (Tile.AGENT, Color.RED, 0, 0, Heading.UP, 0, 0)  # the learner
    assert tuple(obs[3, 4]) == (Tile.BOX, Color.YELLOW, 0, 0, 0, 0, 0)  # the boulder ahead
    assert tuple(obs[3, 3]) == (Tile.AGENT, Color.BLUE, 0, 0, Heading.LEFT, 0, 0)  # the partner
    assert tuple(obs[4, 5]) == (Tile.WALL, Color.GREY, 0, 0, 0, 0, 0)  # the outer wall, right
    assert tuple(obs[2, 2]) == (Tile.GOAL, Color.GREEN, 0, 0, 0, 0, 1)  # two ahead, two left
    assert tuple(obs[4, 3]) == (Tile.WALL, Color.GREY, 0, 0, 0, 0, 0)  # (4,4), on its left
    assert (obs == 0).all(axis=-1).sum() == 39 and not obs[..., 5].any()
    assert obs[..., 6].sum() == 1
    carried = np.asarray(oenv.observe(scenario(oenv, boulder=(5, 4), carrying=True)))
    assert tuple(carried[4, 4]) == (Tile.AGENT, Color.RED, Tile.BOX, Color.YELLOW, 3, 0, 0)
    assert tuple(carried[3, 4]) == (Tile.EMPTY, 0, 0, 0, 0, 0, 0)
    on_goal = np.asarray(oenv.observe(scenario(oenv, learner=(3, 2), heading=Heading.UP)))
    assert tuple(on_goal[4, 4]) == (Tile.AGENT, Color.RED, 0, 0, Heading.UP, 0, 1)
