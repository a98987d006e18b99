"""Training the ISR model on the socialization data (SPEC §4).

The data are every (observation, action, social reward) of the socialization phase, in the order
they were gathered. The first `train_fraction` (90%) trains, the rest tests. Training samples are
drawn with replacement so that rewarded (R_s > 0) and unrewarded samples each get half the
probability mass, and the loss is the mean squared error against `max(R_s, 0)`; Adam with a global
gradient-norm clip. `paper` is SPEC §4's one epoch at batch size 1; `fast` takes a few larger
batches for the same data (see the README for how it compares).

Reported errors are plain means over the split's samples (not re-balanced).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from internalize.isr.ensemble import AGGREGATIONS, aggregation_weights
from internalize.isr.model import ISRNetwork, centre_cell
from internalize.settings import replace_settings

EVAL_CHUNK = 2048
"""Samples per forward pass when errors are measured."""


@struct.dataclass
class ISRDataset:
    """Socialization samples in time order; N samples (leading axes of a run are flattened)."""

    obs: jax.Array
    """uint8[N, H, W, C] observations the learner acted on."""
    action: jax.Array
    """int32[N] actions taken."""
    social_reward: jax.Array
    """float32[N] the caregiver's reward for that step."""
    partner_action: jax.Array | None = None
    """int32[N] the partner's action in that step (two-agent tasks), or None."""
    observed: jax.Array | None = None
    """bool[N] whether the caregiver was there to reward that step, or None (every step). A
    caregiver who attends some episodes only, or who left part way, labels only the steps it
    saw: the ISR learns from those alone (see `make_isr_train`)."""

    @property
    def size(self) -> int:
        return self.action.shape[-1]


@dataclass(frozen=True)
class ISRConfig:
    """How the ISR model is trained."""

    batch_size: int = 1
    """Samples per Adam step."""
    epochs: float = 1.0
    """Passes over the training split: ceil(epochs * train samples / batch_size) Adam steps,
    rounded up to a multiple of `eval_points`."""
    learning_rate: float = 3e-4
    """Adam step size."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip."""
    train_fraction: float = 0.9
    """Share of the samples, the earliest, that trains; the rest tests."""
    balance: bool = True
    """Draw rewarded and unrewarded samples with half the probability each."""
    eval_points: int = 4
    """Times during training at which the test error is measured (for the learning curve)."""
    train_eval_samples: int = 16_384
    """The training error is measured on at most this many training samples, evenly spaced in
    time (measuring it on all of them would cost as much as the training itself)."""
    members: int = 1
    """ISRs in an ensemble (`internalize.isr.ensemble`), trained side by side from independent
    initialisations, each on a bootstrap resample of the training split; 1: one ISR (the
    paper's)."""
    aggregation: str = "mean"
    """How an ensemble's rewards combine: `mean`, `min` (the worst case) or `uwo` (mean minus
    `penalty` times the variance)."""
    penalty: float = 1.0
    """lambda of the `uwo` aggregation."""
    bootstrap: bool = True
    """Train each ensemble member on a Poisson(1) bootstrap resample of the training split
    (each sample drawn as often as a Poisson(1) count says); False: all on the same data."""
    axes: str = "paper"
    """The network's axis layout: `paper` (SPEC §4) or `original` (the authors' code: the grid's
    first axis as the convolutions' channels, flattened to 672 on the goals world; SPEC §7)."""
    conv_init: str = "orthogonal"
    """The convolutions' initialisation: `orthogonal` (SPEC §4) or `torch` (PyTorch's default,
    which the original's convolutions kept; SPEC §7)."""
    train_on_test: bool = False
    """Draw the training batches from every sample, the test split's too, while the test error
    is still measured on the test split: the original's scaling script trained on its test
    samples (its evaluation call took an optimizer step; SPEC §7), so it saw no train/test gap.
    False (the paper's model): the test split is never trained on."""
    model: str = "paper"
    """The network: `paper` (SPEC §4's, shaped by `axes` and `conv_init`), a name that an
    installed package registers (entry-point group `internalize.isrs`) or
    `package.module:make_isr`, a function of `agent_cells` (`isr.model.isr_input`) that returns a
    flax module `(obs, action, partner_action=None) -> float32[...]` (examples/wide_isr.py)."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "eval_points", "train_eval_samples", "members"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.epochs > 0 or not self.learning_rate > 0:
            raise ValueError(
                f"epochs and learning_rate must be > 0, got {self.epochs}, {self.learning_rate}"
            )
        if not 0.0 < self.train_fraction < 1.0:
            raise ValueError(f"train_fraction must lie in (0, 1), got {self.train_fraction}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(
                f"unknown ISR aggregation {self.aggregation!r}; known: {list(AGGREGATIONS)}"
            )
        if not self.penalty >= 0:
            raise ValueError(f"penalty must be >= 0, got {self.penalty}")
        self.network()  # names an unknown axes, conv_init or model

    def replace(self, **changes: Any) -> "ISRConfig":
        return replace_settings(self, "ISR", changes)

    def network(self, agent_cells: Callable[[jax.Array], jax.Array] = centre_cell) -> Any:
        """The ISR network these settings train, for a task whose agents `agent_cells` finds
        (`isr.model.isr_input`)."""
        if self.model == "paper":
            return ISRNetwork(agent_cells=agent_cells, axes=self.axes, conv_init=self.conv_init)
        from internalize.plugins import build

        return build(self.model, "isr.model", "internalize.isrs", {}, agent_cells=agent_cells)


ISR_PRESETS = {
    "paper": ISRConfig(),
    "fast": ISRConfig(batch_size=64, epochs=2.0, learning_rate=1e-3),
}
ISR_PRESETS["fast-cnn"] = ISR_PRESETS["fast"]


@struct.dataclass
class ISRResult:
    """A trained ISR and its errors."""

    params: dict
    """Network parameters (an ensemble's: `internalize.isr.ensemble`)."""
    train_mse: jax.Array
    """float32 MSE on the training split after training (see `ISRConfig.train_eval_samples`);
    of an ensemble, the mean of its members' (so too the test errors)."""
    test_mse: jax.Array
    """float32 MSE on the test split after training."""
    test_curve: jax.Array
    """float32[eval_points + 1] test MSE before training and at each evaluation point."""


def split_sizes(num_samples: int, train_fraction: float) -> tuple[int, int]:
    num_train = int(math.floor(num_samples * train_fraction))
    if num_train < 1 or num_samples - num_train < 1:
        raise ValueError(
            f"{num_samples} socialization samples cannot be split {train_fraction:.0%} / "
            f"{1 - train_fraction:.0%} into non-empty train and test sets"
        )
    return num_train, num_samples - num_train


def sampling_cdf(target: jax.Array, balance: bool, mask: jax.Array | None = None) -> jax.Array:
    """float32[N] cumulative sampling probabilities; rewarded and unrewarded get half each.

    With no rewarded (or no unrewarded) sample, sampling is uniform. `mask` (bool[N]), if
    given, leaves its False samples out (probability 0); as float32[N] counts, it weighs each
    sample by its count, as if it were there that many times (a bootstrap resample).
    """
    if mask is not None:
        rewarded = jnp.where(target > 0, mask, 0)
        num_rewarded, num_samples = rewarded.sum(), mask.sum()
        weights = jnp.where(
            rewarded,
            0.5 / jnp.maximum(num_rewarded, 1),
            0.5 / jnp.maximum(num_samples - num_rewarded, 1),
        )
        both = (num_rewarded > 0) & (num_rewarded < num_samples)
        weights = jnp.where(both & balance, weights, 1.0 / jnp.maximum(num_samples, 1)) * mask
        return jnp.cumsum(weights) / jnp.maximum(weights.sum(), 1e-30)
    rewarded = target > 0
    num_rewarded = rewarded.sum()
    num_samples = target.shape[0]
    weights = jnp.where(
        rewarded,
        0.5 / jnp.maximum(num_rewarded, 1),
        0.5 / jnp.maximum(num_samples - num_rewarded, 1),
    )
    both = (num_rewarded > 0) & (num_rewarded < num_samples)
    weights = jnp.where(both & balance, weights, 1.0 / num_samples)
    return jnp.cumsum(weights) / weights.sum()


def make_isr_train(config: ISRConfig, num_samples: int, network: ISRNetwork | None = None):
    """`train(key, dataset) -> ISRResult` for datasets of `num_samples` samples (jit/vmap it).

    A dataset with `observed` steps learns from those alone: the first `train_fraction` of them
    (in time) train and the rest test, and the Adam steps follow the observed training count
    (`epochs` passes over it), within a compiled loop sized for a fully observed dataset whose
    later steps do nothing. Its `test_curve` is measured at the same points of that loop.

    With `config.members > 1` it trains an ensemble of that many, side by side (vmapped) in the
    one call: member i from its own key, on a Poisson(1) bootstrap resample of the training
    samples (`config.bootstrap`); the parameters carry `config.aggregation`."""
    network = network or config.network()
    if config.members > 1:
        return _ensemble_train(config, num_samples, network)
    num_train, _ = split_sizes(num_samples, config.train_fraction)
    total_steps = math.ceil(config.epochs * num_train / config.batch_size)
    steps_per_eval = math.ceil(total_steps / config.eval_points)
    train_eval_stride = math.ceil(num_train / config.train_eval_samples)
    optimiser = optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm),
        optax.adam(config.learning_rate, eps=config.adam_eps),
    )

    def mse(params, obs, action, partner, target, mask=None) -> jax.Array:
        """Mean squared error over samples (those of `mask`, if given), in chunks of at most
        `EVAL_CHUNK` (memory)."""
        count = target.shape[0]
        chunks = -(-count // EVAL_CHUNK)
        pad = chunks * EVAL_CHUNK - count

        def chunked(x):
            x = jnp.concatenate([x, jnp.zeros((pad, *x.shape[1:]), x.dtype)])
            return x.reshape(chunks, EVAL_CHUNK, *x.shape[1:])

        def chunk_error(total, batch):
            obs, action, partner, target, weight = batch

            def add(total):
                errors = (network.apply(params, obs, action, partner) - target) ** 2
                return total + (errors * weight).sum()

            if mask is None:
                return add(total), None
            # A chunk the mask leaves out entirely would add 0: skip its forward pass.
            return jax.lax.cond(weight.any(), add, lambda total: total, total), None

        weight = jnp.ones(count, jnp.float32) if mask is None else mask.astype(jnp.float32)
        partner = None if partner is None else chunked(partner)
        batches = (chunked(obs), chunked(action), partner, chunked(target), chunked(weight))
        total, _ = jax.lax.scan(chunk_error, jnp.float32(0.0), batches)
        return total / (count if mask is None else jnp.maximum(weight.sum(), 1.0))

    def train(key: jax.Array, dataset: ISRDataset, counts: jax.Array | None = None) -> ISRResult:
        """`counts` (float32[N], optional) weighs each sample: a bootstrap resample."""
        if dataset.observed is not None:
            return train_observed(key, dataset, counts)
        target = jnp.maximum(dataset.social_reward, 0.0)
        train_obs, test_obs = dataset.obs[:num_train], dataset.obs[num_train:]
        train_action, test_action = dataset.action[:num_train], dataset.action[num_train:]
        partner = dataset.partner_action
        train_partner, test_partner = (
            (None, None) if partner is None else (partner[:num_train], partner[num_train:])
        )
        train_target, test_target = target[:num_train], target[num_train:]
        # What the batches are drawn from: the training split, or every sample.
        drawn_from = (train_obs, train_action, train_partner, train_target)
        if config.train_on_test:
            drawn_from = (dataset.obs, dataset.action, partner, target)
        else:
            counts = None if counts is None else counts[:num_train]
        draw_obs, draw_action, draw_partner, draw_target = drawn_from
        size = draw_target.shape[0]
        if counts is None:
            cdf, side = sampling_cdf(draw_target, config.balance), "left"
        else:  # a sample counted 0 times is never drawn
            cdf, side = sampling_cdf(draw_target, config.balance, counts), "right"
        key_init, key_train = jax.random.split(key)
        params = network.init(
            key_init,
            train_obs[:1],
            train_action[:1],
            None if train_partner is None else train_partner[:1],
        )
        opt_state = optimiser.init(params)

        def grad_step(carry, key):
            params, opt_state = carry
            drawn = jax.random.uniform(key, (config.batch_size,))
            index = jnp.minimum(jnp.searchsorted(cdf, drawn, side), size - 1)

            def loss(params):
                predicted = network.apply(
                    params,
                    draw_obs[index],
                    draw_action[index],
                    None if draw_partner is None else draw_partner[index],
                )
                return ((predicted - draw_target[index]) ** 2).mean()

            grads = jax.grad(loss)(params)
            updates, opt_state = optimiser.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        def segment(carry, key):
            carry, _ = jax.lax.scan(grad_step, carry, jax.random.split(key, steps_per_eval))
            return carry, mse(carry[0], test_obs, test_action, test_partner, test_target)

        initial_test = mse(params, test_obs, test_action, test_partner, test_target)
        (params, _), curve = jax.lax.scan(
            segment, (params, opt_state), jax.random.split(key_train, config.eval_points)
        )
        return ISRResult(
            params=params,
            train_mse=mse(
                params,
                train_obs[::train_eval_stride],
                train_action[::train_eval_stride],
                None if train_partner is None else train_partner[::train_eval_stride],
                train_target[::train_eval_stride],
            ),
            test_mse=curve[-1],
            test_curve=jnp.concatenate([initial_test[None], curve]),
        )

    def train_observed(key: jax.Array, dataset: ISRDataset, counts=None) -> ISRResult:
        if config.train_on_test:
            raise ValueError("isr.train_on_test applies to fully observed datasets only")
        observed, partner = dataset.observed, dataset.partner_action
        target = jnp.maximum(dataset.social_reward, 0.0)
        rank = jnp.cumsum(observed) - 1  # each observed step's place among them, in time
        observed_train = jnp.floor(observed.sum() * config.train_fraction).astype(jnp.int32)
        is_train, is_test = observed & (rank < observed_train), observed & (rank >= observed_train)
        last_train = jnp.max(jnp.where(is_train, jnp.arange(num_samples), 0))
        steps = jnp.ceil(config.epochs * observed_train / config.batch_size).astype(jnp.int32)
        weight = is_train if counts is None else jnp.where(is_train, counts, 0.0)
        cdf = sampling_cdf(target, config.balance, weight)
        key_init, key_train = jax.random.split(key)
        params = network.init(
            key_init, dataset.obs[:1], dataset.action[:1], None if partner is None else partner[:1]
        )

        def grad_step(carry, step_key):
            (params, opt_state), (index_step, key) = carry, step_key

            def learn(carry):
                params, opt_state = carry
                drawn = jax.random.uniform(key, (config.batch_size,))
                index = jnp.minimum(jnp.searchsorted(cdf, drawn, "right"), last_train)

                def loss(params):
                    picked = None if partner is None else partner[index]
                    predicted = network.apply(
                        params, dataset.obs[index], dataset.action[index], picked
                    )
                    return ((predicted - target[index]) ** 2).mean()

                updates, opt_state = optimiser.update(jax.grad(loss)(params), opt_state, params)
                return optax.apply_updates(params, updates), opt_state

            return jax.lax.cond(index_step < steps, learn, lambda c: c, (params, opt_state)), None

        # At most as many test steps as a fully observed dataset has: gather them (the error
        # of the filler, a repeat of the first, is masked out).
        test_index = jnp.flatnonzero(is_test, size=num_samples - num_train, fill_value=0)
        in_test = jnp.arange(num_samples - num_train) < is_test.sum()
        test_partner = None if partner is None else partner[test_index]
        test_data = (dataset.obs[test_index], dataset.action[test_index], test_partner)

        def test_error(params):
            return mse(params, *test_data, target[test_index], in_test)

        def segment(carry, step_keys):
            carry, _ = jax.lax.scan(grad_step, carry, step_keys)
            return carry, test_error(carry[0])

        keys = jax.random.split(key_train, config.eval_points * steps_per_eval)
        indices = jnp.arange(config.eval_points * steps_per_eval)
        step_keys = (indices, keys)
        segments = jax.tree.map(lambda x: x.reshape(config.eval_points, steps_per_eval), step_keys)
        initial_test = test_error(params)
        (params, _), curve = jax.lax.scan(segment, (params, optimiser.init(params)), segments)
        stride = slice(None, None, train_eval_stride)
        train_mse = mse(
            params,
            dataset.obs[stride],
            dataset.action[stride],
            None if partner is None else partner[stride],
            target[stride],
            is_train[stride],
        )
        return ISRResult(
            params=params,
            train_mse=train_mse,
            test_mse=curve[-1],
            test_curve=jnp.concatenate([initial_test[None], curve]),
        )

    return train


def _ensemble_train(config: ISRConfig, num_samples: int, network: ISRNetwork):
    """`make_isr_train` of an ensemble of `config.members` ISRs."""
    train_one = make_isr_train(config.replace(members=1), num_samples, network)

    def train(key: jax.Array, dataset: ISRDataset) -> ISRResult:
        def member(key):
            key_member, key_resample = jax.random.split(key)
            counts = None
            if config.bootstrap:
                counts = jax.random.poisson(key_resample, 1.0, (num_samples,)).astype(jnp.float32)
            return train_one(key_member, dataset, counts)

        members = jax.vmap(member)(jax.random.split(key, config.members))
        weights = aggregation_weights(config.aggregation, config.penalty)
        return ISRResult(
            params={"members": members.params, "aggregation": weights},
            train_mse=members.train_mse.mean(0),
            test_mse=members.test_mse.mean(0),
            test_curve=members.test_curve.mean(0),
        )

    return train
