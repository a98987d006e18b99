"""What every experiment shares: one writer per run directory, atomic writes."""

import os
import signal
import subprocess
import sys

import pytest

from internalize.experiments.common import (
    LOCK_FILE,
    RunDirectory,
    check_new_run_directory,
    hold_run_directory,
)

HOLD = (
    "import sys, time; from internalize.experiments.common import hold_run_directory\n"
    "with hold_run_directory(sys.argv[1]):\n"
    "    print('held', flush=True); time.sleep(600)\n"
)
"""A process that holds the run directory argv[1] until it is killed."""


def test_a_held_run_directory_refuses_a_second_writer(tmp_path):
    run = tmp_path / "run"
    with hold_run_directory(run):
        assert (run / LOCK_FILE).read_text() == f"{os.getpid()}\n"
        with pytest.raises(ValueError, match=rf"being written by .* \(PID {os.getpid()}\)"):
            with hold_run_directory(run):
                pass
    with hold_run_directory(run):  # released at the end of the block
        pass


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"held\n"
        with pytest.raises(ValueError, match=f"PID {holder.pid}"):
            with hold_run_directory(run):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with hold_run_directory(run):
        assert (run / LOCK_FILE).read_text() == f"{os.getpid()}\n"


def test_the_lock_file_does_not_make_a_directory_a_run(tmp_path):
    with hold_run_directory(tmp_path / "run") as run:
        RunDirectory(run).finish({"done": True})  # empty but for the lock: a new run
    with pytest.raises(ValueError, match="already holds a finished run"):
        RunDirectory(run)


@pytest.mark.parametrize("under", ["a_file/run", "/proc/no/run"])
def test_a_run_directory_that_cannot_be_created_is_named(tmp_path, under):
    (tmp_path / "a_file").write_text("not a directory")
    run = tmp_path / under
    with pytest.raises(ValueError, match=f"^cannot create the run directory {run}: "):
        with hold_run_directory(run):
            pass
    with pytest.raises(ValueError, match="exists and is not a directory"):
        with hold_run_directory(tmp_path / "a_file", check_new_run_directory):
            pass


def test_a_refused_directory_is_left_as_it_was(tmp_path):
    """The check runs before anything is created: no lock file in a directory refused."""
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not empty"):
        with hold_run_directory(tmp_path, check_new_run_directory):
            pass
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]
