"""What every experiment shares: the run directory, atomic writes, versions, progress.

A run directory holds `config.json` (the resolved settings, written first), `versions.json`,
`metrics.csv` (one row per seed, condition and update), plots, and `results.json` with the
headline numbers, written last. Every file is written to a temporary name and renamed into
place, so a file is either whole or absent; a run is complete exactly when `results.json`
exists. A directory that already holds files is never written into: a finished run is kept, and
an interrupted one is left for the user to inspect or remove. One process at a time writes a run
directory: it holds the lock file `.lock` (`hold_run_directory`), which no check counts as a
file of the run.
"""

import contextlib
import csv
import io
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar

from internalize import numerics
from internalize.experiments.profiles import PROFILE_NAMES
from internalize.isr.train import ISR_PRESETS, ISRConfig
from internalize.learners.ppo import PRESETS as PPO_PRESETS
from internalize.learners.ppo import PPOConfig

RESULTS_FILE = "results.json"
LOCK_FILE = ".lock"
"""Locked (flock) by the process that writes a run directory, and holding its PID."""


@dataclass(frozen=True)
class ExperimentConfig:
    """Settings every experiment has; each experiment's config adds its own."""

    preset: str = "fast"
    """`fast` or `paper` (PPO and ISR settings; see the README)."""
    profile: str | None = None
    """The profile laid under the explicit settings, or none: `original` turns on every SPEC §7
    difference that is a setting (the authors' code; docs/fidelity.md). `make_config` and the
    command line (`--profile`) apply it after the preset and before every explicit setting;
    a config built directly only records the name."""
    seeds: int = 10
    """Number of seeds (independent runs of the whole experiment)."""
    first_seed: int = 1234
    """Seeds are first_seed, first_seed + 1, ... (the original used 1234-1243)."""
    ppo: PPOConfig | None = None
    """The learner's PPO settings (`ppo.KEY`); unset: those of the preset."""
    isr: ISRConfig | None = None
    """How the ISR is trained (`isr.KEY`); unset: that of the preset."""

    PPO_PRESETS: ClassVar[Mapping[str, PPOConfig]] = PPO_PRESETS
    """The named defaults of `ppo` (an experiment may have its own)."""
    ISR_PRESETS: ClassVar[Mapping[str, ISRConfig]] = ISR_PRESETS
    """The named defaults of `isr`."""

    def __post_init__(self) -> None:
        if self.preset not in self.PPO_PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {sorted(self.PPO_PRESETS)}")
        if self.profile is not None and self.profile not in PROFILE_NAMES:
            raise ValueError(f"unknown profile {self.profile!r}; known: {list(PROFILE_NAMES)}")
        # Presets are named defaults: what is not given comes from them.
        if self.ppo is None:
            object.__setattr__(self, "ppo", self.PPO_PRESETS[self.preset])
        if self.isr is None:
            object.__setattr__(self, "isr", self.ISR_PRESETS[self.preset])
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if self.first_seed < 0:
            raise ValueError(f"first_seed must be >= 0, got {self.first_seed}")

    def check_positive(self, *names: str) -> None:
        """Raise ValueError unless every named field is an integer >= 1."""
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename.
    An OSError (a full disk, a file system that refuses writes) names `path`; the temporary
    file is removed whatever happens."""
    path, temporary = Path(path), None
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide results from co-workers
        os.replace(temporary, path)
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from None
    finally:
        if temporary is not None:  # renamed away unless something failed
            Path(temporary).unlink(missing_ok=True)


def write_json(path: Path, data: Any) -> Path:
    """Write `data` as JSON to `path` atomically."""
    text = json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n"
    atomic_write(path, text.encode())
    return path


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV file of `columns` and `rows` to `path` atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    atomic_write(path, buffer.getvalue().encode())
    return path


def save_figure(path: Path, figure) -> Path:
    """Save a matplotlib figure to `path` (its format from the suffix) atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=Path(path).suffix[1:], dpi=150, bbox_inches="tight")
    atomic_write(path, buffer.getvalue())
    return path


def read_json_object(path: Path) -> dict:
    """The JSON object in the file `path`; ValueError naming the file if it cannot be read or
    holds something else."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a readable JSON file: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a JSON {type(data).__name__}, not an object")
    return data


def versions() -> dict[str, str]:
    """Versions of Python, this package and the libraries that shape results, and the machine
    and numerics (CPU model, CPUs used, XLA_FLAGS: `internalize.numerics.describe`)."""
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in ("internalize", "jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    import jax

    found["jax_backend"] = jax.default_backend()
    found["devices"] = ", ".join(str(device) for device in jax.devices())
    found["cpu_count"] = str(os.cpu_count())
    found.update(numerics.describe())
    return found


def run_files(path: Path) -> list[Path]:
    """What the directory `path` holds, less the lock file (which every run directory may have)."""
    return [entry for entry in Path(path).iterdir() if entry.name != LOCK_FILE]


@contextlib.contextmanager
def hold_run_directory(
    path: str | os.PathLike, check: Callable[[Path], object] | None = None
) -> Iterator[Path]:
    """Create the run directory `path` if need be and hold it for this process alone while the
    block runs: an exclusive `flock` on its `.lock`, which holds this process's PID. The
    operating system releases the lock when the process ends, however it ends.

    Raises ValueError naming the holder's PID when another process holds the directory, naming
    the path when it cannot be created, or whatever `check(path)` raises to refuse it. Until
    the lock is taken nothing is created or changed, so a refused directory is left as it was.
    """
    path = Path(path)
    _refuse_if_held(path)
    if check is not None:
        check(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise ValueError(f"cannot create the run directory {path}: {error.strerror}") from None
    try:
        _lock(handle, path)
        # The file is never removed: a process waiting on the old file would hold a lock on
        # a name that a third process could create afresh.
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(handle)


def _refuse_if_held(path: Path) -> None:
    """Raise ValueError if another process holds the run directory `path` (a lock taken and
    let go at once, on a lock file that is there already)."""
    try:
        handle = os.open(path / LOCK_FILE, os.O_RDONLY)
    except OSError:  # no lock file, no directory: nobody holds it
        return
    try:
        _lock(handle, path)
    finally:
        os.close(handle)


def _lock(handle: int, path: Path) -> None:
    """Lock the open lock file `handle` of run directory `path`, or raise ValueError naming the
    process that holds it."""
    import fcntl  # here, not at the top: POSIX only, and only writers need it

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(handle, 32, 0).decode(errors="replace").strip() or "not yet written"
        raise ValueError(
            f"{path} is being written by another internalize process (PID {holder}); "
            "wait for it to end or choose another --out"
        ) from None


def check_new_run_directory(path: str | os.PathLike) -> None:
    """Raise ValueError unless `path` is absent or an empty directory (but for a lock file)."""
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise ValueError(f"--out {path} exists and is not a directory")
    if (path / RESULTS_FILE).exists():
        raise ValueError(
            f"{path} already holds a finished run ({RESULTS_FILE}); choose another --out"
        )
    if run_files(path):
        raise ValueError(
            f"{path} is not empty (an interrupted run?); it is left as it is: "
            "remove it or choose another --out"
        )


class RunDirectory:
    """A new run directory; refuses one that already holds anything."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        check_new_run_directory(self.path)
        self.path.mkdir(parents=True, exist_ok=True)

    def write_json(self, name: str, data: Any) -> Path:
        return write_json(self.path / name, data)

    def write_csv(self, name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
        return write_csv(self.path / name, columns, rows)

    def save_figure(self, name: str, figure) -> Path:
        return save_figure(self.path / name, figure)

    def finish(self, results: Mapping[str, Any]) -> Path:
        """Write `results.json`, which marks the run complete."""
        return self.write_json(RESULTS_FILE, results)


def record_failure(directory: Path, error: BaseException) -> str:
    """Write `error`'s traceback to `directory/error.txt` (the directory made if need be) and
    return a one-line status naming it: `failed: Type: first line (traceback in ...)`."""
    import traceback

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    where = directory / "error.txt"
    atomic_write(where, "".join(traceback.format_exception(error)).encode())
    first_line = (str(error).splitlines() or [""])[0]
    return f"failed: {type(error).__name__}: {first_line} (traceback in {where})"


def default_run_path(experiment: str) -> Path:
    return Path("runs") / f"{experiment}-{time.strftime('%Y%m%d-%H%M%S')}"


class Progress:
    """A tqdm bar of environment steps (its rate is steps per second), moved between the
    compiled calls of a phase (`compiled.UpdateLoop`): no compiled program calls back to it.
    """

    def __init__(self, total: int, enabled: bool = True) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total,
            unit="step",
            unit_scale=True,
            disable=not enabled,
            file=sys.stderr,
            dynamic_ncols=True,
            smoothing=0.1,
        )

    def phase(self, description: str) -> None:
        self.bar.set_description(description)

    def advance(self, steps: int) -> None:
        self.bar.update(steps)

    def close(self) -> None:
        self.bar.close()


class SharedProgress:
    """One experiment's view of a bar that several experiments move (`reproduce all`): `send`
    takes `(experiment, kind, value)` messages, kind `phase` or `advance`. Closing it leaves the
    bar to its owner."""

    def __init__(self, experiment: str, send) -> None:
        self.experiment, self.send = experiment, send

    def phase(self, description: str) -> None:
        self.send((self.experiment, "phase", description))

    def advance(self, steps: int) -> None:
        self.send((self.experiment, "advance", steps))

    def close(self) -> None:
        pass


def open_progress(progress: "bool | SharedProgress", total: int) -> "Progress | SharedProgress":
    """An experiment's progress: its own bar of `total` steps (shown if `progress` is True), or
    the shared view it was given."""
    if isinstance(progress, bool):
        return Progress(total, enabled=progress)
    return progress


CHECKPOINTS_FILE = "checkpoints.msgpack"


def save_checkpoints(run_dir: RunDirectory, policies: Mapping[str, Any], isrs: Mapping[str, Any]):
    """Write `checkpoints.msgpack`: the policy parameters (`policy/NAME`) and ISR parameters
    (`isr/NAME`) of a run, each with the leading run axes of the experiment (seeds, or
    conditions/tasks then seeds; the experiment's config.json says which)."""
    import jax
    import numpy as np
    from flax import serialization

    tree = jax.tree.map(np.asarray, {"policy": dict(policies), "isr": dict(isrs)})
    atomic_write(run_dir.path / CHECKPOINTS_FILE, serialization.msgpack_serialize(tree))


def load_checkpoints(run_path: str | os.PathLike) -> dict:
    """The `{"policy": {...}, "isr": {...}}` parameters saved in a run directory."""
    from flax import serialization

    path = Path(run_path) / CHECKPOINTS_FILE
    if not path.is_file():
        raise ValueError(f"{path} does not exist: the run has no saved parameters")
    try:
        tree = serialization.msgpack_restore(path.read_bytes())
    except Exception as error:  # msgpack raises several unrelated types on corrupt input
        raise ValueError(f"{path} is not a readable checkpoint file ({error})") from None
    if not isinstance(tree, dict) or set(tree) != {"policy", "isr"}:
        raise ValueError(f"{path} does not hold policy and ISR parameters")
    return tree
