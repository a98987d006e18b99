import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from internalize.envs.constants import Action, Color, Heading, Tile
from internalize.envs.goals import GoalsEnv
from internalize.envs.layouts import NAMED_LAYOUTS, named_layout

LEFT, RIGHT, FORWARD = Action.LEFT, Action.RIGHT, Action.FORWARD
KEY = jax.random.key(0)


def check_valid(state, n_walls: int, size: int = 7) -> None:
    """Every invariant of a generated state."""
    walls = np.asarray(state.walls)
    goal, agent = tuple(np.asarray(state.goal)), tuple(np.asarray(state.agent))
    border = np.ones((size, size), bool)
    border[1:-1, 1:-1] = False
    assert (walls[border]).all(), "outer wall incomplete"
    assert walls[1:-1, 1:-1].sum() == n_walls
    for cell in (goal, agent):
        assert all(1 <= c <= size - 2 for c in cell), f"{cell} outside the interior"
    assert not walls[goal], "goal on a wall"
    assert not walls[agent], "agent on a wall"
    assert goal != agent, "agent on the goal"
    assert 0 <= int(state.heading) < 4


# ------------------------------------------------------------------------- hand-computed steps


def test_defaults_follow_the_paper(env):
    params = env.make_params()
    assert env.obs_shape == (9, 9, 4) and env.num_actions == 3
    assert int(params.max_steps) == 20 and int(params.n_blocks) == 3
    assert float(params.forward_cost) == pytest.approx(-0.045)
    assert float(params.goal_reward) == pytest.approx(0.4)


def test_forward_into_a_wall_costs_and_stays(env, jitted):
    params = env.make_params()
    state = env.state_from_layout([(3, 2)], goal=(5, 5), agent=(3, 3), heading=Heading.UP)
    state, step = jitted["step"](KEY, state, FORWARD, params)
    assert tuple(state.agent) == (3, 3)
    assert float(step.env_reward) == pytest.approx(-0.045)
    assert float(step.social_reward) == 0.0 and not step.goal_reached
    assert int(state.time) == 1


def test_outer_wall_blocks_too(env, jitted):
    state = env.state_from_layout([], goal=(5, 5), agent=(1, 1), heading=Heading.LEFT)
    state, step = jitted["step"](KEY, state, FORWARD, env.make_params())
    assert tuple(state.agent) == (1, 1) and float(step.env_reward) == pytest.approx(-0.045)


def test_turns_are_free_and_wrap(env, jitted):
    params = env.make_params()
    state = env.state_from_layout([], goal=(5, 5), agent=(1, 1), heading=Heading.RIGHT)
    state, step = jitted["step"](KEY, state, LEFT, params)
    assert int(state.heading) == Heading.UP and float(step.env_reward) == 0.0
    state, _ = jitted["step"](KEY, state, RIGHT, params)
    state, _ = jitted["step"](KEY, state, RIGHT, params)
    assert int(state.heading) == Heading.DOWN
    assert tuple(state.agent) == (1, 1)


def test_reaching_the_goal_pays_social_reward_and_regenerates(env, jitted):
    params = env.make_params(n_blocks=3)
    state = env.state_from_layout([(4, 4)], goal=(3, 2), agent=(3, 3), heading=Heading.UP, time=7)
    state, step = jitted["step"](jax.random.key(5), state, FORWARD, params)
    assert bool(step.goal_reached)
    assert float(step.social_reward) == pytest.approx(0.4)
    assert float(step.env_reward) == 0.0  # the goal step costs nothing
    assert int(state.time) == 8  # the step counter goes on
    check_valid(state, n_walls=3)  # a fresh random layout with the episode's block count
    np.testing.assert_array_equal(step.obs, jitted["observe"](state))


def test_regeneration_keeps_a_fixed_layout(env, jitted):
    params = env.make_params(layout="U")
    state = env.state_from_layout("U", goal=(1, 2), agent=(1, 1), heading=Heading.DOWN)
    state, step = jitted["step"](KEY, state, FORWARD, params)
    assert bool(step.goal_reached)
    np.testing.assert_array_equal(
        np.asarray(state.walls)[1:-1, 1:-1], named_layout("U")[1:-1, 1:-1]
    )


def test_plain_python_actions_work_without_jit(env):
    state = env.state_from_layout([], goal=(5, 5), agent=(1, 1), heading=Heading.DOWN)
    for action in (2, Action.RIGHT, np.int64(0)):
        state, _ = env.step(KEY, state, action, env.make_params())
    assert tuple(state.agent) == (1, 2) and int(state.heading) == Heading.DOWN


def test_truncation_at_max_steps(env, jitted):
    params = env.make_params(max_steps=3)
    state = env.state_from_layout([], goal=(5, 5), agent=(1, 1), heading=Heading.UP)
    flags = []
    for _ in range(4):
        state, step = jitted["step"](KEY, state, LEFT, params)
        flags.append(bool(step.truncated))
    assert flags == [False, False, True, True]


def test_auto_reset_starts_a_new_episode_on_truncation(env):
    params = env.make_params(max_steps=2)
    step = jax.jit(env.step_auto_reset)
    state = env.state_from_layout([], goal=(5, 5), agent=(1, 1), heading=Heading.UP)
    state, first = step(KEY, state, LEFT, params)
    assert not first.truncated and int(state.time) == 1
    state, second = step(KEY, state, LEFT, params)
    assert bool(second.truncated) and int(state.time) == 0
    np.testing.assert_array_equal(second.obs, env.observe(state))


def test_observation_hand_computed(env, jitted):
    # Agent at (3, 3) facing up; goal two cells ahead; a wall two cells to its left.
    state = env.state_from_layout([(1, 3)], goal=(3, 1), agent=(3, 3), heading=Heading.UP)
    obs = np.asarray(jitted["observe"](state))
    assert obs.shape == (9, 9, 4) and obs.dtype == np.uint8
    assert tuple(obs[4, 4]) == (Tile.AGENT, Color.RED, Heading.UP, 0)
    assert tuple(obs[2, 4]) == (Tile.GOAL, Color.GREEN, 0, 1)
    assert tuple(obs[4, 2]) == (Tile.WALL, Color.GREY, 0, 0)
    assert tuple(obs[1, 4]) == (Tile.WALL, Color.GREY, 0, 0)  # the outer wall, three ahead
    assert tuple(obs[0, 4]) == (0, 0, 0, 0)  # beyond the grid: zeros, MiniGrid's "unseen"
    assert obs[..., 3].sum() == 1
    # Turned right (facing right), the goal is two cells to the agent's left.
    obs = np.asarray(jitted["observe"](state.replace(heading=jnp.int32(Heading.RIGHT))))
    assert tuple(obs[4, 2]) == (Tile.GOAL, Color.GREEN, 0, 1)
    assert tuple(obs[4, 4]) == (Tile.AGENT, Color.RED, Heading.RIGHT, 0)


def test_observation_hand_written_with_padding(env, jitted):
    """Every cell of one observation, written out: from a corner, 45 of the 81 cells lie beyond
    the grid, and they hold zeros (MiniGrid's "unseen", the original's `np.pad` fill), not EMPTY."""
    state = env.state_from_layout([], goal=(5, 5), agent=(1, 1), heading=Heading.UP)
    obs = np.asarray(jitted["observe"](state))
    U, E, W, G, A = 0, Tile.EMPTY, Tile.WALL, Tile.GOAL, Tile.AGENT
    # Facing up from (1, 1): row r is y = r - 3 (row 0 ahead), column c is x = c - 3 (left first),
    # so rows 0-2 and columns 0-2 lie beyond the grid; the goal (5, 5) is behind, to the right.
    objects = np.array(
        [[U] * 9] * 3
        + [[U, U, U, W, W, W, W, W, W]]
        + [[U, U, U, W, A, E, E, E, E]]
        + [[U, U, U, W, E, E, E, E, E]] * 3
        + [[U, U, U, W, E, E, E, E, G]]
    )
    np.testing.assert_array_equal(obs[..., 0], objects)
    colours = np.select(
        [objects == W, objects == G, objects == A], [Color.GREY, Color.GREEN, Color.RED], 0
    )
    np.testing.assert_array_equal(obs[..., 1], colours)
    np.testing.assert_array_equal(obs[..., 2], np.where(objects == A, Heading.UP, 0))
    np.testing.assert_array_equal(obs[..., 3], objects == G)


# ------------------------------------------------------------------------- jit, vmap, determinism


def test_vmap_matches_single_steps(env):
    params = env.make_params(n_blocks=5)
    keys = jax.random.split(jax.random.key(1), 16)
    states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    actions = jnp.arange(16) % 3
    batched, batched_steps = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))(
        keys, states, actions, params
    )
    step = jax.jit(env.step)
    for i in range(16):
        state_i = jax.tree.map(lambda x, i=i: x[i], states)
        single, single_step = step(keys[i], state_i, actions[i], params)
        for a, b in zip(
            jax.tree.leaves((single, single_step)),
            jax.tree.leaves((batched, batched_steps)),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b[i])


@pytest.mark.parametrize("num_goals", [1, 3, 16])
def test_step_batch_matches_vmapped_steps(env, num_goals):
    """Few refreshes (a quarter of the batch or less) and many take the two paths of step_batch."""
    params = env.make_params(n_blocks=3)
    # 16 agents facing up; the first `num_goals` have the goal just ahead.
    states = jax.tree.map(
        lambda *xs: jnp.stack(xs),
        *[
            env.state_from_layout(
                [(5, 5)],
                goal=(1 + i % 5, 2 if i < num_goals else 4),
                agent=(1 + i % 5, 3),
                heading=3,
            )
            for i in range(16)
        ],
    )
    actions = jnp.full(16, FORWARD)
    batched, steps = jax.jit(env.step_batch)(jax.random.key(4), states, actions, params)
    single = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
        jax.random.split(jax.random.key(4), 16), states, actions, params
    )[1]
    for field in ("env_reward", "social_reward", "goal_reached", "truncated"):
        np.testing.assert_array_equal(getattr(steps, field), getattr(single, field))
    assert steps.goal_reached.sum() == num_goals
    for i in range(16):
        state = jax.tree.map(lambda x, i=i: x[i], batched)
        check_valid(state, n_walls=int(state.walls[1:-1, 1:-1].sum()))
        np.testing.assert_array_equal(steps.obs[i], env.observe(state))
        if i >= num_goals:  # moved up one cell, layout kept
            assert tuple(state.agent) == (1 + i % 5, 2) and tuple(state.goal) == (1 + i % 5, 4)
        else:  # a fresh random layout with three blocks, the step count kept
            assert state.walls[1:-1, 1:-1].sum() == 3 and int(state.time) == 1


def test_step_batch_auto_resets(env):
    params = env.make_params(max_steps=2)
    keys = jax.random.split(jax.random.key(6), 8)
    states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    step = jax.jit(env.step_batch)
    states, first = step(keys[0], states, jnp.zeros(8, jnp.int32), params)
    assert not first.truncated.any() and (states.time == 1).all()
    states, second = step(keys[1], states, jnp.zeros(8, jnp.int32), params)
    assert second.truncated.all() and (states.time == 0).all()


def test_vmap_over_params(env):
    params = jax.tree.map(
        lambda *xs: jnp.stack(xs),
        env.make_params(n_blocks=0),
        env.make_params(n_blocks=20),
        env.make_params(layout="x"),
    )
    keys = jax.random.split(jax.random.key(2), 3)
    states = jax.jit(jax.vmap(env.reset))(keys, params)
    assert np.asarray(states.walls)[:, 1:-1, 1:-1].sum(axis=(1, 2)).tolist() == [0, 20, 5]


def test_same_key_same_episode(env):
    params = env.make_params()
    a = env.reset(jax.random.key(9), params)
    b = env.reset(jax.random.key(9), params)
    c = env.reset(jax.random.key(10), params)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(c), strict=True)
    )


# ------------------------------------------------------------------------- the generator

sample = jax.jit(GoalsEnv().reset)
step_batch = jax.jit(jax.vmap(GoalsEnv().step, in_axes=(0, 0, 0, None)))


@settings(max_examples=300, deadline=None)
@given(n_blocks=st.integers(0, 23), seed=st.integers(0, 2**32 - 1))
def test_every_random_layout_is_valid(env, n_blocks, seed):
    state = sample(jax.random.key(seed), env.make_params(n_blocks=n_blocks))
    check_valid(state, n_blocks)


@settings(max_examples=100, deadline=None)
@given(layout=st.sampled_from(sorted(NAMED_LAYOUTS)), seed=st.integers(0, 2**32 - 1))
def test_every_fixed_layout_state_is_valid(env, layout, seed):
    state = sample(jax.random.key(seed), env.make_params(layout=layout))
    check_valid(state, 5)
    np.testing.assert_array_equal(
        np.asarray(state.walls)[1:-1, 1:-1], named_layout(layout)[1:-1, 1:-1]
    )


@settings(max_examples=30, deadline=None)
@given(n_blocks=st.integers(0, 23), seed=st.integers(0, 2**32 - 1))
def test_states_stay_valid_while_stepping(env, n_blocks, seed):
    params = env.make_params(n_blocks=n_blocks)
    keys = jax.random.split(jax.random.key(seed), 64)
    states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    for t in range(30):
        actions = jax.random.randint(jax.random.fold_in(keys[0], t), (64,), 0, 3)
        states, _ = step_batch(jax.random.split(keys[t], 64), states, actions, params)
    for i in range(64):
        check_valid(jax.tree.map(lambda x, i=i: x[i], states), n_blocks)


def test_layouts_are_uniform(env):
    """Goal and agent cells, headings and block cells are uniform (chi-square, fixed keys).

    The keys are fixed, so the test is deterministic; with four tests at p > 1e-4 a correct
    generator fails for about one key in 2,500.
    """
    keys = jax.random.split(jax.random.key(0), 100_000)
    states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, env.make_params(n_blocks=4))
    for counts in (
        np.bincount(np.ravel_multi_index(np.asarray(states.goal).T - 1, (5, 5)), minlength=25),
        np.bincount(np.ravel_multi_index(np.asarray(states.agent).T - 1, (5, 5)), minlength=25),
        np.bincount(np.asarray(states.heading), minlength=4),
        np.asarray(states.walls)[:, 1:-1, 1:-1].sum(axis=0).ravel(),
    ):
        assert stats.chisquare(counts).pvalue > 1e-4, counts


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_blocks": 24}, "n_blocks=24 is impossible"),
        ({"n_blocks": -1}, "n_blocks=-1 is impossible"),
        ({"n_blocks": 2.5}, "n_blocks must be an integer"),
        ({"n_blocks": 3, "layout": "plus"}, "not both"),
        ({"layout": "spiral"}, "unknown layout 'spiral'"),
        ({"layout": [(0, 0)]}, "outside the interior"),
        ({"max_steps": 0}, "max_steps must be positive"),
        ({"max_steps": -5}, "max_steps must be positive"),
        ({"forward_cost": float("nan")}, "forward_cost must be a finite number"),
        ({"goal_reward": "0.4"}, "goal_reward must be a finite number"),
    ],
)
def test_bad_params_are_named(env, kwargs, message):
    with pytest.raises(ValueError, match=message):
        env.make_params(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"goal": (0, 3)}, "goal \\(0, 3\\) is outside the interior"),
        ({"agent": (3, 6)}, "agent \\(3, 6\\) is outside the interior"),
        ({"goal": (2, 2)}, "goal \\(2, 2\\) is on a wall"),
        ({"agent": (2, 2)}, "agent \\(2, 2\\) is on a wall"),
        ({"agent": (5, 5)}, "agent and goal are both at"),
        ({"heading": 4}, "heading must be in 0..3"),
        ({"heading": -1}, "heading must be in 0..3"),
        ({"heading": 1.5}, "heading must be an integer"),
    ],
)
def test_bad_states_are_named(env, kwargs, message):
    layout = {"walls": [(2, 2)], "goal": (5, 5), "agent": (1, 1), "heading": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        env.state_from_layout(**layout)


def test_grid_too_small():
    with pytest.raises(ValueError, match="at least 4"):
        GoalsEnv(size=3)


def test_other_grid_sizes_work():
    env = GoalsEnv(size=9)
    assert env.obs_shape == (13, 13, 4) and env.default_max_steps == 39
    state = env.reset(jax.random.key(0), env.make_params(n_blocks=10))
    check_valid(state, 10, size=9)
