"""Policy and value networks for PPO (their building blocks: `internalize.blocks`).

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

from internalize.blocks import SQRT2, Conv2x2, orthogonal


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
