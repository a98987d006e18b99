"""The goals gridworld written on MiniGrid itself: the reference for fidelity and speed.

This is how the original work built the task (a `minigrid.MiniGridEnv` stepped one environment
at a time). The differential tests step it beside `internalize.envs.goals.GoalsEnv`, and the
benchmarks time it as the baseline. It needs the optional `minigrid` package (extras `test` and
`baseline`).
"""

from typing import Any

import numpy as np
from gymnasium import spaces
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Goal, Wall
from minigrid.minigrid_env import MiniGridEnv

from internalize.envs.layouts import NAMED_LAYOUTS


class MiniGridGoals(MiniGridEnv):
    """SPEC §2 on MiniGrid. `reward` is R_e + R_s; `info` has both apart and `goal_reached`.

    `reset(options={"walls": [(x, y), ...], "goal": (x, y), "agent": (x, y), "heading": d})`
    starts from exactly that layout; `set_layout(...)` replaces the layout mid-episode (the step
    count is kept), which the differential tests use to follow a regeneration drawn elsewhere.
    """

    def __init__(
        self,
        size: int = 7,
        n_blocks: int = 3,
        layout: str | None = None,
        max_steps: int | None = None,
        forward_cost: float | None = None,
        goal_reward: float = 0.4,
        render_mode: str | None = None,
    ):
        interior = size - 2
        max_steps = 4 * interior**2 // 5 if max_steps is None else max_steps
        self.n_blocks = n_blocks
        self.fixed_walls = None if layout is None else NAMED_LAYOUTS[layout]
        self.forward_cost = -0.9 / max_steps if forward_cost is None else forward_cost
        self.goal_reward = goal_reward
        self.view = 2 * interior - 1
        self._pending: dict[str, Any] | None = None
        super().__init__(
            mission_space=MissionSpace(mission_func=lambda: "reach the goal"),
            grid_size=size,
            max_steps=max_steps,
            see_through_walls=True,
            render_mode=render_mode,
            highlight=False,
        )
        self.action_space = spaces.Discrete(3)
        self.observation_space = spaces.Box(0, 255, (self.view, self.view, 4), np.uint8)

    # A fresh random layout, or the one passed to reset/set_layout.
    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        self.grid.wall_rect(0, 0, width, height)
        pending, self._pending = self._pending, None
        if pending is not None:
            for x, y in pending["walls"]:
                self.grid.set(x, y, Wall())
            self.put_obj(Goal(), *pending["goal"])
            self.agent_pos = tuple(pending["agent"])
            self.agent_dir = int(pending["heading"])
            return
        if self.fixed_walls is not None:
            for x, y in self.fixed_walls:
                self.grid.set(x, y, Wall())
        else:
            for _ in range(self.n_blocks):
                self.place_obj(Wall())
        self.place_obj(Goal())
        self.place_agent()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._pending = options
        return super().reset(seed=seed)

    def set_layout(self, walls, goal, agent, heading) -> np.ndarray:
        """Replace the layout without touching the step count; returns the new observation."""
        self._pending = {"walls": walls, "goal": goal, "agent": agent, "heading": heading}
        self._gen_grid(self.width, self.height)
        return self.gen_obs()

    def step(self, action):
        forward = action == self.actions.forward
        obs, _, goal_reached, truncated, _ = super().step(action)
        social_reward = self.goal_reward if goal_reached else 0.0
        env_reward = self.forward_cost if forward and not goal_reached else 0.0
        if goal_reached:  # the original regenerated the layout and went on
            self._gen_grid(self.width, self.height)
            obs = self.gen_obs()
        info = {
            "env_reward": env_reward,
            "social_reward": social_reward,
            "goal_reached": bool(goal_reached),
        }
        return obs, env_reward + social_reward, False, truncated, info

    def gen_obs(self) -> np.ndarray:
        """SPEC §2's reference construction of the egocentric 4-channel observation."""
        ax, ay = self.agent_pos
        encoded = self.grid.encode()  # uint8[width, height, 3], indexed [x][y]
        encoded[ax, ay] = (OBJECT_TO_IDX["agent"], COLOR_TO_IDX["red"], self.agent_dir)
        is_goal = encoded[..., :1] == OBJECT_TO_IDX["goal"]
        full = np.concatenate([encoded, is_goal.astype(np.uint8)], axis=-1)
        pad = self.width - 2
        padded = np.pad(full, ((pad, pad), (pad, pad), (0, 0)))  # zeros: MiniGrid's "unseen"
        half = self.view // 2
        window = padded[
            ax + pad - half : ax + pad + half + 1, ay + pad - half : ay + pad + half + 1
        ]
        window = np.rot90(window, k=-(self.agent_dir + 2), axes=(0, 1))
        return np.ascontiguousarray(np.flip(window, axis=1))
