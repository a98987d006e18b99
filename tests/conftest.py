import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
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

_background: dict = {}
"""The tiny `all` run started in the background at collection: its process, folder and log."""


@pytest.hookimpl(trylast=True)  # after `-m` and `-k` have deselected
def pytest_collection_modifyitems(config, items):
    """If a selected test reads the tiny `all` run, start it now, at low priority, in a process
    of its own, and move the modules that read it to the end: the other tests run while it
    computes (on 2 CPUs the suite's own tests leave most of one idle), and its workers yield
    the CPU to them. Each module keeps its tests together and in order."""
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
    folder = Path(tempfile.mkdtemp(prefix="internalize-tests-all-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    log = open(folder / "output.txt", "w")  # noqa: SIM115 (closed at the session's end)
    out = folder / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "internalize.cli", *ALL_RUN_ARGS, "--out", str(out)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its workers too are stopped at the end (`os.killpg`)
        preexec_fn=lambda: os.nice(10),
    )
    _background.update(process=process, out=out, log=log)


def pytest_sessionfinish(session, exitstatus):
    """Stop the background `all` run if the session ends before it has (a failure, Ctrl-C)."""
    process = _background.get("process")
    if process is not None and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    if "log" in _background:
        _background["log"].close()


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
    process, out = _background["process"], _background["out"]
    code = process.wait()
    _background["log"].flush()
    output = (out.parent / "output.txt").read_text()
    assert code == 0, f"`internalize {' '.join(ALL_RUN_ARGS)}` exited {code}:\n{output[-3000:]}"
    return out


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
