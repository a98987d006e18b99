"""The persistent compilation cache: on by default, the same numbers from a cached program, a
corrupt cache skipped with a warning, bad settings named."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from internalize import compile_cache

TINY = ["--seeds", "2", "--socialize-steps", "4096", "--autonomy-steps", "4096", "--quiet"]


def _retention(out: Path, cache: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "internalize.cli", "reproduce", "retention", *TINY]
    environment = {**os.environ, **(env or {})}
    return subprocess.run(
        [*command, "--out", str(out), "--compile-cache", cache],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )


def _numbers(run: Path) -> dict:
    results = json.loads((run / "results.json").read_text())
    return {key: value for key, value in results.items() if key not in ("timings", "versions")}


def _entries(cache: Path) -> set[Path]:
    return {path for path in cache.rglob("*-cache")}


def test_a_cached_run_loads_every_program_and_gives_the_same_numbers(tmp_path):
    cache = tmp_path / "cache"
    first = _retention(tmp_path / "cold", str(cache))
    assert first.returncode == 0, first.stderr
    written = _entries(cache)
    assert len(written) >= 5  # socialization, ISR and autonomy programs at least
    (folder,) = {path.parent for path in written}  # one machine, one subfolder
    assert folder.parent == cache

    second = _retention(tmp_path / "warm", str(cache))
    assert second.returncode == 0, second.stderr
    assert _entries(cache) == written  # nothing compiled anew
    assert _numbers(tmp_path / "warm") == _numbers(tmp_path / "cold")
    csv = [(tmp_path / run / "metrics.csv").read_bytes() for run in ("cold", "warm")]
    assert csv[0] == csv[1]

    # A corrupt program is compiled again, with a warning (one: compiling costs the suite time).
    corrupt = max(written, key=lambda entry: entry.stat().st_size)
    corrupt.write_bytes(b"not a compiled program")
    third = _retention(tmp_path / "corrupt", str(cache))
    assert third.returncode == 0, third.stderr
    assert "Error reading persistent compilation cache entry" in third.stderr
    assert _numbers(tmp_path / "corrupt") == _numbers(tmp_path / "cold")


COMPILE_ONE = (
    "import sys, jax, jax.numpy as jnp\n"
    "from internalize import compile_cache\n"
    "compile_cache.configure(sys.argv[1] if len(sys.argv) > 1 else None)\n"
    "jax.jit(lambda x: jnp.sin(x) * 2)(jnp.arange(3.0)).block_until_ready()\n"
)
"""A process that sets the cache as the command line does (a setting, or none) and compiles one
program."""


def test_off_writes_nothing_and_the_default_is_the_users_cache_folder(tmp_path):
    """With no setting a compiled program lands in the user's cache folder (under
    XDG_CACHE_HOME); with `off`, in no folder. (Every program is kept, however short its
    compile: `configure` sets JAX's minimum compile time to 0.)"""
    environment = {key: value for key, value in os.environ.items() if "CACHE" not in key}
    for home, setting in ((tmp_path / "default", []), (tmp_path / "off", ["off"])):
        subprocess.run(
            [sys.executable, "-c", COMPILE_ONE, *setting],
            env={**environment, "XDG_CACHE_HOME": str(home)},
            check=True,
            timeout=120,
        )
    assert _entries(tmp_path / "default" / "internalize" / "jax")
    assert not (tmp_path / "off").exists()
    assert compile_cache.resolve(None) == compile_cache.default_folder()
    assert compile_cache.resolve("OFF") is None


@pytest.mark.parametrize(
    "cache, message",
    [
        ("/proc/no-such-folder", "the compile cache folder /proc/no-such-folder/"),
        ("", "expected a folder or 'off', got an empty value"),
    ],
)
def test_a_cache_that_cannot_be_used_is_named_before_anything_runs(tmp_path, cache, message):
    run = _retention(tmp_path / "run", cache)
    assert run.returncode == 2
    assert message in run.stderr
    assert not (tmp_path / "run").exists()


def test_processes_on_fewer_cpus_keep_their_programs_apart(tmp_path):
    """The deterministic mode pins a process to one CPU: XLA compiles for the CPUs it may use,
    so its programs go to another subfolder."""
    script = (
        "import json, os\n"
        "from internalize import compile_cache, numerics\n"
        "before = compile_cache.configure()\n"
        "numerics.make_deterministic()\n"
        "print(json.dumps([str(before), os.environ['JAX_COMPILATION_CACHE_DIR']]))\n"
    )
    environment = {**os.environ, compile_cache.VARIABLE: str(tmp_path)}
    environment.pop("XLA_FLAGS", None)
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True
    )
    before, after = map(Path, json.loads(found.stdout))
    assert before.parent == after.parent == tmp_path
    if len(os.sched_getaffinity(0)) > 1:
        assert before != after
    else:
        assert before == after
