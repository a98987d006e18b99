"""Gymnasium views of environments of the protocol (`internalize.envs.base`): any of them as
`ProtocolGymEnv(env)`, the goals gridworld as `gymnasium.make("internalize/Goals-v0", ...)` and
the learner's view of the boulder world as `gymnasium.make("internalize/Boulder-v0", ...)`.

One environment stepped from Python through the jitted JAX functions, for users of the
Gymnasium ecosystem; training in this project vmaps the JAX functions instead. A rejected
`reset` (bad options) raises ValueError and leaves the environment as it was.
"""

import contextlib
import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import gymnasium
import jax
import numpy as np
from gymnasium import spaces

from internalize.adapters.boulder_options import state_from_options
from internalize.envs.base import Environment
from internalize.envs.boulder import BoulderEnv
from internalize.envs.goals import GoalsEnv
from internalize.envs.layouts import check_cell, named_layout
from internalize.envs.render import render_boulder, render_goals

RESET_OPTIONS = ("walls", "goal", "agent", "heading")


class ProtocolGymEnv(gymnasium.Env):
    """An environment of the protocol (`internalize.envs.base`) as a `gymnasium.Env`.

    Observations `Box(0, 255, obs_shape, uint8)`, actions `Discrete(num_actions)`. `reward` is
    R_e + R_s; `info` carries every other field of the transition but the observation and
    `truncated` (`env_reward`, `social_reward`, `goal_reached` and the environment's extras),
    as Python numbers. Episodes never terminate; they truncate after `max_steps`. `params`
    default to `env.make_params()`; `draw(state)`, if given, renders an RGB array.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        env: Environment,
        params: Any = None,
        render_mode: str | None = None,
        draw: Callable[[Any], np.ndarray] | None = None,
    ):
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode, self.draw = render_mode, draw
        self.env = env
        self.params = env.make_params() if params is None else params
        self.observation_space = spaces.Box(0, 255, env.obs_shape, np.uint8)
        self.action_space = spaces.Discrete(env.num_actions)
        self._reset = jax.jit(env.reset)
        self._step = jax.jit(env.step)
        self._observe = jax.jit(env.observe)
        self._key: jax.Array | None = None
        self.state = None

    def _next_key(self) -> jax.Array:
        self._key, key = jax.random.split(self._key)
        return key

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        with _as_it_was_if_rejected(self):
            super().reset(seed=seed)
            self._key = jax.random.key(int(self.np_random.integers(2**63)))
            self.state = self._start(options)
        return np.asarray(self._observe(self.state)), {}

    def _start(self, options: dict[str, Any] | None):
        """The first state of an episode; a subclass that takes reset options reads them."""
        if options:
            raise ValueError(f"this environment takes no reset options, got {sorted(options)}")
        return self._reset(self._next_key(), self.params)

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(
                f"action must be an integer in 0..{self.action_space.n - 1}, got {action!r}"
            )
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        self.state, transition = self._step(self._next_key(), self.state, action, self.params)
        info = {
            field.name: np.asarray(getattr(transition, field.name)).item()
            for field in dataclasses.fields(transition)
            if field.name not in ("obs", "truncated")
        }
        reward = info["env_reward"] + info["social_reward"]
        return np.asarray(transition.obs), reward, False, bool(transition.truncated), info

    def render(self):
        if self.render_mode == "rgb_array" and self.state is not None and self.draw is not None:
            return self.draw(self.state)
        return None


class GoalsGymEnv(ProtocolGymEnv):
    """The goals gridworld (`internalize.envs.goals`) as a `gymnasium.Env`.

    Observations `Box(0, 255, (9, 9, 4), uint8)`, actions `Discrete(3)` (left, right, forward).
    `reward` is R_e + R_s; `info` carries `env_reward`, `social_reward` and `goal_reached`.
    Episodes never terminate; they truncate after `max_steps`.

    `reset(options={"walls": [(x, y), ...] or a layout name, "goal": (x, y), "agent": (x, y),
    "heading": d})` starts from exactly that state; options left out are drawn at random
    (walls: the fixed layout if the environment has one, else `n_blocks` random cells).
    """

    def __init__(
        self,
        n_blocks: int | None = None,
        layout: str | list | None = None,
        size: int = 7,
        max_steps: int | None = None,
        forward_cost: float | None = None,
        goal_reward: float = 0.4,
        render_mode: str | None = None,
    ):
        env = GoalsEnv(size)
        params = env.make_params(n_blocks, layout, max_steps, forward_cost, goal_reward)
        super().__init__(env, params, render_mode, render_goals)

    def _start(self, options: dict[str, Any] | None):
        if not options:
            return super()._start(options)
        return self._state_from_options(dict(options))

    def _state_from_options(self, options: dict[str, Any]):
        unknown = set(options) - set(RESET_OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {sorted(unknown)}; known: {', '.join(RESET_OPTIONS)}"
            )
        size, rng = self.env.size, self.np_random
        taken = {
            check_cell(options[name], size, name) for name in ("goal", "agent") if name in options
        }
        walls = options.get("walls")
        if isinstance(walls, str):
            walls = [tuple(c) for c in np.argwhere(named_layout(walls, size))]
        elif walls is None and bool(self.params.use_fixed_walls):
            walls = [tuple(c) for c in np.argwhere(np.asarray(self.params.fixed_walls))]
        elif walls is None:  # n_blocks random cells, leaving room for a goal and an agent
            free = [c for c in _interior(size) if c not in taken]
            n_blocks = min(int(self.params.n_blocks), len(free) - (2 - len(taken)))
            walls = [free[i] for i in rng.choice(len(free), n_blocks, replace=False)]
        wall_cells = {check_cell(cell, size, "wall") for cell in walls}

        def draw(exclude: set) -> tuple[int, int]:
            free = [c for c in _interior(size) if c not in exclude]
            if not free:
                raise ValueError("the walls leave no free cell for the goal and the agent")
            return free[rng.integers(len(free))]

        goal = options["goal"] if "goal" in options else draw(wall_cells | taken)
        agent = options["agent"] if "agent" in options else draw(wall_cells | {tuple(goal)})
        heading = options["heading"] if "heading" in options else int(rng.integers(4))
        return self.env.state_from_layout(walls, goal, agent, heading)


def _interior(size: int) -> list[tuple[int, int]]:
    return [(x, y) for x in range(1, size - 1) for y in range(1, size - 1)]


@contextlib.contextmanager
def _as_it_was_if_rejected(env: gymnasium.Env):
    """Restore `env`'s random generator, key and state if the block raises: a rejected reset
    changes nothing. (The generator is copied: drawing from it changes it in place.)"""
    saved = {name: env.__dict__.get(name) for name in ("_np_random_seed", "_key", "state")}
    saved["_np_random"] = copy.deepcopy(env.__dict__.get("_np_random"))
    try:
        yield
    except BaseException:
        env.__dict__.update(saved)
        raise


class BoulderGymEnv(ProtocolGymEnv):
    """The boulder world (`internalize.envs.boulder`) seen by the learner, the partner scripted.

    Observations `Box(0, 255, (9, 9, 5), uint8)`, actions `Discrete(5)` (left, right, forward,
    pick up, drop). `reward` is R_e + R_s; `info` carries `env_reward`, `social_reward`,
    `goal_reached` (the partner reached its goal) and `partner_action` (what the partner did).
    Episodes never terminate; they truncate after `max_steps` (100).

    `reset(options={"walls": [...7 cells...], "boulder": (x, y), "partner": ..., "goal": ...,
    "learner": ..., "heading": d, "carrying": False})` starts from exactly that state; `walls`
    alone draws the positions by the task's rules (`internalize.adapters.boulder_options`).
    """

    def __init__(
        self,
        max_steps: int | None = None,
        forward_cost: float | None = None,
        goal_reward: float = 0.4,
        render_mode: str | None = None,
    ):
        env = BoulderEnv()
        params = env.make_params(max_steps, forward_cost, goal_reward)
        super().__init__(env, params, render_mode, render_boulder)
        self._place = jax.jit(env.place)

    def _start(self, options: dict[str, Any] | None):
        return state_from_options(
            self.env,
            options,
            self.np_random,
            self._next_key(),
            self._reset,
            self._place,
            self.params,
        )
