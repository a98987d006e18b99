"""An ISR network of one's own, named from a config: `--set isr.model=examples.wide_isr:make_isr`.

`make_isr(agent_cells)` returns a flax module with the paper's ISR's signature,
`(obs uint8[..., H, W, C], action int[...], partner_action int[...] or None) -> float32[...]`.
This one skips the convolutions: one wide hidden layer over the flattened input (the observation
with the action written at the agent's cell, `internalize.isr.model.isr_input`), so it works in
any world whose agents `agent_cells` finds. Training, ensembles and every experiment's phases take
it as they take the paper's network.
"""

from collections.abc import Callable

import flax.linen as nn
import jax

from internalize.isr.model import isr_input


class WideISR(nn.Module):
    """isr_input -> flatten -> Dense `width` -> ReLU -> Dense 1."""

    agent_cells: Callable[[jax.Array], jax.Array]
    width: int = 128

    @nn.compact
    def __call__(self, obs, action, partner_action=None):
        x = isr_input(obs, action, partner_action, self.agent_cells)
        x = x.reshape(*x.shape[:-3], -1)
        x = nn.relu(nn.Dense(self.width)(x))
        return nn.Dense(1)(x)[..., 0]


def make_isr(agent_cells: Callable[[jax.Array], jax.Array]) -> WideISR:
    return WideISR(agent_cells=agent_cells)
