"""`internalize reproduce all`: one run directory for every experiment, shared phases, resuming,
Ctrl-C, and refusals. The whole run is the session fixture `all_run` (tests/conftest.py)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from internalize.cli import main
from internalize.experiments.common import (
    RESULTS_FILE,
    hold_run_directory,
    load_checkpoints,
    run_files,
)
from internalize.experiments.compiled import Timing
from internalize.experiments.configs import make_config
from internalize.experiments.sharing import fingerprint, once, shared_phases
from internalize.experiments.suite import (
    EXPERIMENTS,
    FAULTS_VARIABLE,
    QUICK,
    STALL_VARIABLE,
    SuiteConfig,
    run_all,
)

QUICK_SETTINGS = ["--seeds", "2", "--quick", "--quiet"]
CLI = [sys.executable, "-m", "internalize.cli"]


def read_json(path):
    return json.loads(path.read_text())


def test_every_experiment_finishes_into_its_own_directory(all_run):
    config, results = read_json(all_run / "config.json"), read_json(all_run / RESULTS_FILE)
    assert config["experiment"] == "all" and config["quick"] is True
    assert config["seed_list"] == [1234, 1235]
    assert results["status"] == {name: "finished" for name in EXPERIMENTS}
    assert results["resumed"] is False
    assert 0.1 < results["peak_rss_gb"] < 12  # all processes together; 8.4 GB measured here
    assert (all_run / "report.html").is_file()
    assert (all_run / "retention" / "render" / "retention.gif").is_file()
    assert (all_run / "prosocial" / "render" / "prosocial.gif").is_file()
    # The workers rendered every GIF while the run went on, before it wrote its results.
    gifs = list(all_run.glob("*/render/*.gif"))
    written = (all_run / RESULTS_FILE).stat().st_mtime
    assert gifs and max(gif.stat().st_mtime for gif in gifs) <= written
    for name in EXPERIMENTS:
        experiment = read_json(all_run / name / RESULTS_FILE)
        assert experiment["experiment"] == name and experiment["seeds"] == [1234, 1235]
        assert experiment["config"]["preset"] == "fast"
        assert results["timings"][name] == experiment["timings"]["total_s"]
    assert results["timings"]["wall_s"] < sum(results["timings"][n] for n in EXPERIMENTS)


def test_quick_settings_reach_each_experiment(all_run):
    hacking = read_json(all_run / "hacking" / "config.json")
    assert hacking["socialize_steps"] == QUICK["socialize_steps"]
    assert hacking["autonomy_steps"] == QUICK["autonomy_steps"]
    assert read_json(all_run / "scaling" / "config.json")["sample_counts"] == list(
        QUICK["sample_counts"]
    )
    layouts = read_json(all_run / "layouts" / "config.json")
    assert layouts["transfer_steps"] == QUICK["transfer_steps"]


def test_experiments_that_socialize_alike_share_the_phases(all_run):
    """Retention's socialization and ISR feed overoptimization, hacking and scaling, and
    overoptimization's runs hacking; ood's feed layouts."""

    def timings(name):
        return read_json(all_run / name / RESULTS_FILE)["timings"]

    assert "shared" not in timings("retention")["socialization"]
    assert timings("hacking")["socialization"]["shared"] is True
    assert timings("scaling")["socialization"]["shared"] is True
    assert timings("hacking")["isr_full"]["shared"] is True  # retention's ISR
    # Overoptimization runs first: its single ISR at 1/12 and the learners under both ISRs.
    assert timings("hacking")["isr_partial"]["shared"] is True
    assert timings("hacking")["autonomy"]["shared"] is True
    assert timings("layouts")["socialization"]["shared"] is True
    assert timings("layouts")["frozen"]["shared"] is True
    # Shared phases are the same computation: the socialization curves agree row for row.
    retention = (all_run / "retention" / "metrics.csv").read_text().splitlines()
    hacking = (all_run / "hacking" / "metrics.csv").read_text().splitlines()
    social = [row for row in retention if ",socialization,socialization," in row]
    # Hacking's own metric (looping) is one more column, empty in socialization.
    hacking = [row.removesuffix(",") for row in hacking if ",socialization,socialization," in row]
    assert social and social == hacking
    # The ISR hacking calls full is retention's ISR: identical checkpoints.
    retention_isr = load_checkpoints(all_run / "retention")["isr"]["isr"]
    hacking_isr = load_checkpoints(all_run / "hacking")["isr"]["isr_full"]
    for a, b in zip(jax.tree.leaves(retention_isr), jax.tree.leaves(hacking_isr), strict=True):
        np.testing.assert_array_equal(a, b)


def test_every_experiment_saves_its_parameters(all_run):
    seeds = 2
    for name in EXPERIMENTS:
        saved = load_checkpoints(all_run / name)
        assert "socialized" in saved["policy"] and saved["isr"], name
        for leaf in jax.tree.leaves(saved["policy"]["socialized"]):
            assert leaf.shape[0] == seeds and np.all(np.isfinite(leaf)), name
    retention = load_checkpoints(all_run / "retention")["policy"]
    for a, b in zip(
        jax.tree.leaves(retention["socialized"]),
        jax.tree.leaves(retention["autonomy"]),
        strict=True,
    ):
        assert b.shape == (3, *a.shape)
        assert not np.array_equal(b[0], a)  # autonomy went on learning


def test_a_phase_runs_once_inside_shared_phases():
    calls = []

    def compute():
        calls.append(1)
        return "value", Timing(run_s=2.0, steps=8)

    inputs = (np.arange(3), "setting")
    assert once("phase", inputs, compute, None, 8) == ("value", Timing(run_s=2.0, steps=8))
    with shared_phases():
        first = once("phase", inputs, compute, None, 8)
        again = once("phase", (np.arange(3), "setting"), compute, None, 8)
        other = once("phase", (np.arange(1, 4), "setting"), compute, None, 8)
    assert len(calls) == 3  # outside, first inside, other inputs
    assert first == ("value", Timing(run_s=2.0, steps=8))
    assert again == ("value", Timing(steps=8, shared=True))
    assert other[1].shared is False
    assert fingerprint(np.zeros(2, np.float32)) != fingerprint(np.zeros(2, np.float64))
    assert fingerprint(jax.random.key(1)) != fingerprint(jax.random.key(2))


def test_resuming_skips_what_finished_and_redoes_what_was_interrupted(all_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(all_run, run)
    (run / RESULTS_FILE).unlink()
    kept = {name: (run / name / RESULTS_FILE).stat().st_mtime_ns for name in EXPERIMENTS}
    # scaling was interrupted: its directory has no results.json, and a stray temporary file.
    (run / "scaling" / RESULTS_FILE).unlink()
    (run / "scaling" / ".metrics.csv.x.tmp").write_text("half")
    config = SuiteConfig(seeds=2, quick=True, experiments=EXPERIMENTS)
    results = run_all(config, run, progress=False)
    assert results["status"]["scaling"] == "finished"
    assert results["resumed"] is True
    assert all(results["status"][n] == "finished earlier" for n in EXPERIMENTS if n != "scaling")
    for name in EXPERIMENTS:
        if name != "scaling":
            assert (run / name / RESULTS_FILE).stat().st_mtime_ns == kept[name]
    assert not (run / "scaling" / ".metrics.csv.x.tmp").exists()
    # The rerun (alone, so without shared phases) gives the same numbers.
    assert (
        read_json(run / "scaling" / RESULTS_FILE)["summary"]
        == read_json(all_run / "scaling" / RESULTS_FILE)["summary"]
    )
    # A finished run is left as it is.
    again = run_all(config, run, progress=False)
    assert again["timings"] == read_json(run / RESULTS_FILE)["timings"]


def test_ctrl_c_stops_at_once_and_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "internalize.cli", "reproduce", "all", "--out", str(run)]
    process = subprocess.Popen(
        [*command, *QUICK_SETTINGS],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As in a terminal: a test run in the background would pass on SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / "retention" / "config.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (run / "retention" / "config.json").exists(), process.stderr.read()
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        started = time.monotonic()
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert time.monotonic() - started < 15
    assert process.returncode == 130
    assert "run the same command to resume" in stderr
    assert not (run / RESULTS_FILE).exists()
    assert not (run / "retention" / RESULTS_FILE).exists()
    assert read_json(run / "config.json")["experiment"] == "all"


@pytest.mark.parametrize("experiment", ["all", "retention"])
def test_a_second_command_on_a_held_run_directory_exits_2_naming_the_holder(tmp_path, experiment):
    run = tmp_path / "run"
    command = [*CLI, "reproduce", experiment, "--out", str(run), "--seeds", "1", "--quiet"]
    with hold_run_directory(run):
        result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == (
        f"internalize: error: {run} is being written by another internalize process "
        f"(PID {os.getpid()}); wait for it to end or choose another --out\n"
    )
    assert run_files(run) == []


def _faulty_run(
    run, faults: str, only: str | None = None, suite: str = "all", **settings: str
) -> subprocess.CompletedProcess:
    """`reproduce all` (or `suite`; `--only` these, if given) into `run` with the test hook's
    `faults` (and environment variables `settings`); exits 1."""
    chosen = [] if only is None else ["--only", only]
    result = subprocess.run(
        [*CLI, "reproduce", suite, "--out", str(run), *QUICK_SETTINGS, *chosen],
        env={**os.environ, FAULTS_VARIABLE: faults, **settings},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    return result


def _our_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("internalize:")]


def test_failed_experiments_exit_1_with_a_line_each_on_stderr(tmp_path):
    run = tmp_path / "run"
    result = _faulty_run(run, ",".join(f"{name}=fail" for name in EXPERIMENTS))
    causes = {
        name: f"RuntimeError: {FAULTS_VARIABLE} made {name} fail "
        f"(traceback in {run / name / 'error.txt'})"
        for name in EXPERIMENTS
    }
    expected = [f"internalize: {name} failed: {cause}" for name, cause in causes.items()]
    assert _our_lines(result.stderr) == expected
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout)["status"] == {n: f"failed: {c}" for n, c in causes.items()}
    assert "Traceback" in (run / "retention" / "error.txt").read_text()
    assert not (run / RESULTS_FILE).exists()


def _statuses(result: subprocess.CompletedProcess) -> dict[str, str]:
    """Each experiment's line on stderr, by name (workers run side by side: any order)."""
    lines = {}
    for line in _our_lines(result.stderr):
        name, _, status = line.removeprefix("internalize: ").partition(" ")
        lines[name] = status
    assert lines == json.loads(result.stdout)["status"]
    return lines


def test_a_worker_that_dies_fails_its_experiment_and_the_next_groups_go_to_the_other(tmp_path):
    faults = "retention=die,departure=fail,prosocial=fail,ood=fail,layouts=die"
    status = _statuses(_faulty_run(tmp_path / "run", faults))
    died = "failed: its worker process died (killed by SIGKILL)"
    assert status.pop("retention") == status.pop("layouts") == died
    # Retention's group, the costliest, went first to one worker, which died at once; every
    # group left ran in the other, until it died too.
    for name in ("departure", "prosocial", "ood"):
        assert status.pop(name).startswith("failed: RuntimeError")
    assert status == {
        name: "not run: its worker ended before it"
        for name in ("hacking", "overoptimization", "scaling")
    }


def test_a_worker_that_sends_nothing_is_stopped_with_every_threads_stack_saved(tmp_path):
    run = tmp_path / "run"
    faults = "retention=hang,departure=fail,prosocial=fail,ood=fail,layouts=fail"
    # 15 s: longer than a worker takes to start on a busy machine.
    status = _statuses(_faulty_run(run, faults, **{STALL_VARIABLE: "15"}))
    dump = run / "hang-retention.txt"
    assert status["retention"] == (
        f"failed: hung (no progress for 15 s); every thread's stack is in {dump}; run the same "
        f"command to resume (if it was only slow, raise {STALL_VARIABLE} first)"
    )
    assert (
        status["hacking"]
        == status["overoptimization"]
        == status["scaling"]
        == ("not run: its worker ended before it")
    )
    stacks = dump.read_text()
    assert "most recent call first" in stacks and "in _injected_fault" in stacks
    assert not list(run.glob(".stacks-*"))


def test_only_runs_the_experiments_it_names(tmp_path, capsys):
    run = tmp_path / "run"
    # Made to fail as they start, so that nothing is computed: the command runs these two alone.
    result = _faulty_run(run, "scaling=fail,ood=fail", only="ood,scaling")
    assert set(_statuses(result)) == {"ood", "scaling"}
    assert {path.name for path in run.iterdir() if path.is_dir()} == {"ood", "scaling"}
    assert read_json(run / "config.json")["experiments"] == ["ood", "scaling"]
    # An experiment that `reproduce all` does not run is named, and nothing is created.
    with pytest.raises(SystemExit) as exit:
        main(["reproduce", "all", "--only", "ood,teach", "--out", str(tmp_path / "other")])
    assert exit.value.code == 2
    assert "argument --only: expected experiments of this command" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_paper_runs_the_papers_experiments_alone(tmp_path, capsys):
    run = tmp_path / "run"
    paper = ["retention", "hacking", "scaling", "ood", "layouts", "prosocial"]
    # Made to fail as they start, so that nothing is computed.
    result = _faulty_run(run, ",".join(f"{name}=fail" for name in paper), suite="paper")
    assert set(_statuses(result)) == set(paper)
    assert read_json(run / "config.json")["experiments"] == paper
    assert {path.name for path in run.iterdir() if path.is_dir()} == set(paper)
    shown = json.loads(result.stdout)
    assert (shown["experiment"], list(shown["status"])) == ("paper", paper)
    # The experiments beyond the paper are `reproduce all`'s alone.
    with pytest.raises(SystemExit) as exit:
        main(["reproduce", "paper", "--only", "departure", "--out", str(tmp_path / "other")])
    assert exit.value.code == 2
    assert "'prosocial']; got 'departure'" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_a_bad_stall_setting_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(STALL_VARIABLE, "soon")
    assert main(["reproduce", "all", "--out", str(tmp_path / "run"), *QUICK_SETTINGS]) == 2
    assert capsys.readouterr().err == (
        f"internalize: error: {STALL_VARIABLE} must be a positive number of seconds, got 'soon'\n"
    )
    assert not (tmp_path / "run").exists()


def test_resuming_with_other_settings_is_refused(all_run, tmp_path, capsys):
    assert main(["reproduce", "all", "--out", str(all_run), "--seeds", "3", "--quick"]) == 2
    assert "started with other settings {'seed_list'" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["reproduce", "all", "--out", str(foreign), *QUICK_SETTINGS]) == 2
    assert "not a `reproduce all` run" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "mine"
    single = tmp_path / "single"
    single.mkdir()
    (single / "config.json").write_text('{"experiment": "retention"}')
    assert main(["reproduce", "all", "--out", str(single), *QUICK_SETTINGS]) == 2
    assert "is not a `reproduce all` run" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"experiments": ("retention", "nothing")}, "unknown experiment(s) ['nothing']"),
        ({"experiments": ()}, "unknown experiment(s) []"),
        ({"jobs": 3}, "jobs must be 1 or 2"),
        ({"seeds": 0}, "seeds must be >= 1"),
    ],
)
def test_suite_config_errors(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SuiteConfig(**changes)


def test_make_config_names_settings_an_experiment_lacks():
    with pytest.raises(ValueError, match=r"scaling has no setting\(s\) \['autonomy_steps'\]"):
        make_config("scaling", autonomy_steps=10)
    with pytest.raises(ValueError, match="unknown experiment 'nothing'"):
        make_config("nothing")
    assert make_config("ood").tasks == ("random",)
