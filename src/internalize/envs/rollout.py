"""Random-policy rollouts of vmapped environments: a baseline for learners and for speed."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from internalize.envs.base import Environment, step_batch


@struct.dataclass
class RolloutTotals:
    """Sums over all environments and steps of a rollout (float32 scalars)."""

    goals: jax.Array
    """Goals reached."""
    episodes: jax.Array
    """Episodes completed (truncations)."""
    env_reward: jax.Array
    """Environment reward R_e collected."""
    social_reward: jax.Array
    """Social reward R_s collected."""


def make_random_rollout(
    env: Environment, params: Any, num_envs: int, num_steps: int
) -> Callable[[jax.Array], RolloutTotals]:
    """A jitted `rollout(key) -> RolloutTotals`: `num_envs` environments, `num_steps` steps each,
    uniformly random actions, episodes restarted on truncation. One `lax.scan`, no Python loop.
    Nothing reads the observations, so XLA leaves them out.
    """
    if num_envs <= 0 or num_steps <= 0:
        raise ValueError(f"num_envs and num_steps must be positive, got {num_envs} and {num_steps}")

    def rollout(key: jax.Array) -> RolloutTotals:
        key, key_reset = jax.random.split(key)
        states = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(key_reset, num_envs), params
        )

        def one_step(states, key):
            key_action, key_step = jax.random.split(key)
            actions = jax.random.randint(key_action, (num_envs,), 0, env.num_actions)
            states, transition = step_batch(env, key_step, states, actions, params)
            totals = RolloutTotals(
                goals=transition.goal_reached.sum(dtype=jnp.float32),
                episodes=transition.truncated.sum(dtype=jnp.float32),
                env_reward=transition.env_reward.sum(),
                social_reward=transition.social_reward.sum(),
            )
            return states, totals

        _, per_step = jax.lax.scan(one_step, states, jax.random.split(key, num_steps))
        return jax.tree.map(jnp.sum, per_step)

    return jax.jit(rollout)
