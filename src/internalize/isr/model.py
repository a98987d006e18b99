"""The ISR network of SPEC §4 and its input: the observation plus an action channel.

Input: the egocentric observation uint8[9, 9, 4] with a fifth channel that is zero except at the
agent's own (centre) cell, which holds the action id. The values enter as they are (small
integers), as floats. Conv 2x2 (16) -> ReLU -> Conv 2x2 (32) -> ReLU -> flatten -> Dense 32 ->
ReLU -> Dense 32 -> ReLU -> Dense 1; orthogonal weights with gain sqrt 2, zero biases. The output
predicts the social reward clipped at 0, `max(R_s, 0)`.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from internalize.learners.networks import SQRT2, Conv2x2, orthogonal


def isr_input(obs: jax.Array, action: jax.Array) -> jax.Array:
    """float32[..., H, W, C + 1]: `obs` (uint8[..., H, W, C]) with the action channel appended.

    The agent sits at the centre of the egocentric window; `action` (int[...]) goes there.
    """
    height, width = obs.shape[-3:-1]
    centre = (jnp.arange(height)[:, None] == height // 2) & (
        jnp.arange(width)[None, :] == width // 2
    )
    channel = jnp.where(centre, jnp.asarray(action, jnp.float32)[..., None, None], 0.0)
    return jnp.concatenate([obs.astype(jnp.float32), channel[..., None]], axis=-1)


class ISRNetwork(nn.Module):
    """(obs uint8[..., H, W, C], action int[...]) -> predicted internal reward float32[...]."""

    conv_features: tuple[int, ...] = (16, 32)
    widths: tuple[int, ...] = (32, 32)

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = isr_input(obs, action)
        for features in self.conv_features:
            x = nn.relu(Conv2x2(features)(x))
        x = x.reshape(*x.shape[:-3], -1)
        for width in self.widths:
            x = nn.relu(nn.Dense(width, kernel_init=orthogonal(SQRT2))(x))
        return nn.Dense(1, kernel_init=orthogonal(SQRT2))(x)[..., 0]
