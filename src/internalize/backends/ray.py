"""Runs on a Ray cluster (the optional extra `ray`): each run is a Ray task, and what it writes
comes back to the driver as bytes, so no file system is shared.

A task runs one experiment (`runner.run_experiment`) into a temporary directory on its worker
and returns every file of that run directory. The driver writes them into a hidden directory
beside the run's and renames it into place, so a run directory appears whole or not at all. A
task whose worker dies is retried by Ray (`MAX_RETRIES`) in another worker; nothing is written
twice, since only the driver writes and it writes a run once. Tasks in the deterministic mode
each get a fresh worker process (`max_calls=1`: the mode must be set before JAX starts).
"""

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from internalize.experiments.common import atomic_write

MAX_RETRIES = 3
"""Times Ray runs a task again whose worker died (a killed process, a lost node)."""


def _run_into_files(experiment: Any, config: Any, deterministic: bool) -> dict[str, bytes]:
    """On a worker: run `experiment` (its registry record, so that one registered on the
    driver alone runs too) with `config`, in the deterministic mode on a CPU of its own if
    `deterministic`; every file of its run directory."""
    from internalize import numerics
    from internalize.experiments import registry
    from internalize.experiments.runner import run_experiment

    if deterministic:  # a fresh worker (max_calls=1): JAX has not started
        numerics.make_deterministic(numerics.claim_cpu())
    registry.register(experiment)
    with tempfile.TemporaryDirectory(prefix="internalize-") as temporary:
        out = Path(temporary) / "run"
        run_experiment(experiment.name, config, out, progress=False)
        return {path.name: path.read_bytes() for path in sorted(out.iterdir()) if path.is_file()}


def write_run(files: dict[str, bytes], out: Path) -> None:
    """Write the run directory `out` from `files` (name -> bytes): into a hidden directory
    beside it, then renamed into place, `results.json` written last."""
    staging = out.parent / f".{out.name}.incoming"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in sorted(files, key=lambda name: name == "results.json"):
        atomic_write(staging / name, files[name])
    os.replace(staging, out)


def connect(address: str | None) -> dict[str, float]:
    """Join the Ray cluster at `address` (`auto`, `HOST:PORT`, `ray://...`), or start a local
    one if None; returns the cluster's resources. ValueError if Ray is missing or unreachable."""
    try:
        import ray
    except ImportError:
        raise ValueError("the ray backend needs Ray: pip install 'internalize[ray]'") from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ValueError(f"cannot reach the Ray cluster at {address!r}: {error}") from None
    return ray.cluster_resources()


def run_all(
    runs: Iterable[tuple[str, Any, Path]],
    address: str | None,
    on_done: Callable[[Path, BaseException | None], None],
    cpus: float = 1.0,
    deterministic: bool = False,
) -> None:
    """Run each `(experiment, config, out)` as a Ray task with `cpus` CPUs (and one GPU where
    the cluster has any), writing each run directory `out` on the driver as its task ends;
    `on_done(out, error)` follows each (error: None, or what the task raised). With
    `deterministic`, each task runs in the deterministic mode on a CPU of its own (as
    `reproduce all`'s workers do; `internalize.numerics`). An experiment
    written outside this package (a script's, a notebook's) travels with its tasks by value."""
    import ray
    from ray import cloudpickle

    from internalize.experiments import registry

    runs = [(registry.get(name), config, Path(out)) for name, config, out in runs]
    for record, _, _ in runs:
        for given in (record.config, record.protocol):
            module = getattr(given, "__module__", "internalize")
            if isinstance(given, type) and module.split(".")[0] not in ("internalize", "__main__"):
                cloudpickle.register_pickle_by_value(sys.modules[module])
    resources = connect(address)
    gpus = 1 if resources.get("GPU", 0) >= 1 else 0
    # The deterministic mode must be set before JAX starts: a fresh worker for each task.
    # Otherwise workers are reused, JAX and its small compiled functions warm across tasks.
    task = ray.remote(max_retries=MAX_RETRIES, max_calls=1 if deterministic else 0)(
        _run_into_files
    ).options(num_cpus=cpus, num_gpus=gpus)
    pending = {task.remote(record, config, deterministic): out for record, config, out in runs}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            out = pending.pop(done[0])
            try:
                files = ray.get(done[0])
            except ray.exceptions.RayError as error:
                on_done(out, error)
                continue
            write_run(files, out)
            on_done(out, None)
    finally:  # interrupted: the cluster stops what this driver no longer waits for
        for reference in pending:
            ray.cancel(reference, force=True)
