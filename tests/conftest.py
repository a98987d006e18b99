import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The persistent compilation cache (`internalize.compile_cache`) for this session, in a folder
# of its own that is removed when the session ends: tests and the commands they start compile
# the same programs many times (the tiny runs of each experiment), and nothing goes into the
# user's own cache. Set before JAX is imported; commands started by tests inherit it.
if "INTERNALIZE_COMPILE_CACHE" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="internalize-tests-jax-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["INTERNALIZE_COMPILE_CACHE"] = _cache

from internalize import compile_cache  # noqa: E402

compile_cache.configure()

import jax  # noqa: E402
import pytest  # noqa: E402

from internalize.envs.goals import GoalsEnv  # noqa: E402


@pytest.fixture(scope="session")
def env() -> GoalsEnv:
    return GoalsEnv()


@pytest.fixture(scope="session")
def small_ppo(env):
    """The fast learner with tiny rollouts (4 x 16 steps, one epoch), on 3 random blocks."""
    from internalize.learners.ppo import PPO, PRESETS

    config = PRESETS["fast"].replace(num_envs=4, num_steps=16, minibatch_size=32, num_epochs=1)
    return PPO(config, env, env.make_params(n_blocks=3))


@pytest.fixture(scope="session")
def jitted(env):
    """Jitted environment functions shared across tests (compiled once per session)."""
    return {
        "reset": jax.jit(env.reset),
        "step": jax.jit(env.step),
        "observe": jax.jit(env.observe),
    }


ALL_RUN_ARGS = ("reproduce", "all", "--seeds", "2", "--quick", "--quiet")
"""The tiny `all` run that the tests of whole runs read (`all_run`)."""

# The tiny `all` run's folder: made by the session's first process (pytest, or the controller of
# pytest-xdist's workers, which inherit the variable), removed when that process ends.
if "INTERNALIZE_TESTS_ALL_RUN" not in os.environ:
    os.environ["INTERNALIZE_TESTS_ALL_RUN"] = tempfile.mkdtemp(prefix="internalize-tests-all-")
    atexit.register(shutil.rmtree, os.environ["INTERNALIZE_TESTS_ALL_RUN"], ignore_errors=True)
    _FOLDER_OWNER = True
else:
    _FOLDER_OWNER = False
ALL_RUN = Path(os.environ["INTERNALIZE_TESTS_ALL_RUN"])
"""Holds `run` (the run), `output.txt`, `pgid` once started and `exit` (its code) once done."""

_started: list = []
"""The run's process, where this process started it."""


def _start_all_run() -> None:
    """Start the tiny `all` run, at low priority, in a process group of its own, unless a
    process of this session (an xdist worker) already has: one run serves them all."""
    try:
        (ALL_RUN / "started").open("x").close()
    except FileExistsError:
        return
    command = [sys.executable, "-m", "internalize.cli", *ALL_RUN_ARGS, "--out", f"{ALL_RUN}/run"]
    script = '"$@" > "$0/output.txt" 2>&1; echo $? > "$0/exit.tmp"; mv "$0/exit.tmp" "$0/exit"'
    process = subprocess.Popen(
        ["sh", "-c", script, str(ALL_RUN), *command],
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its workers too are stopped at the end (`os.killpg`)
        preexec_fn=lambda: os.nice(10),
    )
    (ALL_RUN / "pgid").write_text(str(process.pid))
    _started.append(process)


@pytest.hookimpl(trylast=True)  # after `-m` and `-k` have deselected
def pytest_collection_modifyitems(config, items):
    """If a selected test reads the tiny `all` run, start it now and move the modules that read
    it to the end: the other tests run while it computes (its workers yield the CPU to them).
    Each module keeps its tests together and in order. Under xdist's `loadfile` the workers
    take files largest first (its default `--loadscope-reorder`), so the readers come where
    their size puts them and wait there: measured on the 2-core Xeon (2026-12-08), keeping
    them last (`--no-loadscope-reorder`) made the suite slower, 18 min 22 s against 16 min
    34 s, four busy processes on two cores instead of the run alone while the readers wait."""
    if os.environ.get("INTERNALIZE_SAMPLE_ALL") or not items:
        return
    reading = {
        getattr(item, "module", None)
        for item in items
        if "all_run" in getattr(item, "fixturenames", ())
    }
    if not reading:
        return
    last = [item for item in items if getattr(item, "module", None) in reading]
    items[:] = [item for item in items if item not in last] + last
    _start_all_run()


def _running_group() -> int | None:
    """The run's process group while it runs."""
    if (ALL_RUN / "exit").exists() or not (ALL_RUN / "pgid").exists():
        return None
    group = int((ALL_RUN / "pgid").read_text())
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return None
    return group


def pytest_sessionfinish(session, exitstatus):
    """Stop the tiny `all` run if the session ends before it has (a failure, Ctrl-C)."""
    group = _running_group() if _FOLDER_OWNER else None
    if group is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        for process in _started:
            process.wait()


@pytest.fixture(scope="session")
def all_run(tmp_path_factory) -> Path:
    """A finished `all` run directory (one subdirectory per experiment).

    With INTERNALIZE_SAMPLE_ALL set, a copy of that directory (links resolved, so a tree of
    symlinks to real runs works); otherwise the tiny real run of `internalize reproduce all`
    started at collection (`pytest_collection_modifyitems`), awaited here.
    """
    sample = os.environ.get("INTERNALIZE_SAMPLE_ALL")
    if sample:
        out = tmp_path_factory.mktemp("all") / "run"
        shutil.copytree(sample, out, ignore=shutil.ignore_patterns("report.*"))
        return out
    _start_all_run()
    while not (ALL_RUN / "exit").exists():
        ended = any(process.poll() is not None for process in _started)  # reaps it here
        if ended or ((ALL_RUN / "pgid").exists() and _running_group() is None):
            break  # it wrote its code meanwhile, or was killed before it could
        time.sleep(1)
    exit_file = ALL_RUN / "exit"
    code = int(exit_file.read_text()) if exit_file.exists() else "no code: killed"
    output = (ALL_RUN / "output.txt").read_text()
    assert code == 0, f"`internalize {' '.join(ALL_RUN_ARGS)}` exited {code}:\n{output[-3000:]}"
    return ALL_RUN / "run"


# ------------------------------------------------------------------------- a real browser

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
INSTALL = "apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Chromium and its driver, installed with apt-get when missing (skips only if that fails)."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            done = subprocess.run(
                ["bash", "-c", INSTALL], capture_output=True, text=True, env=environment
            )
        except OSError as error:
            pytest.skip(f"could not run `{INSTALL}`: {error}")
        if done.returncode != 0 or not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
            pytest.skip(
                f"could not install Chromium from the distribution's packages (`{INSTALL}` "
                f"exited {done.returncode}; not root or no network?): {done.stderr[-400:]}"
            )
    return CHROMIUM


@pytest.fixture(scope="session")
def open_browser(chromium, tmp_path_factory):
    """`open_browser()`: a new headless Chromium (Selenium), its console log kept; the caller
    quits it."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the test extra)")
    from selenium.webdriver.chrome.service import Service

    def start():
        options = webdriver.ChromeOptions()
        options.binary_location = str(chromium)
        profile = tmp_path_factory.mktemp("chromium-profile")
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))

    return start
