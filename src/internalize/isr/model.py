"""The ISR network of SPEC §4 and its input: the observation plus one action channel per agent.

Input, task 1: the egocentric observation uint8[9, 9, 4] with a fifth channel that is zero except
at the agent's own (centre) cell, which holds the action id. Task 2 (two agents, SPEC §4): the
boulder world's observation uint8[9, 9, 5] (9x9x7 under the original's rules) with two more
channels, the learner's action at the learner's cell and the partner's action at the partner's
cell; the network is then built with
`agent_cells=internalize.envs.boulder.agent_cells`, which finds both cells in the observation.
The values enter as they are (small integers), as floats. Conv 2x2 (16) -> ReLU -> Conv 2x2
(32) -> ReLU -> flatten -> Dense 32 -> ReLU -> Dense 32 -> ReLU -> Dense 1; orthogonal weights
with gain sqrt 2, zero biases. The output predicts the social reward clipped at 0, `max(R_s, 0)`.

SPEC §7: the original's code fed the channels-last input straight into PyTorch's channels-first
convolutions, so its grid's first axis (x) acted as the channels and the kernels slid over (y,
feature): flattened 32 * 7 * 3 = 672 values on task 1, not 32 * 7 * 7 = 1568; and its
convolutions kept PyTorch's default initialisation. `axes="original"` and `conv_init="torch"`
(`ISRConfig`) build that network.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from internalize.blocks import SQRT2, Conv2x2, orthogonal


def centre_cell(obs: jax.Array) -> jax.Array:
    """The agent's cell of an egocentric observation uint8[..., H, W, C]: bool[H, W, 1], True at
    the centre of the window."""
    height, width = obs.shape[-3:-1]
    centre = (jnp.arange(height)[:, None] == height // 2) & (
        jnp.arange(width)[None, :] == width // 2
    )
    return centre[..., None]


def isr_input(
    obs: jax.Array,
    action: jax.Array,
    partner_action: jax.Array | None = None,
    agent_cells: Callable[[jax.Array], jax.Array] = centre_cell,
) -> jax.Array:
    """float32[..., H, W, C + k]: `obs` (uint8[..., H, W, C]) with k action channels appended.

    `agent_cells(obs)` gives bool[..., H, W, k'] masks of the agents' cells (k' >= k); channel
    i holds agent i's action (int[...]) at its cell and zero elsewhere. Agent 0 is the learner
    (`action`), agent 1 the partner (`partner_action`, if given). The default puts the single
    agent at the centre of an egocentric window (task 1).
    """
    actions = [action] if partner_action is None else [action, partner_action]
    cells = agent_cells(obs)
    channels = [
        jnp.where(cells[..., i], jnp.asarray(a, jnp.float32)[..., None, None], 0.0)
        for i, a in enumerate(actions)
    ]
    return jnp.concatenate([obs.astype(jnp.float32), *(c[..., None] for c in channels)], axis=-1)


ISR_AXES = ("paper", "original")
CONV_INITS = ("orthogonal", "torch")


class ISRNetwork(nn.Module):
    """(obs uint8[..., H, W, C], action int[...], partner_action int[...] or None) -> predicted
    internal reward float32[...]. `agent_cells` locates the agents (see `isr_input`)."""

    conv_features: tuple[int, ...] = (16, 32)
    widths: tuple[int, ...] = (32, 32)
    agent_cells: Callable[[jax.Array], jax.Array] = centre_cell
    axes: str = "paper"
    """`paper`: convolve over the grid's two axes, the features as channels; `original`: the
    grid's first axis as the channels, convolving over (second axis, feature) (SPEC §7)."""
    conv_init: str = "orthogonal"
    """The convolutions' initialisation: `orthogonal` or `torch` (`networks.Conv2x2`)."""

    def __post_init__(self) -> None:
        if self.axes not in ISR_AXES:
            raise ValueError(f"unknown ISR axes {self.axes!r}; known: {list(ISR_AXES)}")
        if self.conv_init not in CONV_INITS:
            raise ValueError(f"unknown ISR conv_init {self.conv_init!r}; known: {list(CONV_INITS)}")
        super().__post_init__()

    @nn.compact
    def __call__(
        self, obs: jax.Array, action: jax.Array, partner_action: jax.Array | None = None
    ) -> jax.Array:
        x = isr_input(obs, action, partner_action, self.agent_cells)
        if self.axes == "original":  # [..., x, y, feature] read as [channel, height, width]
            x = jnp.moveaxis(x, -3, -1)
        for features in self.conv_features:
            x = nn.relu(Conv2x2(features, scheme=self.conv_init)(x))
        x = x.reshape(*x.shape[:-3], -1)
        for width in self.widths:
            x = nn.relu(nn.Dense(width, kernel_init=orthogonal(SQRT2))(x))
        return nn.Dense(1, kernel_init=orthogonal(SQRT2))(x)[..., 0]
