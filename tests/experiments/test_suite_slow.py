"""`reproduce all` under a hard kill: its workers die with it, a second command meanwhile is
refused, and the same command afterwards resumes and finishes (a few minutes)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from internalize.experiments.common import RESULTS_FILE
from internalize.experiments.suite import EXPERIMENTS

COMMAND = [sys.executable, "-m", "internalize.cli", "reproduce", "all", "--quick", "--seeds", "1"]


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)
    return condition()


@pytest.mark.slow
def test_kill_9_of_the_parent_leaves_no_worker_and_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    command = [*COMMAND, "--out", str(run), "--quiet"]
    parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert _wait_for((run / "retention" / "config.json").exists, 180)
        workers = _children(parent.pid)
        assert len(workers) >= 2  # two workers (and multiprocessing's resource tracker)
        second = subprocess.run(command, capture_output=True, text=True)
        assert second.returncode == 2 and f"(PID {parent.pid})" in second.stderr
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait_for(lambda: not any(_alive(pid) for pid in workers), 10)
    finally:
        parent.kill()
        parent.wait()
    assert not (run / RESULTS_FILE).exists()
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert rerun.returncode == 0, rerun.stderr
    results = json.loads((run / RESULTS_FILE).read_text())
    assert set(results["status"]) == set(EXPERIMENTS)
    assert all(status.startswith("finished") for status in results["status"].values())


@pytest.mark.slow
def test_reproduce_all_on_ray_gives_the_numbers_of_a_local_run(all_run, tmp_path):
    """`reproduce all --backend ray` on a local Ray cluster: each experiment a task in the
    deterministic mode on a CPU of its own; every results.json number and metrics.csv row equals
    the local tiny `all` run's."""
    from test_numerics import _differences, _numbers

    out = tmp_path / "ray"
    command = [*COMMAND[:-1], "2", "--backend", "ray", "--out", str(out), "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / RESULTS_FILE).read_text())
    assert set(results["status"].values()) == {"finished"}
    assert results["peak_rss_gb"] is None  # measured on the workers' machines, not here
    assert _differences(_numbers(all_run), _numbers(out)) == []
