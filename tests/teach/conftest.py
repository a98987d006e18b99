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
    output: list[str]

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
        try:
            return self.process.wait(timeout=60)
        finally:
            self.output.append(self.process.stdout.read())


def start_server(arguments: list[str], timeout: float = 120.0) -> Server:
    """`internalize teach ARGUMENTS --port 0`, once it prints its URL (and answers)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "internalize.cli", "teach", "--port", "0", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        found = re.search(r"open (http://127\.0\.0\.1:\d+/\?token=\S+)", line)
        if found:
            directory = Path(re.search(r"session in (\S+)", "".join(output)).group(1))
            server = Server(process, directory, found.group(1), output)
            while time.monotonic() < deadline:  # the app answers once its startup is done
                try:
                    server.status()
                    return server
                except (urllib.error.URLError, ConnectionError):
                    time.sleep(0.2)
            break
    process.kill()
    rest = process.communicate()[0] or ""
    raise AssertionError(f"`internalize teach` did not start:\n{''.join(output)}{rest}")


@pytest.fixture(scope="session")
def start_teach():
    """`start_teach(arguments)`: an `internalize teach` server (`start_server`)."""
    return start_server


@pytest.fixture(scope="session")
def small_settings() -> list[str]:
    """`--set` arguments of `SMALL_SETTINGS`."""
    return [item for setting in SMALL_SETTINGS for item in ("--set", setting)]


@pytest.fixture
def server(tmp_path, small_settings):
    """A new teaching session with a small learner, stopped (Ctrl-C) after the test."""
    started = start_server(["--out", str(tmp_path / "session"), *small_settings])
    yield started
    started.stop()
