import os
import shutil
from pathlib import Path

import jax
import pytest

from internalize.envs.goals import GoalsEnv


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
