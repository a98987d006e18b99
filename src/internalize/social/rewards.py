"""The learner's reward, composed outside the learner: `U = R_e + P * R_s + (1 - P) * w * R_i`.

A learner (`internalize.learners.ppo.PPO`) is given a `LearnerReward` and calls it on every
step; it knows nothing of caregivers or ISRs. A `LearnerReward` is built from

- a presence schedule `P` (`internalize.social.caregiver.Presence`: two-phase, fading,
  intermittent or readiness), whose per-run memory is a `CaregiverState`;
- the caregiver's reward `R_s`, which the environment reports (`Transition.social_reward`);
- an internal reward model `R_i`: any pytree callable as `model(obs, action, transition)` that
  returns float32[num_envs] (`ISRReward` wraps a trained ISR network; an ensemble with an
  aggregation is another such model), or None for no internal reward; and its weight `w`.

Everything is a pytree, so runs that differ in schedule values, weights or ISR parameters train
side by side in one compiled call.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from internalize.isr.ensemble import predict
from internalize.isr.model import ISRNetwork
from internalize.social.caregiver import (
    REWARD_FORMS,
    CaregiverState,
    Presence,
    constant_presence,
    learner_reward,
)


@struct.dataclass
class ISRReward:
    """R_i from a trained ISR network or ensemble, paid only above `threshold` if that is set."""

    params: Any
    """The network's parameters, or an ensemble's (`internalize.isr.ensemble`: the threshold
    then applies to the aggregated reward)."""
    network: ISRNetwork = struct.field(pytree_node=False, default=ISRNetwork())
    threshold: jax.Array | float | None = None
    """If set, the ISR pays only where its prediction exceeds this (else 0). The original used
    0.2 in the generalization experiment (SPEC §5 B); None pays every prediction. A leaf of the
    pytree, so runs with other thresholds share one compiled call."""

    def __call__(self, obs: jax.Array, action: jax.Array, transition: Any) -> jax.Array:
        # Two-agent tasks (the boulder world) report the partner's action; the ISR reads it.
        partner = getattr(transition, "partner_action", None)
        reward = predict(self.network, self.params, obs, action, partner)
        if self.threshold is not None:
            reward = jnp.where(reward > self.threshold, reward, 0.0)
        return reward


@struct.dataclass
class LearnerReward:
    """Who rewards the learner, and how: the caregiver's presence and an internal reward."""

    presence: Presence
    internal_weight: jax.Array
    """float32 multiplier `w` of R_i (0: no internal reward)."""
    internal: Any = None
    """An internal reward model (`ISRReward` or any with its call), or None (R_i = 0)."""
    form: str = struct.field(pytree_node=False, default="add")
    """How R_i enters the reward once the caregiver is gone: `add`, `replace` or `alone`
    (`caregiver.learner_reward`); without an internal model, R_e alone whatever the form."""

    def __post_init__(self) -> None:
        if self.form not in REWARD_FORMS:
            raise ValueError(f"unknown reward form {self.form!r}; known: {list(REWARD_FORMS)}")

    def start(self, key: jax.Array, num_envs: int) -> CaregiverState:
        """The caregiver's state at the start of a run."""
        return self.presence.start(key, num_envs)

    def new_episodes(self, state: CaregiverState, key: jax.Array, fresh: jax.Array):
        """The state after the environments `fresh` (bool[num_envs]) start new episodes."""
        return self.presence.new_episodes(state, key, fresh)

    def after_update(self, state: CaregiverState, step: jax.Array, goals_per_episode):
        """The state after an update whose rollout reached `goals_per_episode` (readiness)."""
        return self.presence.after_update(state, step, goals_per_episode)

    def __call__(
        self,
        state: CaregiverState,
        step: jax.Array,
        obs: jax.Array,
        action: jax.Array,
        transition: Any,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """For a batch step taken at training step `step` from `obs` with `action`: the
        learner's reward, the internal reward it received (`(1 - P) * w * R_i`) and the
        presence P, each float32[num_envs]."""
        presence = self.presence.per_env(state, step)
        form = self.form
        if self.internal is None:
            internal, form = jnp.zeros_like(transition.env_reward), "add"
        else:
            internal = self.internal_weight * self.internal(obs, action, transition)
        reward = learner_reward(
            transition.env_reward,
            transition.social_reward,
            internal,
            presence,
            form,
            self.internal_weight,
        )
        return reward, (1.0 - presence) * internal, presence


def caregiver_present() -> LearnerReward:
    """The caregiver there throughout (P = 1), no internal reward: socialization."""
    return LearnerReward(presence=constant_presence(1.0), internal_weight=jnp.float32(0.0))
