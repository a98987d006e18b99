"""PettingZoo view of the boulder world: the learner and the partner as a `ParallelEnv`.

Both agents act through `step({"learner": a, "partner": b})`; the partner's scripted action (a
shortest-path step to its goal, SPEC §3) is in `infos["partner"]["scripted_action"]` and from
`scripted_partner_action()`, so callers can play the scripted partner or replace it.
Requires the `pettingzoo` extra.
"""

from typing import Any

import jax
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from internalize.adapters.boulder_options import RESET_OPTIONS, state_from_options
from internalize.envs.boulder import BoulderEnv
from internalize.envs.render import render_boulder

LEARNER, PARTNER = "learner", "partner"


class BoulderParallelEnv(ParallelEnv):
    """The boulder world (`internalize.envs.boulder`) with two agents.

    Both observe `Box(0, 255, (9, 9, 5), uint8)`, the learner's egocentric view of the whole grid
    (the partner's policy is scripted on the state, not on an observation). Actions: the
    learner `Discrete(5)` (left, right, forward, pick up, drop), the partner `Discrete(5)`
    (stay, right, down, left, up). Rewards: the learner R_e + R_s, the partner `goal_reward`
    when it reaches its goal. Episodes truncate after `max_steps` for both; then `agents` is
    empty until `reset`. `info` of the learner carries `env_reward`, `social_reward` and
    `goal_reached`; of the partner `scripted_action` (for the next step) and `goal_reached`.

    `reset(options={"walls": [...7 cells...], "boulder": (x, y), "partner": ..., "goal": ...,
    "learner": ..., "heading": d, "carrying": False})` sets that layout and those positions;
    `walls` alone draws the positions by the task's rules; no options draw everything. Unknown
    options are ignored with a warning (PettingZoo's API test passes one).
    """

    metadata = {"render_modes": ["rgb_array"], "name": "internalize_boulder_v0"}

    def __init__(
        self,
        max_steps: int | None = None,
        forward_cost: float | None = None,
        goal_reward: float = 0.4,
        render_mode: str | None = None,
    ):
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.env = BoulderEnv()
        self.params = self.env.make_params(max_steps, forward_cost, goal_reward)
        self.possible_agents = [LEARNER, PARTNER]
        self.agents: list[str] = []
        self._observation_space = spaces.Box(0, 255, self.env.obs_shape, np.uint8)
        self._action_spaces = {
            LEARNER: spaces.Discrete(self.env.num_actions),
            PARTNER: spaces.Discrete(self.env.num_partner_actions),
        }
        self._reset = jax.jit(self.env.reset)
        self._place = jax.jit(self.env.place)
        self._step = jax.jit(self.env.step_joint)
        self._observe = jax.jit(self.env.observe)
        self._scripted = jax.jit(self.env.partner_action)
        self._rng = np.random.default_rng()
        self._key = jax.random.key(0)
        self.state = None

    def observation_space(self, agent: str) -> spaces.Box:
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_spaces[agent]

    def _next_key(self) -> jax.Array:
        self._key, key = jax.random.split(self._key)
        return key

    def scripted_partner_action(self) -> int:
        """The scripted partner's action in the current state (a `PartnerAction`)."""
        if self.state is None:
            raise RuntimeError("call reset() before asking for the partner's action")
        return int(self._scripted(self.state))

    def _observations(self) -> dict[str, np.ndarray]:
        obs = np.asarray(self._observe(self.state))
        return {agent: obs for agent in self.agents}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._key = jax.random.key(int(self._rng.integers(2**63)))
        self.state = state_from_options(
            self.env,
            options,
            self._rng,
            self._next_key(),
            self._reset,
            self._place,
            self.params,
            strict=False,
        )
        self.agents = list(self.possible_agents)
        infos = {
            LEARNER: {},
            PARTNER: {"scripted_action": self.scripted_partner_action()},
        }
        return self._observations(), infos

    def step(self, actions: dict[str, int]):
        if self.state is None or not self.agents:
            raise RuntimeError("call reset() before step()")
        for agent in self.agents:
            if agent not in actions or not self._action_spaces[agent].contains(actions[agent]):
                high = self._action_spaces[agent].n - 1
                raise ValueError(
                    f"{agent}'s action must be an integer in 0..{high}, got {actions.get(agent)!r}"
                )
        self.state, transition = self._step(
            self._next_key(), self.state, actions[LEARNER], actions[PARTNER], self.params
        )
        env_reward = float(transition.env_reward)
        social_reward = float(transition.social_reward)
        goal_reached = bool(transition.goal_reached)
        rewards = {
            LEARNER: env_reward + social_reward,
            PARTNER: float(self.params.goal_reward) if goal_reached else 0.0,
        }
        truncated = bool(transition.truncated)
        observations = self._observations()
        infos = {
            LEARNER: {
                "env_reward": env_reward,
                "social_reward": social_reward,
                "goal_reached": goal_reached,
            },
            PARTNER: {
                "scripted_action": self.scripted_partner_action(),
                "goal_reached": goal_reached,
            },
        }
        terminations = {agent: False for agent in self.agents}
        truncations = {agent: truncated for agent in self.agents}
        if truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self):
        if self.render_mode == "rgb_array" and self.state is not None:
            return render_boulder(self.state)
        return None

    def close(self) -> None:
        pass


__all__ = ["BoulderParallelEnv", "RESET_OPTIONS"]
