import atexit
import os
import shutil
import tempfile
from pathlib import Path

# JAX's persistent compilation cache for this session, in a folder of its own that is removed
# when the session ends (tests and the commands they start compile the same programs many times:
# the tiny runs of each experiment). A cached program is the one compiled, so numbers are the
# same; programs with host callbacks (progress bars) are never cached by JAX. Set before JAX is
# imported: it reads these at import, and commands started by tests inherit them.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="internalize-tests-jax-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import jax  # noqa: E402
import pytest  # noqa: E402

from internalize.envs.goals import GoalsEnv  # noqa: E402


@pytest.fixture(scope="session")
def env() -> GoalsEnv:
    return GoalsEnv()


@pytest.fixture(scope="session")
def jitted(env):
    """Jitted environment functions shared across tests (compiled once per session)."""
    return {
        "reset": jax.jit(env.reset),
        "step": jax.jit(env.step),
        "observe": jax.jit(env.observe),
    }


@pytest.fixture(scope="session")
def all_run(tmp_path_factory) -> Path:
    """A finished `all` run directory (one subdirectory per experiment).

    With INTERNALIZE_SAMPLE_ALL set, a copy of that directory (links resolved, so a tree of
    symlinks to real runs works); otherwise a tiny real run of `internalize reproduce all`.
    """
    out = tmp_path_factory.mktemp("all") / "run"
    sample = os.environ.get("INTERNALIZE_SAMPLE_ALL")
    if sample:
        shutil.copytree(sample, out, ignore=shutil.ignore_patterns("report.*"))
    else:
        from internalize.cli import main

        argv = ["reproduce", "all", "--seeds", "2", "--quick", "--out", str(out), "--quiet"]
        assert main(argv) == 0
    return out
