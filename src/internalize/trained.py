"""A trained learner and its ISR, loaded from a run directory: `internalize.load`.

```python
import internalize

trained = internalize.load("runs/retention-X", condition="isr", seed=1234)
actions = trained.predict(obs)              # obs uint8[H, W, C] or [N, H, W, C]
reward = trained.isr.reward(obs, actions)   # what the ISR pays for those actions
```

A run's `checkpoints.msgpack` holds the policies an experiment saves, under names its protocol
gives (`Protocol.saved_policies`: `socialized`, and each condition's final learner), and its ISRs
(`isr`, or one per data size or kind). The run's `config.json` rebuilds the network of each: the
settings it ran with, whatever preset or `--set` gave them.
"""

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from internalize.experiments.common import load_checkpoints, read_json_object


@dataclass(frozen=True)
class Policy:
    """A trained policy: `predict` as Stable-Baselines3's, `logits` for what it would do."""

    ppo: Any
    """Its `learners.ppo.PPO` (network, environment, settings)."""
    params: Any

    @functools.cached_property
    def _logits(self):
        """The jitted `(params, obs uint8[N, H, W, C]) -> logits` (compiled once per policy)."""
        return jax.jit(lambda params, obs: self.ppo.policy(params, obs)[0])

    def logits(self, obs) -> np.ndarray:
        """float32[..., actions]: the policy's logits for uint8 observations [..., H, W, C]."""
        obs = jnp.asarray(obs)
        logits = self._logits(self.params, obs.reshape(-1, *obs.shape[-3:]))
        return np.asarray(logits).reshape(*obs.shape[:-3], -1)

    def predict(self, obs, deterministic: bool = True, key: jax.Array | None = None) -> np.ndarray:
        """Actions int[...] for observations [..., H, W, C]: the most likely (deterministic), or
        sampled with `key` (a `jax.random.key`)."""
        logits = self.logits(obs)
        if deterministic:
            return logits.argmax(-1)
        if key is None:
            raise ValueError("predict(deterministic=False) needs key=jax.random.key(...)")
        return np.asarray(jax.random.categorical(key, logits))


@dataclass(frozen=True)
class ISR:
    """A trained ISR (one network, or an ensemble aggregated as it was trained)."""

    network: Any
    params: Any

    def reward(self, obs, action, partner_action=None) -> np.ndarray:
        """float32[...]: the internal reward for observations [..., H, W, C] and actions [...]
        (and the partner's actions, in a two-agent world)."""
        from internalize.isr.ensemble import predict

        partner = None if partner_action is None else jnp.asarray(partner_action)
        return np.asarray(
            predict(self.network, self.params, jnp.asarray(obs), jnp.asarray(action), partner)
        )


@dataclass(frozen=True)
class Trained:
    """A run's policy of one condition and seed, and the ISR that goes with it."""

    experiment: str
    condition: str
    seed: int
    policy: Policy
    isr: ISR | None

    def predict(self, obs, deterministic: bool = True, key: jax.Array | None = None):
        return self.policy.predict(obs, deterministic, key)


def load(
    run: str | os.PathLike,
    condition: str | None = None,
    seed: int | None = None,
    isr: str | None = None,
) -> Trained:
    """The policy of `condition` (default: the last condition the run saved) and `seed` (a seed
    of the run's `seed_list`; default its first) in the run directory `run` (one experiment's),
    with the ISR `isr` (default: the ISR of the condition's name, else the run's only ISR, else
    None). ValueError names what is missing and what there is."""
    from internalize.experiments.configs import resolve_config
    from internalize.experiments.runner import protocol

    run = Path(run)
    config = read_json_object(run / "config.json") if (run / "config.json").is_file() else None
    if config is None or "experiment" not in config:
        raise ValueError(
            f"{run} is not a run directory: it has no config.json naming an experiment"
        )
    name = config["experiment"]
    if name == "all":
        raise ValueError(
            f"{run} is an `all` run: load one of its experiments, e.g. {run}/retention"
        )
    seeds = list(config.get("seed_list", []))
    seed = seeds[0] if seed is None and seeds else seed
    if seed not in seeds:
        raise ValueError(f"{run} has no seed {seed}; its seeds: {seeds}")
    checkpoints = load_checkpoints(run)
    built = protocol(name, resolve_config(name, run / "config.json"))
    saved = {
        policy: where
        for policy, where in type(built).saved_policies(config).items()
        if where[0] in checkpoints["policy"]
    }
    if not saved:
        raise ValueError(f"{run} ({name}) saves no policies")
    condition = list(saved)[-1] if condition is None else condition
    if condition not in saved:
        raise ValueError(f"{run} has no policy {condition!r}; it has {list(saved)}")
    entry, prefix, offset = saved[condition]
    index = (*prefix, offset + seeds.index(seed))
    params = pick_params(
        checkpoints["policy"][entry],
        index,
        params_template(built.ppo),
        f"{run}: policy {condition!r}",
    )
    if isr is None and condition in checkpoints["isr"]:  # hacking: each condition's own ISR
        isr = condition
    return Trained(
        name,
        condition,
        seed,
        Policy(built.ppo, params),
        _isr(checkpoints, built, seeds.index(seed), isr, run),
    )


def _isr(checkpoints: dict, built, seed_index: int, name: str | None, run: Path) -> ISR | None:
    isrs = checkpoints["isr"]
    if name is None:
        if len(isrs) != 1:
            return None
        name = next(iter(isrs))
    if name not in isrs:
        raise ValueError(f"{run} has no ISR {name!r}; it has {list(isrs)}")
    params = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[seed_index]), isrs[name])
    return ISR(built.isr_network, params)


def params_template(ppo) -> Any:
    """The shapes and dtypes of the parameters of `ppo`'s network (nothing computed)."""
    obs = jnp.zeros((1, *ppo.env.obs_shape), jnp.float32)
    return jax.eval_shape(ppo.network.init, jax.random.key(0), obs)


def pick_params(tree, index: tuple[int, ...], template, what: str):
    """`tree` at the leading `index`, checked against the shapes of `template` (a params tree)."""
    want = {
        jax.tree_util.keystr(k): v.shape for k, v in jax.tree_util.tree_leaves_with_path(template)
    }
    try:
        got = {
            jax.tree_util.keystr(k): np.asarray(v)[index]
            for k, v in jax.tree_util.tree_leaves_with_path(tree)
        }
    except IndexError:
        raise ValueError(f"{what} has no entry {index}") from None
    shapes = {k: v.shape for k, v in got.items()}
    if shapes != want:
        raise ValueError(
            f"{what} does not fit the run's network (parameter shapes {shapes} where {want} "
            "are expected)"
        )
    return jax.tree_util.tree_unflatten(jax.tree.structure(template), [got[k] for k in want])
