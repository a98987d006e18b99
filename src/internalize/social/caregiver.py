"""The caregiver of SPEC §1: a presence schedule over training, and the learner's reward.

The learner maximises `U = R_e + P * R_s + (1 - P) * R_i`. The social reward `R_s` comes from
the environment (`GoalsTransition.social_reward`); `R_i` from an ISR model, or nothing. Presence
`P` is a function of the training step (environment steps taken so far, over all parallel
environments of a run). The experiments use the two-phase switch; `Presence` also describes a
caregiver who fades out linearly, and is a vmappable pytree, so runs with different schedules
train side by side.
"""

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Presence:
    """P(step): `before` until `switch_step`, then linear over `fade_steps` steps to `after`.

    `fade_steps = 0` is the paper's two-phase switch. All fields are float32 scalars (or
    batched arrays under vmap).
    """

    before: jax.Array
    """Presence before the switch, in [0, 1]."""
    after: jax.Array
    """Presence once the fade is over, in [0, 1]."""
    switch_step: jax.Array
    """Training step at which the caregiver starts to leave."""
    fade_steps: jax.Array
    """Steps over which presence moves from `before` to `after` (0: at once)."""

    def __call__(self, step: jax.Array) -> jax.Array:
        """Presence at `step` (float32)."""
        elapsed = jnp.asarray(step, jnp.float32) - self.switch_step
        faded = jnp.clip(elapsed / jnp.maximum(self.fade_steps, 1.0), 0.0, 1.0)
        progress = jnp.where(self.fade_steps > 0, faded, (elapsed >= 0).astype(jnp.float32))
        return self.before + (self.after - self.before) * progress


def _presence(before: float, after: float, switch_step: float, fade_steps: float) -> Presence:
    if not (0.0 <= before <= 1.0 and 0.0 <= after <= 1.0):
        raise ValueError(f"presence must lie in [0, 1], got {before} and {after}")
    if switch_step < 0 or fade_steps < 0:
        raise ValueError(
            f"switch_step and fade_steps must be >= 0, got {switch_step} and {fade_steps}"
        )
    return Presence(*(jnp.float32(value) for value in (before, after, switch_step, fade_steps)))


def constant_presence(level: float) -> Presence:
    """The caregiver at `level` throughout (1: always there, 0: never)."""
    return _presence(level, level, 0.0, 0.0)


def two_phase(switch_step: float) -> Presence:
    """Present (P = 1) until `switch_step`, absent (P = 0) from then on: SPEC §1's phases."""
    return _presence(1.0, 0.0, switch_step, 0.0)


def fading(switch_step: float, fade_steps: float) -> Presence:
    """Present until `switch_step`, then fading linearly to absent over `fade_steps`."""
    return _presence(1.0, 0.0, switch_step, fade_steps)


def learner_reward(
    env_reward: jax.Array,
    social_reward: jax.Array,
    internal_reward: jax.Array,
    presence: jax.Array,
) -> jax.Array:
    """`R_e + P * R_s + (1 - P) * R_i`, elementwise."""
    return env_reward + presence * social_reward + (1.0 - presence) * internal_reward
