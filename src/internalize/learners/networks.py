"""Policy and value networks for PPO, and the 2x2 convolution they and the ISR share.

`PaperActorCritic` is SPEC §4's network as Stable-Baselines3 builds it for `PPO("CnnPolicy")`
with the original's feature extractor: Conv 2x2 (16) -> ReLU -> Conv 2x2 (32) -> ReLU -> Conv 2x2
(64) -> ReLU -> flatten -> Dense 128 -> ReLU, shared by a 64-64 tanh policy head and a 64-64 tanh
value head. Initialisation follows SB3: orthogonal weights (gain sqrt 2 in the trunk and heads,
0.01 for the logits, 1 for the value), zero biases.

`MlpActorCritic` is the `fast` preset's network: the flattened observation through one dense
ReLU layer shared by a small tanh policy head and value head (see `internalize.learners.ppo`).
"""

from collections.abc import Sequence

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


def _mlp_head(x: jax.Array, widths: Sequence[int], outputs: int, out_gain: float) -> jax.Array:
    for width in widths:
        x = nn.tanh(nn.Dense(width, kernel_init=orthogonal(SQRT2))(x))
    return nn.Dense(outputs, kernel_init=orthogonal(out_gain))(x)


class PaperActorCritic(nn.Module):
    """SPEC §4 PPO network: obs float[..., 9, 9, 4] -> (logits float[..., A], value float[...])."""

    num_actions: int
    conv_features: Sequence[int] = (16, 32, 64)
    trunk_width: int = 128
    head_widths: Sequence[int] = (64, 64)

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = obs
        for features in self.conv_features:
            x = nn.relu(Conv2x2(features)(x))
        x = x.reshape(*x.shape[:-3], -1)
        x = nn.relu(nn.Dense(self.trunk_width, kernel_init=orthogonal(SQRT2))(x))
        logits = _mlp_head(x, self.head_widths, self.num_actions, 0.01)
        value = _mlp_head(x, self.head_widths, 1, 1.0)
        return logits, value[..., 0]


class MlpActorCritic(nn.Module):
    """The `fast` network. obs float[..., H, W, C] -> (logits float[..., A], value float[...])."""

    num_actions: int
    trunk_width: int = 128
    head_widths: Sequence[int] = (64,)

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = obs.reshape(*obs.shape[:-3], -1)
        x = nn.relu(nn.Dense(self.trunk_width, kernel_init=orthogonal(SQRT2))(x))
        logits = _mlp_head(x, self.head_widths, self.num_actions, 0.01)
        value = _mlp_head(x, self.head_widths, 1, 1.0)
        return logits, value[..., 0]


NETWORKS = {"paper_cnn": PaperActorCritic, "mlp": MlpActorCritic}
"""Network names a `PPOConfig` may choose."""
