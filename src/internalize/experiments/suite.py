"""Every experiment of the paper by name, and `reproduce all`: all of them into one run directory.

An `all` run directory holds `config.json` (its settings, written first), one subdirectory per
experiment (each an ordinary run directory of that experiment) and, once every experiment has
finished, `results.json` with each experiment's status and time, the wall time and the peak
memory. GIFs of each finished experiment's policies are rendered into its `render/` folder
(`internalize.render`) by a worker that has no experiments left, while the other computes (and
at the end by the command, for any still without); `report.html` (`internalize.report`) is
rewritten at the end of every invocation.
Running it again on the same directory resumes: finished experiments (those whose
`results.json` exists) are skipped, an interrupted one is removed and run again.

Experiments run in worker processes, so that Ctrl-C stops them at once, even inside a long
compiled call. Experiments of one group (`registry.Experiment.group`) run one after another in
one worker, where phases with identical inputs are computed once (`sharing.shared_phases`):
retention, hacking and scaling socialize alike (and retention's ISR is hacking's `isr_full`),
and so do ood and layouts (with their ISR and `frozen` learner). Groups are handed out, the
costliest first (`registry.Experiment.cost`), to whichever of the `jobs` workers is free, so that
the workers end about together. Each worker runs on one CPU (see `_cpu_shares`), so the numbers
do not depend on the machine nor on which worker ran what. One progress bar follows all of
them. Workers die with the parent, however it dies (`_die_with_parent`). An experiment that
raises is failed with its traceback in its directory's `error.txt`, and the next one runs; a
worker that dies fails the experiment it was in, those after it in its group are not run, and
the groups not yet handed out go to the workers left.
A worker that sends nothing (no step, no phase) for `STALL_TIMEOUT_S` (the setting
`INTERNALIZE_STALL_TIMEOUT_S`) is taken as hung: it writes every thread's stack into
`hang-NAME.txt` in the run directory, is killed, and fails its experiment.
"""

import ctypes
import dataclasses
import faulthandler
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from internalize.experiments.common import (
    RESULTS_FILE,
    ExperimentConfig,
    Progress,
    RunDirectory,
    SharedProgress,
    atomic_write,
    hold_run_directory,
    read_json_object,
    record_failure,
    run_files,
    versions,
    write_json,
)
from internalize.experiments.configs import make_config, setting_names
from internalize.experiments.registry import REGISTRY
from internalize.experiments.runner import planned_steps, run_experiment
from internalize.numerics import accelerator, make_deterministic

EXPERIMENTS = tuple(name for name, record in REGISTRY.items() if record.in_all)
"""The experiments of `reproduce all`, in registry order (it runs them in `groups_of` order)."""
PAPER = tuple(name for name in EXPERIMENTS if REGISTRY[name].paper)
"""The experiments of `reproduce paper`: the paper's own (SPEC §5), without those beyond it."""


def groups_of(names: list[str]) -> list[list[str]]:
    """`names` in their groups (`registry.Experiment.group`), each in registry order, the group
    of largest total cost first (ties: the one that comes first in the registry)."""
    groups: dict[str, list[str]] = {}
    for name in sorted(names, key=list(REGISTRY).index):  # overoptimization before hacking
        groups.setdefault(REGISTRY[name].group, []).append(name)
    return sorted(groups.values(), key=lambda group: -sum(REGISTRY[n].cost for n in group))


QUICK = {
    "socialize_steps": 40_960,
    "autonomy_steps": 8192,
    "frozen_steps": 2048,
    "transfer_steps": 2048,
    "sample_counts": (4096, 12_288, 40_960),
    "data_fractions": (1 / 12, 1 / 3, 1.0),
    "members": 3,
    "length_shares": (1 / 4, 1.0),
    "effort_shares": (1 / 4,),
    "fade_shares": (1 / 4, 1 / 2),
    "ready_goals": (1.0, 2.75),
}
"""`quick` settings: a few rollouts per phase, to check the whole pipeline in minutes (and, in
overoptimization, 3 data shares and ensembles of 3; in departure, 2 lengths, one effort (whose
longer fade is left out) and 2 readiness thresholds)."""


OWN_OPTIONS = ("preset", "profile", "seeds", "first_seed")
"""Settings that `reproduce paper|all` takes as options of their own, for every experiment."""


@dataclass(frozen=True)
class SuiteConfig(ExperimentConfig):
    """Settings of `reproduce all`."""

    experiments: tuple[str, ...] = EXPERIMENTS
    """Which experiments to run (each with its own default settings)."""
    quick: bool = False
    """A few rollouts per phase instead of the experiments' step counts (a smoke test)."""
    jobs: int = 2
    """Worker processes, each on a CPU of its own: 2 runs two groups of experiments at a time,
    1 one after another."""
    settings: tuple[str, ...] = ()
    """`KEY=VALUE` settings (`--set`, `--config`) laid over each experiment's, after --quick's:
    `NAME.KEY` sets experiment NAME's alone, `KEY` every experiment of the run that has it
    (the later of two on one key wins)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [name for name in self.experiments if name not in EXPERIMENTS]
        if unknown or not self.experiments:
            raise ValueError(f"unknown experiment(s) {unknown}; known: {list(EXPERIMENTS)}")
        if self.jobs not in (1, 2):
            raise ValueError(f"jobs must be 1 or 2, got {self.jobs}")
        used = set()
        for name in self.experiments:  # each experiment's settings, checked before anything runs
            mine = self.settings_of(name)
            self.experiment_config(name)
            used.update(index for index, _ in mine)
        unused = [self.settings[i] for i in range(len(self.settings)) if i not in used]
        if unused:
            raise ValueError(
                f"--set {unused[0]}: no experiment of this run ({', '.join(self.experiments)}) "
                "has that setting"
            )

    def settings_of(self, name: str) -> list[tuple[int, str]]:
        """(index in `settings`, `KEY=VALUE` for experiment `name`) of the settings that apply
        to it."""
        found = []
        for index, text in enumerate(self.settings):
            key, _, value = text.partition("=")
            first, _, rest = key.strip().partition(".")
            if first in OWN_OPTIONS:
                raise ValueError(f"--set {text}: give --{first.replace('_', '-')} instead")
            if first in REGISTRY:  # NAME.KEY
                if first not in self.experiments:
                    raise ValueError(f"--set {text}: {first} is not an experiment of this run")
                if first == name:
                    found.append((index, f"{rest}={value}"))
            elif first in setting_names(name):
                found.append((index, text))
        return found

    def experiment_config(self, name: str) -> ExperimentConfig:
        from internalize import config as settings_module

        settings = {"preset": self.preset, "seeds": self.seeds, "first_seed": self.first_seed}
        settings["profile"] = self.profile
        if self.quick:
            known = setting_names(name)
            settings.update({key: value for key, value in QUICK.items() if key in known})
        texts = [text for _, text in self.settings_of(name)]
        try:
            return settings_module.assign(make_config(name, **settings), texts)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None

    def resolved(self) -> dict:
        return {"experiment": "all", **dataclasses.asdict(self), "seed_list": self.seed_list}


def _check_suite_directory(path: Path, config: SuiteConfig) -> bool:
    """Whether `path` holds an `all` run started with the settings of `config` (False: it is
    absent or empty, a new run); ValueError if it holds anything else. Changes nothing."""
    config_path = path / "config.json"
    as_saved = json.loads(json.dumps(config.resolved()))  # tuples become lists, as in the file
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path} exists and is not a directory")
    if not path.is_dir() or not run_files(path):
        return False
    if not config_path.is_file():
        raise ValueError(
            f"{path} is not empty and holds no config.json: not a `reproduce all` run; "
            "choose another --out"
        )
    saved = read_json_object(config_path)
    if saved.get("experiment") != "all":
        raise ValueError(f"{path} is not a `reproduce all` run (see its config.json)")
    # `jobs` changes how, not what, is run: a run may resume with another.
    saved.setdefault("settings", [])  # a run from before `reproduce all --set`
    differ = sorted(
        key
        for key in set(saved) | set(as_saved)
        if key != "jobs" and saved.get(key) != as_saved.get(key)
    )
    if differ:
        found = {key: saved.get(key) for key in differ}
        raise ValueError(
            f"{path} was started with other settings {found}; resume it with those or "
            "choose another --out"
        )
    return True


def _open_suite_directory(path: Path, config: SuiteConfig) -> dict | None:
    """Start the run directory, or check that an existing one was started with the same
    settings. Returns its results if it is already complete."""
    if not _check_suite_directory(path, config):
        RunDirectory(path).write_json("config.json", config.resolved())
        return None
    if (path / RESULTS_FILE).is_file():
        return read_json_object(path / RESULTS_FILE)
    return None


PR_SET_PDEATHSIG = 1
"""Linux prctl option: the signal a process gets when its parent dies (<sys/prctl.h>)."""


def _die_with_parent(parent: int) -> None:
    """End this process when its parent, process `parent`, ends, however it ends (kill -9
    included), so that no worker goes on writing into a run directory that nobody holds.

    Linux sends SIGKILL at the parent's death (prctl PR_SET_PDEATHSIG; the parent starts its
    workers from its main thread, whose end is what the kernel watches); elsewhere a thread
    checks the parent once a second. A parent that died before this call is caught by the
    check that follows it."""
    try:
        armed = ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    except (AttributeError, OSError):  # no prctl: not Linux
        armed = False
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGKILL)


FAULTS_VARIABLE = "INTERNALIZE_TEST_FAULTS"
"""A test hook, read by the workers: `NAME=fail` makes experiment NAME raise as it starts,
`NAME=die` kills its worker then (SIGKILL), `NAME=hang` makes it wait for ever, sending
nothing; several are comma-separated. Only for tests of how failures are handled."""
STALL_VARIABLE = "INTERNALIZE_STALL_TIMEOUT_S"
"""Seconds a worker may send no message (no step, no phase) before it is taken as hung;
default `STALL_TIMEOUT_S`."""
STALL_TIMEOUT_S = 30 * 60.0
"""Generous: the longest silent stretch of a run, one ISR training, takes minutes."""


def _stall_timeout() -> float:
    """The setting `STALL_VARIABLE`, or its default; ValueError naming a bad value."""
    text = os.environ.get(STALL_VARIABLE, "")
    try:
        seconds = float(text) if text else STALL_TIMEOUT_S
    except ValueError:
        seconds = math.nan
    if not seconds > 0:
        raise ValueError(f"{STALL_VARIABLE} must be a positive number of seconds, got {text!r}")
    return seconds


def _injected_fault(name: str) -> None:
    """Fail or die as the test hook `FAULTS_VARIABLE` asks experiment `name` to."""
    text = os.environ.get(FAULTS_VARIABLE, "")
    fault = dict(item.split("=", 1) for item in text.split(",") if "=" in item).get(name)
    if fault == "fail":
        raise RuntimeError(f"{FAULTS_VARIABLE} made {name} fail")
    if fault == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    while fault == "hang":
        time.sleep(60.0)


def _saved_traceback(directory: Path) -> str:
    """Write the traceback being handled to `directory/error.txt`; returns where it is, as a
    note for a one-line message (or prints it, if it cannot be written)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write(directory / "error.txt", traceback.format_exc().encode())
    except (OSError, ValueError):
        traceback.print_exc()
        return ""
    return f" (traceback in {directory / 'error.txt'})"


def _worker(
    index: int, config: SuiteConfig, root: str, messages, inbox, cpu, parent: int, stacks: str
) -> None:
    """Worker `index`: run the groups of experiments the parent hands out through `inbox` (a
    queue; None: no more) one after another, reporting to `messages` (the sending end of a pipe
    of `(index, experiment, kind, value)`), in the deterministic mode on CPU `cpu` (None: the
    first this process may use); end with the parent process `parent`; on SIGUSR1 write every
    thread's stack to the file `stacks`.

    Each message is in the pipe when `send` returns (a `multiprocessing.Queue` hands it to a
    thread that writes it later, and loses it if the process is killed first): a worker killed
    right after an experiment ended has still told its parent how it ended."""
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops its workers
    # Written from C by the signal handler, so even a thread stuck in a compiled call shows.
    stacks_file = open(stacks, "w")  # open for the life of the process
    faulthandler.register(signal.SIGUSR1, file=stacks_file, all_threads=True)
    if accelerator() is not None:  # the workers share one device: not 75% each (JAX's default)
        os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 / config.jobs:.2f}")
    make_deterministic(cpu)  # before JAX starts its backend
    from internalize.experiments.sharing import shared_phases

    lock = threading.Lock()  # progress may be reported from XLA's callback threads

    def send(message: tuple) -> None:
        with lock:
            messages.send((index, *message))

    send((None, "ready", None))
    while (task := inbox.get()) is not None:
        kind, names = task
        if kind == "render":
            _render(Path(root), names, send)
            send((None, "ready", None))
            continue
        with shared_phases():
            for name in names:
                send((name, "start", None))
                try:
                    _injected_fault(name)
                    progress = SharedProgress(name, send)
                    run_experiment(
                        name, config.experiment_config(name), Path(root) / name, progress
                    )
                except Exception as error:  # reported by the parent; the next experiment runs
                    cause = f"{type(error).__name__}: {error}{_saved_traceback(Path(root) / name)}"
                    send((name, "failed", cause))
                else:
                    send((name, "done", None))
        send((None, "ready", None))
    send((None, "exit", None))


def _render(root: Path, names: list[str], send) -> None:
    """Render the GIFs of the finished experiments `names` into their `render/` folders (a
    worker with no experiments left does, while the other computes); one that cannot be
    rendered is left to the parent, which renders what has no GIFs when the run ends."""
    from internalize.render import render_run

    for name in names:
        send((name, "phase", "rendering"))
        try:
            render_run(root / name)
        except ValueError:
            pass
        send((name, "rendered", None))


@dataclass
class _Worker:
    """A worker process, the experiments it runs, and what its parent has heard from it."""

    process: Any
    """Its `multiprocessing` process."""
    inbox: Any
    """The queue through which it is handed groups of experiments."""
    messages: Any
    """The receiving end of the pipe through which it reports; end of file once it ended."""
    stacks: Path
    """Where it writes every thread's stack on SIGUSR1."""
    names: list[str] = dataclasses.field(default_factory=list)
    """The experiments handed to it so far, in order."""
    heard: float = 0.0
    """When (`time.monotonic()`) it last sent a message."""
    running: str | None = None
    """The experiment it runs now, if any."""
    exited: bool = False
    """Whether it has ended (said so, or was found dead)."""


class _Supervisor:
    """Follows the workers' `(worker, experiment, kind, value)` messages until every worker has
    ended: hands the next of `groups` to a worker that is ready, moves the bar, records each
    experiment's status, notices a worker that died or that sent nothing for `timeout` seconds
    (hung: it is stopped), and samples the peak memory of all the processes (every 0.5 s, not
    at every one of many messages)."""

    def __init__(
        self,
        workers: list[_Worker],
        groups: list[list[str]],
        bar: Progress,
        show: bool,
        timeout: float,
    ) -> None:
        self.workers, self.groups = workers, list(groups)
        self.bar, self.show, self.timeout = bar, show, timeout
        self.status: dict[str, str] = {}
        self.phases: dict[str, str] = {}
        self.rendered: set[str] = set()
        self.peak, self.checked = 0, 0.0

    def run(self) -> None:
        while not all(worker.exited for worker in self.workers):
            pipes = [worker.messages for worker in self.workers if not worker.exited]
            for pipe in multiprocessing.connection.wait(pipes, timeout=0.5):
                self._receive(next(w for w in self.workers if w.messages is pipe))
            if time.monotonic() - self.checked >= 0.5:
                self._check()

    def _receive(self, worker: _Worker) -> None:
        """Handle the next message of `worker`; at the end of its pipe (every message it sent
        has been read), it ended: if it did not say so, it died."""
        try:
            self._handle(*worker.messages.recv())
        except EOFError:
            if not worker.exited:
                worker.process.join()
                self._died(worker)

    def _handle(self, index: int, name: str | None, kind: str, value: Any) -> None:
        worker = self.workers[index]
        worker.heard = time.monotonic()
        if kind == "ready":
            worker.inbox.put(self._next_task(worker))
        elif kind == "advance":
            self.bar.advance(value)
        elif kind in ("start", "phase"):
            worker.running, self.phases[name] = name, value or "starting"
            self.bar.phase(" | ".join(f"{n}: {phase}" for n, phase in self.phases.items()))
        elif kind in ("done", "failed"):
            self._finish(worker, "finished" if kind == "done" else f"failed: {value}")
        elif kind == "rendered":
            self.phases.pop(name, None)
        elif kind == "exit":
            worker.exited = True

    def _next_task(self, worker: _Worker) -> tuple[str, list[str]] | None:
        """What a ready worker does next: the next group of experiments; once none is left,
        the GIFs of finished experiments that nobody renders yet; then nothing (it ends)."""
        if self.groups:
            group = self.groups.pop(0)
            worker.names.extend(group)
            return "run", group
        names = [
            name
            for name, status in self.status.items()
            if status == "finished" and REGISTRY[name].renders and name not in self.rendered
        ]
        self.rendered.update(names)
        return ("render", names) if names else None

    def _finish(self, worker: _Worker, status: str) -> None:
        """Record the status of the experiment `worker` runs."""
        name, worker.running = worker.running, None
        self.phases.pop(name, None)
        self.status[name] = status
        if self.show:
            self.bar.bar.write(f"{name}: {status}", file=sys.stderr)

    def _check(self) -> None:
        self.checked = time.monotonic()
        alive = [worker.process.pid for worker in self.workers if worker.process.is_alive()]
        self.peak = max(self.peak, _rss_bytes([os.getpid(), *alive]))
        for worker in self.workers:
            if not worker.exited and self.checked - worker.heard > self.timeout:
                self._stop_hung(worker)

    def _died(self, worker: _Worker) -> None:
        code = worker.process.exitcode
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        self._end(worker, f"failed: its worker process died ({how})")

    def _stop_hung(self, worker: _Worker) -> None:
        """Have the worker write every thread's stack, then kill it."""
        os.kill(worker.process.pid, signal.SIGUSR1)
        _wait_for_content(worker.stacks, seconds=5.0)
        worker.process.kill()
        worker.process.join()
        name = self._current(worker) or (worker.names or ["worker"])[-1]
        dump = worker.stacks.with_name(f"hang-{name}.txt")
        os.replace(worker.stacks, dump)
        self._end(
            worker,
            f"failed: hung (no progress for {self.timeout:g} s); every thread's stack is in "
            f"{dump}; run the same command to resume (if it was only slow, raise "
            f"{STALL_VARIABLE} first)",
        )

    def _current(self, worker: _Worker) -> str | None:
        """The experiment `worker` is in: it runs them in order, so the first without a status
        (its `start` may not have reached us: a killed process sends nothing more)."""
        return next((name for name in worker.names if name not in self.status), None)

    def _end(self, worker: _Worker, status: str) -> None:
        """`worker` has ended without saying so: the experiment it was in gets `status`."""
        worker.running = self._current(worker)
        if worker.running is not None:
            self._finish(worker, status)
        worker.exited = True


def _wait_for_content(path: Path, seconds: float) -> None:
    """Wait up to `seconds` for the file `path` to have content, and a moment more for the rest
    of it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (path.is_file() and path.stat().st_size):
        time.sleep(0.1)
    time.sleep(0.5)


def _run_workers(
    config: SuiteConfig, path: Path, groups: list[list[str]], bar: Progress, show: bool
) -> _Supervisor:
    """Run the groups of experiments in `config.jobs` worker processes (fewer if there are
    fewer groups), each taking the next group when it is free; returns their supervisor once
    all have ended. Ctrl-C and SIGTERM stop the workers and raise; a worker silent for
    `_stall_timeout()` seconds is stopped as hung."""
    context = multiprocessing.get_context("spawn")
    workers, senders = [], []
    for index, cpu in enumerate(_cpu_shares(min(config.jobs, len(groups)))):
        stacks = path / f".stacks-{index}.txt"
        stacks.touch()  # there to be renamed even if the worker hangs before it opens it
        inbox = context.Queue()
        messages, sender = context.Pipe(duplex=False)
        arguments = (index, config, str(path), sender, inbox, cpu, os.getpid(), str(stacks))
        process = context.Process(target=_worker, args=arguments, daemon=True)
        workers.append(_Worker(process, inbox, messages, stacks))
        senders.append(sender)
    supervisor = _Supervisor(workers, groups, bar, show, _stall_timeout())
    # SIGTERM ends this process like Ctrl-C, so that its workers are stopped too.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for worker, sender in zip(workers, senders, strict=True):
            worker.process.start()
            sender.close()  # the worker holds the only sending end: its pipe ends when it does
            worker.heard = time.monotonic()
        supervisor.run()
    except BaseException:
        for worker in workers:
            worker.process.terminate()
        raise
    finally:
        for worker in workers:
            worker.process.join()
            worker.messages.close()
            worker.stacks.unlink(missing_ok=True)
        signal.signal(signal.SIGTERM, previous)
    return supervisor


def _cpu_shares(workers: int) -> list[int | None]:
    """One CPU for each worker (None where the platform cannot pin processes).

    XLA splits the ISR's training across the threads a process may use, and sums in another
    order with another count, so a run's numbers depend on how many CPUs it had
    (`internalize.numerics`). On one CPU each, workers give the same numbers on machines with
    any number of CPUs, resumed or not, with one job or two; side by side they also ran about 30%
    faster than two processes sharing both cores.
    """
    if not hasattr(os, "sched_getaffinity"):
        return [None] * workers
    available = sorted(os.sched_getaffinity(0))
    return [available[i % len(available)] for i in range(workers)]


def _rss_bytes(pids: list[int]) -> int:
    """Resident memory of the processes `pids` (Linux /proc; 0 where unreadable)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def run_all(
    config: SuiteConfig,
    out: str | os.PathLike,
    progress: bool = True,
    backend: str = "local",
    address: str | None = None,
) -> dict:
    """Run every experiment of `config` into `out` (new, or an earlier `all` run to resume);
    returns what the top-level `results.json` holds. Ctrl-C stops the workers and raises
    KeyboardInterrupt; what finished is kept. The run directory is held for this process
    alone throughout (`hold_run_directory`): ValueError if another process holds it.

    `backend` `ray` runs each experiment as a task on the Ray cluster at `address` (None: a
    local one), in the deterministic mode on a CPU of its own, instead of in worker processes
    here (`internalize.backends.ray`); phases are then not shared between experiments."""
    _stall_timeout()  # a bad setting is named before the run directory is touched
    if backend not in ("local", "ray"):
        raise ValueError(f"unknown backend {backend!r}; known: ['local', 'ray']")
    with hold_run_directory(out, lambda path: _check_suite_directory(path, config)) as path:
        return _run_all(config, path, progress, backend, address)


def _on_ray(config: SuiteConfig, path: Path, pending: list[str], bar: Progress, address):
    """Run the `pending` experiments as Ray tasks; their status, by name."""
    from internalize.backends import ray as ray_backend

    status = {}

    def done(out: Path, error: BaseException | None) -> None:
        bar.advance(planned_steps(out.name, config.experiment_config(out.name)))
        if error is None:
            status[out.name] = "finished"
        else:
            status[out.name] = record_failure(out, error)

    bar.phase(f"{len(pending)} experiments on Ray")
    runs = [(name, config.experiment_config(name), path / name) for name in pending]
    ray_backend.run_all(runs, address, done, deterministic=True)
    return status


def _run_all(config: SuiteConfig, path: Path, progress: bool, backend: str, address) -> dict:
    started = time.perf_counter()
    finished = _open_suite_directory(path, config)
    if finished is not None:
        return {**finished, "report": _pictures_and_report(path, render=True)}
    for name in config.experiments:
        experiment_dir = path / name
        if experiment_dir.exists() and not (experiment_dir / RESULTS_FILE).is_file():
            shutil.rmtree(experiment_dir)  # interrupted: run it again
    pending = [name for name in config.experiments if not (path / name).exists()]
    before = [name for name in config.experiments if name not in pending]
    groups = groups_of(pending)

    total = sum(planned_steps(name, config.experiment_config(name)) for name in pending)
    bar = Progress(total, enabled=progress)
    peak = None
    try:
        if backend == "ray":
            run_status = _on_ray(config, path, pending, bar, address)
        else:
            supervisor = _run_workers(config, path, groups, bar, show=progress)
            run_status, peak = supervisor.status, supervisor.peak / 1e9
    finally:
        bar.close()
    status = {name: "finished earlier" for name in before} | run_status
    results = {
        "experiment": "all",
        "preset": config.preset,
        "seeds": config.seed_list,
        "status": {
            name: status.get(name, "not run: its worker ended before it")
            for name in config.experiments
        },
        "timings": {"wall_s": time.perf_counter() - started},
        "peak_rss_gb": peak,
        "config": config.resolved(),
        "versions": versions(),
    }
    for name in config.experiments:
        experiment_results = path / name / RESULTS_FILE
        if experiment_results.is_file():
            results["timings"][name] = read_json_object(experiment_results)["timings"]["total_s"]
    complete = all(status.get(name, "").startswith("finished") for name in config.experiments)
    if complete:
        results["resumed"] = bool(before)
        write_json(path / RESULTS_FILE, results)
    results["report"] = _pictures_and_report(path, render=complete)
    return results


def _pictures_and_report(path: Path, render: bool) -> str:
    """Write `report.html` (returning its path), after rendering the policies' GIFs into the
    `render/` folder of each finished experiment that has none yet (if `render`: the workers
    render most of them while the run goes on)."""
    from internalize.render import RENDER_FOLDER, render_run
    from internalize.report import write_report

    names = read_json_object(path / "config.json").get("experiments", EXPERIMENTS)
    for name in names if render else ():
        directory = path / name
        if not REGISTRY[name].renders or any(directory.glob(f"{RENDER_FOLDER}/*.gif")):
            continue
        try:
            render_run(directory)
        except ValueError as error:  # the results stand without pictures
            print(f"internalize: no GIFs rendered for {name}: {error}", file=sys.stderr)
    return str(write_report(path))
