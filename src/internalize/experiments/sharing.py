"""Phases computed once: inside `shared_phases()`, a phase called again with identical inputs
returns its first result (`once`, keyed by `fingerprint`), across the experiments of one
`reproduce all` group.
"""

import contextlib
import hashlib
from typing import Any

import jax
import numpy as np

from internalize.experiments.common import Progress
from internalize.experiments.compiled import Timing

_shared: dict[str, tuple] | None = None
"""Results of phases computed inside `shared_phases()`, by the fingerprint of their inputs."""


@contextlib.contextmanager
def shared_phases():
    """Inside this block a phase called again with identical inputs (the same presets, task,
    seeds, data and step counts) returns its first result instead of being recomputed: the
    experiments of `reproduce all` that socialize alike share one socialization, ISR and frozen
    learner. Phases are deterministic functions of their inputs, so the results are the same
    as separate runs give; the repeated phase's timing counts no seconds and says `shared`.
    A block inside another shares the outer one's results."""
    global _shared
    if _shared is not None:
        yield
        return
    _shared = {}
    try:
        yield
    finally:
        _shared = None


def store() -> dict[str, Any] | None:
    """The results stored by the `shared_phases()` block in force, by fingerprint; None
    outside one."""
    return _shared


def fingerprint(*parts: Any) -> str:
    """A digest of array leaves (values, dtypes, shapes) and the repr of everything else."""
    digest = hashlib.sha256()
    leaves, treedef = jax.tree.flatten(parts)
    digest.update(repr(treedef).encode())
    for leaf in leaves:
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
            array = np.asarray(leaf)
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
        else:
            digest.update(repr(leaf).encode())
    return digest.hexdigest()


def once(name: str, inputs: tuple, compute, progress: Progress | None, steps: int):
    """`compute()` (returning `(..., Timing)`, or a list of such), or inside `shared_phases()`
    the stored result of the same phase with the same `inputs`, whose `steps` then move the
    progress bar at once."""
    if _shared is None:
        return compute()
    key = fingerprint(name, *inputs)
    if key not in _shared:
        _shared[key] = compute()
        return _shared[key]
    if progress is not None:
        progress.advance(steps)

    def shared(outcome: tuple) -> tuple:
        *outputs, timing = outcome
        return (*outputs, Timing(steps=timing.steps, shared=True))

    found = _shared[key]
    return [shared(outcome) for outcome in found] if isinstance(found, list) else shared(found)
