"""Differential tests: our JAX goals gridworld against the same task written on MiniGrid itself.

Both start from the same random layouts and take the same random actions; every step must give
the same observation array, R_e, R_s, goal event, truncation flag, agent cell, heading and walls.
A goal regenerates the layout at random, so after one the layout our generator drew is injected
into MiniGrid and the comparison goes on. The mutant tests show that the comparison fails on a
one-cell, one-heading or one-reward mistake.
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.envs.goals import GoalsEnv, GoalsState

minigrid_goals = pytest.importorskip("internalize.reference.minigrid_goals")

NUM_STEPS = 24  # past the 20-step episode, so truncation is compared on both sides of it


def random_cases(rng: np.random.Generator, num_cases: int, size: int = 7):
    """Random layouts (0 to 23 blocks), cells, headings and forward-heavy action sequences."""
    interior = [(x, y) for x in range(1, size - 1) for y in range(1, size - 1)]
    cases = []
    for _ in range(num_cases):
        n_walls = int(rng.integers(0, len(interior) - 1))
        cells = [interior[i] for i in rng.permutation(len(interior))[: n_walls + 2]]
        cases.append(
            {
                "walls": cells[:n_walls],
                "goal": cells[n_walls],
                "agent": cells[n_walls + 1],
                "heading": int(rng.integers(4)),
            }
        )
    actions = rng.choice(3, size=(num_cases, NUM_STEPS), p=[0.25, 0.25, 0.5])
    return cases, actions


def stacked_states(env: GoalsEnv, cases) -> GoalsState:
    walls = np.zeros((len(cases), env.size, env.size), bool)
    walls[:, [0, -1], :] = walls[:, :, [0, -1]] = True
    for i, case in enumerate(cases):
        for x, y in case["walls"]:
            walls[i, x, y] = True
    return GoalsState(
        walls=jnp.asarray(walls),
        goal=jnp.asarray([c["goal"] for c in cases], jnp.int32),
        agent=jnp.asarray([c["agent"] for c in cases], jnp.int32),
        heading=jnp.asarray([c["heading"] for c in cases], jnp.int32),
        time=jnp.zeros(len(cases), jnp.int32),
    )


def jax_trajectories(env: GoalsEnv, params, cases, actions, seed: int, batched: bool = False):
    """First observations and per-step (state, transition) arrays, leading axes [case, step].

    Steps with `env.step` vmapped, or with `env.step_batch` (no auto-reset) if `batched`.
    """
    states = stacked_states(env, cases)

    @jax.jit
    def run(states, actions, key):
        def one_step(states, inputs):
            actions, key = inputs
            if batched:
                states, transition = env.step_batch(key, states, actions, params, auto_reset=False)
            else:
                keys = jax.random.split(key, actions.shape[0])
                states, transition = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                    keys, states, actions, params
                )
            return states, (states, transition)

        keys = jax.random.split(key, actions.shape[1])
        _, (states_t, transitions) = jax.lax.scan(one_step, states, (actions.T, keys))
        return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), (states_t, transitions))

    first_obs = jax.jit(jax.vmap(env.observe))(states)
    states_t, transitions = run(states, jnp.asarray(actions), jax.random.key(seed))
    return (
        np.asarray(first_obs),
        jax.tree.map(np.asarray, states_t),
        jax.tree.map(np.asarray, transitions),
    )


def reference_walls(reference) -> np.ndarray:
    grid = reference.grid
    return np.array(
        [
            [(c := grid.get(x, y)) is not None and c.type == "wall" for y in range(grid.height)]
            for x in range(grid.width)
        ]
    )


def compare(
    env: GoalsEnv, params, cases, actions, seed: int = 0, batched: bool = False, **reference_kwargs
) -> list[str]:
    """Step both implementations; return the first mismatch of each case that has one."""
    first_obs, states, transitions = jax_trajectories(env, params, cases, actions, seed, batched)
    reference = minigrid_goals.MiniGridGoals(**reference_kwargs)
    mismatches = []
    for i, case in enumerate(cases):
        obs, _ = reference.reset(seed=i, options=dict(case))
        problem = None if np.array_equal(obs, first_obs[i]) else "observation after reset"
        for t, action in enumerate(actions[i]):
            if problem:
                break
            obs, reward, terminated, truncated, info = reference.step(int(action))
            if info["goal_reached"]:  # follow the layout our generator drew
                obs = reference.set_layout(
                    walls=[tuple(c) for c in np.argwhere(states.walls[i, t][1:-1, 1:-1]) + 1],
                    goal=tuple(states.goal[i, t]),
                    agent=tuple(states.agent[i, t]),
                    heading=int(states.heading[i, t]),
                )
            checks = {
                "goal event": info["goal_reached"] == transitions.goal_reached[i, t],
                "env reward": np.isclose(info["env_reward"], transitions.env_reward[i, t]),
                "social reward": np.isclose(info["social_reward"], transitions.social_reward[i, t]),
                "reward sum": np.isclose(
                    reward, transitions.env_reward[i, t] + transitions.social_reward[i, t]
                ),
                "truncation": truncated == transitions.truncated[i, t] and not terminated,
                "agent cell": tuple(reference.agent_pos) == tuple(states.agent[i, t]),
                "heading": reference.agent_dir == states.heading[i, t],
                "goal cell": reference.grid.get(*states.goal[i, t]).type == "goal",
                "walls": np.array_equal(reference_walls(reference), states.walls[i, t]),
                "observation": np.array_equal(obs, transitions.obs[i, t]),
            }
            failed = [name for name, ok in checks.items() if not ok]
            if failed:
                problem = f"step {t} action {int(action)}: {', '.join(failed)}"
        if problem:
            mismatches.append(f"case {i} {case}: {problem}")
    return mismatches


@pytest.mark.parametrize(("batched", "num_cases"), [(False, 2500), (True, 1000)])
def test_thousands_of_random_episodes_match_minigrid(env, batched, num_cases):
    cases, actions = random_cases(np.random.default_rng(0), num_cases)
    params = env.make_params(n_blocks=3)
    mismatches = compare(env, params, cases, actions, batched=batched)
    assert mismatches == [], f"{len(mismatches)} mismatches, first: {mismatches[:3]}"
    # The comparison covered goal events and both truncation states, not only plain moves.
    _, _, transitions = jax_trajectories(env, params, cases, actions, 0, batched)
    assert transitions.goal_reached.sum() > num_cases / 5
    assert transitions.truncated.any() and not transitions.truncated.all()


@pytest.mark.parametrize("layout", ["plus", "x", "U", "T", "four_rooms"])
def test_named_layouts_match_minigrid(env, layout):
    """Episodes drawn by MiniGrid's own generator on each hand-picked layout."""
    reference = minigrid_goals.MiniGridGoals(layout=layout)
    rng = np.random.default_rng(1)
    cases = []
    for seed in range(100):
        reference.reset(seed=seed)
        walls = [tuple(c) for c in np.argwhere(reference_walls(reference)[1:-1, 1:-1]) + 1]
        cases.append(
            {
                "walls": walls,
                "goal": next(
                    (x, y)
                    for x in range(7)
                    for y in range(7)
                    if (c := reference.grid.get(x, y)) is not None and c.type == "goal"
                ),
                "agent": tuple(int(v) for v in reference.agent_pos),
                "heading": int(reference.agent_dir),
            }
        )
    actions = rng.choice(3, size=(len(cases), NUM_STEPS), p=[0.25, 0.25, 0.5])
    assert compare(env, env.make_params(layout=layout), cases, actions, layout=layout) == []


def test_other_settings_match_minigrid():
    """A larger grid, a longer episode and other rewards, set the same way on both sides."""
    env = GoalsEnv(size=8)
    cases, actions = random_cases(np.random.default_rng(2), 300, size=8)
    params = env.make_params(max_steps=13, forward_cost=-0.1, goal_reward=1.0)
    kwargs = {"size": 8, "max_steps": 13, "forward_cost": -0.1, "goal_reward": 1.0}
    assert compare(env, params, cases, actions, **kwargs) == []


# ------------------------------------------------------------------------- the tests can fail


@dataclass(frozen=True)
class HeadingMistake(GoalsEnv):
    """Observations of headings down and up swapped."""

    @staticmethod
    def _rotate(window: jax.Array, heading: jax.Array) -> jax.Array:
        return GoalsEnv._rotate(window, jnp.asarray([0, 3, 2, 1])[heading])


@dataclass(frozen=True)
class CellMistake(GoalsEnv):
    """Observations shifted by one cell sideways."""

    def observe(self, state: GoalsState) -> jax.Array:
        return jnp.roll(super().observe(state), 1, axis=1)


@pytest.mark.parametrize(
    ("mutant", "params", "expected"),
    [
        (HeadingMistake(), {}, "observation"),
        (CellMistake(), {}, "observation"),
        (GoalsEnv(), {"forward_cost": -0.9 / 21}, "env reward"),
        (GoalsEnv(), {"goal_reward": 0.5}, "social reward"),
        (GoalsEnv(), {"max_steps": 21, "forward_cost": -0.9 / 20}, "truncation"),
    ],
)
def test_a_deliberate_mistake_is_caught(mutant, params, expected):
    cases, actions = random_cases(np.random.default_rng(3), 200)
    mismatches = compare(mutant, mutant.make_params(**params), cases, actions)
    assert len(mismatches) > 10
    assert any(expected in m for m in mismatches), mismatches[:3]
