"""Compiled calls of the phases: compiled ahead (compile time reported apart, one compile of a
program at a time), and `UpdateLoop`, a run of PPO updates as a few chunked calls that move the
progress bar between them.
"""

import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from internalize.experiments.common import Progress
from internalize.learners.ppo import PPOConfig, over_runs


@dataclass
class Timing:
    """Seconds spent compiling and running one phase, and environment steps taken."""

    compile_s: float = 0.0
    run_s: float = 0.0
    steps: int = 0
    shared: bool = False
    """Reused from an identical earlier phase (`shared_phases`), so no time was spent."""

    def as_dict(self) -> dict[str, float]:
        rate = self.steps / self.run_s if self.run_s > 0 else 0.0
        timing = {
            "compile_s": self.compile_s,
            "run_s": self.run_s,
            "steps": self.steps,
            "steps_per_second": rate,
        }
        return {**timing, "shared": True} if self.shared else timing


_compile_locks: "weakref.WeakKeyDictionary[Any, threading.Lock]" = weakref.WeakKeyDictionary()
_compile_locks_lock = threading.Lock()


def _compiling(function) -> threading.Lock:
    """The lock held while `function` compiles: calls from other threads wait for the first
    compile and then find it in JAX's cache (a function's compiled programs are cached by the
    function, for arguments of the same shapes)."""
    with _compile_locks_lock:
        return _compile_locks.setdefault(function, threading.Lock())


def compiled_call(
    function, *args, timing: Timing, name: str, progress: Progress | None = None
) -> Any:
    """Compile `jax.jit(function)` for `args`, run it, and record both durations; the progress
    bar, if any, names the phase."""
    compiled = _compile(function, args, timing, name, progress)
    started = time.perf_counter()
    result = jax.block_until_ready(compiled(*args))
    timing.run_s += time.perf_counter() - started
    return result


def _compile(function, args: tuple, timing: Timing, name: str, progress, donate=()):
    """`jax.jit(function)` compiled for `args`, the seconds it took added to `timing`."""
    if progress is not None:
        progress.phase(f"{name} (compiling)")
    started = time.perf_counter()
    with _compiling(function):  # another thread's call of `function` may be compiling it
        compiled = jax.jit(function, donate_argnums=donate).lower(*args).compile()
    timing.compile_s += time.perf_counter() - started
    if progress is not None:
        progress.phase(name)
    return compiled


CHUNKS = 16
"""About how many compiled calls an `UpdateLoop` splits its updates into."""


def chunk_size(num_updates: int) -> int:
    """The divisor of `num_updates` nearest (in ratio) to `num_updates / CHUNKS`."""
    divisors = [d for d in range(1, num_updates + 1) if num_updates % d == 0]
    return min(divisors, key=lambda d: abs(np.log(d * CHUNKS / num_updates)))


class UpdateLoop:
    """`num_updates` updates of every run, as a few compiled calls of `chunk_size` updates
    each, with the progress bar moved between them by the steps taken (`config.batch_size`
    per run and update): no program holds a host callback, so JAX's persistent compilation
    cache can keep them all (`internalize.compile_cache`), and the numbers are those of one
    scan over all the updates.

    Per run, `init(*inputs) -> carry` starts it and `body(carry, done) -> (carry, output)` is
    one update (`done`: int32, the updates done after it, from 1). Calling the loop returns
    the carries and the outputs, leading axes [runs, updates]. Repeated calls with inputs of
    the same shapes share the compiled programs; make the loop once and call it often.
    """

    def __init__(self, init, body, num_updates: int, config: PPOConfig) -> None:
        if num_updates < 1:
            raise ValueError(f"an update loop needs at least one update, got {num_updates}")
        size = chunk_size(num_updates)
        self.num_updates, self.size, self.steps_per_update = num_updates, size, config.batch_size
        parallel = config.parallel_runs

        def start(*inputs):
            return over_runs(init, parallel)(*inputs)

        def chunk(carry, first):
            done = first + jnp.arange(1, size + 1, dtype=jnp.int32)
            return over_runs(lambda c: jax.lax.scan(body, c, done), parallel)(carry)

        self.start, self.chunk = start, chunk

    def __call__(
        self, *inputs, timing: Timing, name: str, progress: Progress | None
    ) -> tuple[Any, Any]:
        """Run every update of each run of `inputs` (leading run axis), the time into `timing`
        under `name`; each call moves `progress` by the environment steps it took."""
        start = _compile(self.start, inputs, timing, name, progress)
        started = time.perf_counter()
        carry = start(*inputs)
        timing.run_s += time.perf_counter() - started
        first = jnp.int32(0)
        chunk = _compile(self.chunk, (carry, first), timing, name, progress)
        outputs = jax.tree.map(  # [runs, updates, ...], written in place chunk by chunk
            lambda x: jnp.zeros((x.shape[0], self.num_updates, *x.shape[2:]), x.dtype),
            chunk.out_info[1],
        )
        write = _compile(_write, (outputs, chunk.out_info[1], first), timing, name, progress, (0,))
        runs = int(jax.tree.leaves(inputs)[0].shape[0])
        started = time.perf_counter()
        for first in range(0, self.num_updates, self.size):
            carry, part = chunk(carry, jnp.int32(first))
            outputs = jax.block_until_ready(write(outputs, part, jnp.int32(first)))
            if progress is not None:
                progress.advance(runs * self.size * self.steps_per_update)
        timing.run_s += time.perf_counter() - started
        return carry, outputs


def _write(whole, part, first):
    """`part` [runs, n, ...] written into `whole` [runs, updates, ...] from update `first`."""
    return jax.tree.map(
        lambda w, x: jax.lax.dynamic_update_slice_in_dim(w, x, first, axis=1), whole, part
    )
