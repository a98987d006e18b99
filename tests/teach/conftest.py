"""A real `internalize teach` server on 127.0.0.1, started by the tests in a process of its own."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

SMALL_SETTINGS = (
    "ppo.num_envs=4",
    "ppo.num_steps=16",
    "ppo.minibatch_size=32",
    "ppo.num_epochs=1",
    "capacity=256",
    "isr_steps=10",
    "updates_per_block=1",
    "updates_per_label=1",
    "updates_alone=4",
    "checkpoint_updates=4",
)
"""A learner small enough to compile in seconds: the tests of the protocol, not of learning."""


@dataclass
class Server:
    process: subprocess.Popen
    directory: Path
    url: str
    log: Path
    """The server's output (a file: a pipe nobody reads would fill and block the server)."""

    @property
    def token(self) -> str:
        return self.url.split("token=")[1]

    @property
    def base(self) -> str:
        return self.url.split("/?")[0]

    @property
    def ws(self) -> str:
        return self.base.replace("http://", "ws://") + f"/ws?token={self.token}"

    def status(self) -> dict:
        with urllib.request.urlopen(f"{self.base}/status?token={self.token}", timeout=10) as page:
            return json.loads(page.read())

    def stop(self, sig=signal.SIGINT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=60)


def start_server(arguments: list[str], log: Path, timeout: float = 120.0) -> Server:
    """`internalize teach ARGUMENTS --port 0`, its output into `log`, once it prints its URL
    and answers."""
    with open(log, "a") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "internalize.cli", "teach", "--port", "0", *arguments],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        text = log.read_text()
        found = re.search(r"session in (\S+)\nopen (http://127\.0\.0\.1:\d+/\?token=\S+)", text)
        if found:
            server = Server(process, Path(found.group(1)), found.group(2), log)
            try:
                server.status()
                return server
            except (urllib.error.URLError, ConnectionError):
                pass  # the app answers once its startup is done
        time.sleep(0.2)
    process.kill()
    process.wait()
    raise AssertionError(f"`internalize teach` did not start:\n{log.read_text()}")


@pytest.fixture
def start_teach(tmp_path):
    """`start_teach(arguments)`: an `internalize teach` server (`start_server`), its output
    in the test's folder."""
    started = []

    def start(arguments: list[str]) -> Server:
        started.append(start_server(arguments, tmp_path / f"server-{len(started) + 1}.txt"))
        return started[-1]

    return start


@pytest.fixture(scope="session")
def small_settings() -> list[str]:
    """`--set` arguments of `SMALL_SETTINGS`."""
    return [item for setting in SMALL_SETTINGS for item in ("--set", setting)]


@pytest.fixture(scope="module")
def server(tmp_path_factory, small_settings):
    """A teaching session with a small learner, shared by a module's tests (each leaves it
    present and running), stopped (Ctrl-C) after them."""
    folder = tmp_path_factory.mktemp("teach-server")
    started = start_server(["--out", str(folder / "session"), *small_settings], folder / "out.txt")
    yield started
    started.stop()
