"""JAX's persistent compilation cache, on by default for the commands.

A phase's programs take seconds to compile (a sixth of a whole `reproduce all` on a 2-core CPU);
kept on disk, a second run of the same settings loads them instead, and the two workers of
`reproduce all` share what either compiled. A cached program is the program compiled, so the
numbers are the same (the tests check it).

The cache lives in `INTERNALIZE_COMPILE_CACHE` (a folder, or `off`), by default
`$XDG_CACHE_HOME/internalize/jax` (`~/.cache/...`); the commands' `--compile-cache DIR|off` sets
it. Programs go into a subfolder per machine: XLA compiles for the CPU it runs on and for the
number of CPUs the process may use, and JAX's cache key records neither, so a cache shared by
machines (a home folder on a cluster) or by processes pinned to fewer CPUs (the deterministic
mode) never hands one the programs of another. A corrupt entry is skipped with JAX's warning
("Error reading persistent compilation cache entry") and its program compiled afresh; JAX does
not overwrite it, so the warning comes back until the folder is removed. The cache keeps its
most recently used `MAX_BYTES`.
"""

import hashlib
import os
import platform
import sys
import tempfile
from pathlib import Path

VARIABLE = "INTERNALIZE_COMPILE_CACHE"
"""Where the cache is (a folder), or `off`; unset: `default_folder()`."""

MAX_BYTES = 4 * 1024**3
"""The cache's size limit; the least recently used programs go first."""


def default_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "internalize" / "jax"


def machine_tag() -> str:
    """A digest of what XLA compiles for: the CPU (model and instruction-set flags), the CPUs
    this process may use, the architecture and the jax and jaxlib versions."""
    import jax
    import jaxlib

    cpu = ""
    try:
        with open("/proc/cpuinfo") as info:
            wanted = ("model name", "flags", "Features", "CPU part")
            cpu = "".join(sorted({line for line in info if line.split(":")[0].strip() in wanted}))
    except OSError:
        cpu = platform.processor()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = (cpu, str(cpus), platform.machine(), jax.__version__, jaxlib.__version__)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def resolve(setting: str | None) -> Path | None:
    """The cache folder `setting` names (`off`: None; None: the default), checked."""
    if setting is None:
        return default_folder()
    if setting.strip().lower() == "off":
        return None
    if not setting.strip():
        raise ValueError("the compile cache: expected a folder or 'off', got an empty value")
    return Path(setting).expanduser()


def configure(setting: str | None = None) -> Path | None:
    """Turn the cache on for this process and the processes it starts, in the folder `setting`
    names (`off` turns it off; None: `VARIABLE`, else the default); returns the folder JAX
    writes to (None: off). Call it before the first compile, and again after the process has
    changed the CPUs it may use (the deterministic mode does).

    A `JAX_COMPILATION_CACHE_DIR` of the user's own, with no setting here, is left as it is.
    ValueError if the folder cannot be written, naming it.
    """
    if setting is None:
        setting = os.environ.get(VARIABLE)
        if setting is None and os.environ.get("JAX_COMPILATION_CACHE_DIR"):
            return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    base = resolve(setting)
    import jax

    if base is None:
        os.environ[VARIABLE] = "off"
        os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    folder = base / machine_tag()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(
            f"the compile cache folder {folder} cannot be written ({error.strerror or error}); "
            f"give another with --compile-cache DIR (or {VARIABLE}=DIR), or turn the cache "
            "off with --compile-cache off"
        ) from None
    os.environ[VARIABLE] = str(base)  # processes started from here find it too
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(folder)
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    _reset_if_started()
    return folder


def _reset_if_started() -> None:
    """JAX opens its cache at the first compile: a cache opened before (in another folder) is
    closed, so that the next compile opens the folder set now."""
    module = sys.modules.get("jax._src.compilation_cache")
    if module is not None and hasattr(module, "reset_cache"):
        module.reset_cache()
