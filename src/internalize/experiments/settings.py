"""Settings that several experiments share, each declared and checked here once.

An experiment's config takes a group of them by inheriting its class (next to
`ExperimentConfig`, which every experiment has):

- `WorldSettings`: the `world` it runs in (`goals`, `boulder`, or a world of one's own,
  `package.module:make_env`) and the goals world's `n_blocks`;
- `ScheduleSettings`: how the caregiver leaves when socialization ends (`schedule`);
- `ISRRewardSettings`: how the ISR's reward enters once the caregiver is gone
  (`isr_threshold`, `reward_form`).
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from internalize.experiments.common import ExperimentConfig
from internalize.social.caregiver import REWARD_FORMS, ScheduleConfig


@dataclass(frozen=True)
class WorldSettings(ExperimentConfig):
    """The world an experiment runs in."""

    world: str = "goals"
    """The environment: `goals` (SPEC §2's world) or `package.module:make_env`, a function that
    returns an environment of the protocol (`internalize.envs.base`; examples/hazard_world.py)."""
    n_blocks: int = 3
    """Random wall blocks per layout (the goals world)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        # Named before anything runs: a world that cannot be loaded, impossible n_blocks. No
        # arrays yet: the backend starts after the command line has chosen its numerics.
        from internalize.envs.base import load_env

        env = load_env(self.world)
        if self.world == "goals":
            env.check_blocks(self.n_blocks)

    def make_world(self) -> tuple[Any, Any]:
        """The environment and its parameters. ValueError names a world that cannot be loaded."""
        from internalize.envs.base import load_env

        env = load_env(self.world)
        if self.world == "goals":
            return env, env.make_params(n_blocks=self.n_blocks)
        return env, env.make_params()

    def describe_world(self, env, env_params) -> dict:
        """The environment, as `config.json` records it."""
        goals = self.world == "goals"
        return {
            "world": self.world,
            **({"size": env.size, "n_blocks": self.n_blocks} if goals else {}),
            "obs_shape": list(env.obs_shape),
            "num_actions": env.num_actions,
            "max_steps": int(env_params.max_steps),
        }


@dataclass(frozen=True)
class ScheduleSettings(ExperimentConfig):
    """How the caregiver leaves."""

    schedule: ScheduleConfig = ScheduleConfig()
    """How the caregiver leaves when socialization ends (`schedule=fading`, ...)."""


@dataclass(frozen=True)
class ISRRewardSettings(ExperimentConfig):
    """How the ISR's reward enters once the caregiver is gone."""

    isr_threshold: float | None = None
    """If set, the ISR pays only where its prediction exceeds this (None: every prediction)."""
    reward_form: str = "add"
    """How the ISR's reward enters once the caregiver is gone (SPEC §7): `add` (R_e + R_i, the
    paper's), `replace` (R_i instead of R_e where the ISR pays, R_e elsewhere: the original's
    ood and layouts) or `alone` (R_i only, no step cost: the original's prosocial)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.isr_threshold is not None and not np.isfinite(self.isr_threshold):
            raise ValueError(f"isr_threshold must be finite or None, got {self.isr_threshold}")
        if self.reward_form not in REWARD_FORMS:
            raise ValueError(
                f"unknown reward_form {self.reward_form!r}; known: {list(REWARD_FORMS)}"
            )
