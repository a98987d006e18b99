"""Network building blocks that the learner's networks and the ISR share (both layers import
them from here): the orthogonal initializer made safe to vmap on a CPU, and the 2x2 convolution
as one matrix product.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

SQRT2 = float(np.sqrt(2.0))


def orthogonal(gain: float) -> nn.initializers.Initializer:
    """Flax's orthogonal initializer, made safe to vmap on a CPU.

    Under `vmap` the QR factorization it rests on becomes one batched LAPACK call that splits
    its batch over XLA's CPU thread pool and waits for the pieces. Called from a thread of that
    pool, with every other thread of the pool waiting likewise, nothing is left to run the
    pieces: the process hangs for good (`benchmarks/hang_repro.py`; jax 0.10.2). So a batch of
    keys draws its matrices one after another (`lax.map`); one key draws exactly what Flax's
    initializer draws.
    """
    draw_one = nn.initializers.orthogonal(gain)

    def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        @jax.custom_batching.custom_vmap
        def draw(key):
            return draw_one(key, shape, dtype)

        @draw.def_vmap
        def draw_batched(axis_size, in_batched, keys):
            if not in_batched[0]:
                return draw(keys), False
            return jax.lax.map(draw, keys), True

        return draw(key)

    return init


def _uniform(bound: float) -> nn.initializers.Initializer:
    """Uniform in [-bound, bound)."""

    def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class Conv2x2(nn.Module):
    """A 2x2 convolution, stride 1, no padding, as one matrix product over 2x2 patches.

    float[..., H, W, C] -> float[..., H-1, W-1, features]. The kernel has `nn.Conv`'s layout
    (2, 2, C, features), so the result equals `nn.Conv(features, (2, 2), padding="VALID")`; XLA's
    CPU convolutions are slow for these tiny shapes, a patch matrix product is not.
    """

    features: int
    gain: float = SQRT2
    scheme: str = "orthogonal"
    """The initialisation: `orthogonal` (with `gain`; zero bias) or `torch`: PyTorch's default
    for `Conv2d`, weights and bias uniform in +-1/sqrt(fan_in), fan_in = 4 * C (what the
    original's ISR kept)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        shape = (2, 2, channels, self.features)
        if self.scheme == "torch":
            bound = 1.0 / np.sqrt(4 * channels)
            kernel = self.param("kernel", _uniform(bound), shape)
            bias = self.param("bias", _uniform(bound), shape[-1:])
        else:
            kernel = self.param("kernel", orthogonal(self.gain), shape)
            bias = self.param("bias", nn.initializers.zeros, (self.features,))
        patches = jnp.concatenate(
            [x[..., :-1, :-1, :], x[..., :-1, 1:, :], x[..., 1:, :-1, :], x[..., 1:, 1:, :]],
            axis=-1,
        )
        # Patch channel order (dy, dx, c) matches kernel.reshape(4 * C, features).
        return patches @ kernel.reshape(4 * channels, self.features) + bias
