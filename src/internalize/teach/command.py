"""`internalize teach`: start a teaching session, resume one, or replay one."""

import secrets
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from internalize.teach import REPLAY_FOLDER

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _print(text: str) -> None:
    print(text, flush=True)  # the URL must reach a pipe at once (tests, scripts)


def _listen(host: str, port: int):
    """The server's socket, before anything is written: a port in use is an error that
    leaves no session behind."""
    from internalize.teach.server import bind

    if host not in LOCAL_HOSTS:
        print(
            f"internalize: warning: serving on {host}, not only this machine: anyone who can "
            "reach it and has the token can label",
            file=sys.stderr,
        )
    return bind(host, port)


def _serve(directory: Path, config, token: str, resume: bool, sock, announce):
    from internalize.teach.server import serve
    from internalize.teach.session import LiveSession

    session = LiveSession(directory, config, token, resume)
    try:
        serve(session, sock, announce)
    except KeyboardInterrupt:  # how a session ends: Ctrl-C (the session saved, the log closed)
        pass
    return {
        "session_dir": str(directory),
        "labels": session.teacher.labels,
        "updates": session.teacher.updates,
        "resume": f"internalize teach --resume {directory}",
        "replay": f"internalize teach --replay {directory}",
    }


def start(
    out: str | Path | None,
    world: str,
    preset: str,
    assignments: Sequence[str],
    host: str,
    port: int,
    announce: Callable[[str], None] = _print,
) -> dict:
    """A new teaching session in the new directory `out`, served until interrupted."""
    from internalize import config as settings
    from internalize.experiments.common import (
        check_new_run_directory,
        default_run_path,
        hold_run_directory,
        versions,
        write_json,
    )
    from internalize.teach.session import SESSION_FILE, TeachConfig

    config = settings.assign(TeachConfig(world=world, preset=preset), list(assignments))
    out = Path(out or default_run_path("teach"))
    check_new_run_directory(out)
    sock = _listen(host, port)
    with hold_run_directory(out, check_new_run_directory):
        token = secrets.token_urlsafe(18)
        session = {"config": config.as_dict(), "token": token, "created": time.time()}
        write_json(out / SESSION_FILE, {**session, "versions": versions()})
        return _serve(out, config, token, False, sock, announce)


def resume(directory: str | Path, host: str, port: int, announce=_print) -> dict:
    """Go on with the session in `directory`, from its log and last checkpoint."""
    from internalize.experiments.common import hold_run_directory, read_json_object
    from internalize.teach.session import SESSION_FILE, TeachConfig

    directory = Path(directory)
    data = read_json_object(directory / SESSION_FILE)
    try:
        config, token = TeachConfig.from_dict(data["config"]), str(data["token"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{directory / SESSION_FILE} is not a teaching session's: {error}"
        ) from None
    sock = _listen(host, port)
    with hold_run_directory(directory):
        return _serve(directory, config, token, True, sock, announce)


def replay(
    directory: str | Path,
    out: str | Path | None,
    seeds: int,
    first_seed: int | None,
    progress: bool = True,
) -> dict:
    """Retrain the session's learner from its log (`teach.replay`) into a new run directory
    (default: the session's `replay/`)."""
    from internalize.experiments.common import check_new_run_directory, hold_run_directory
    from internalize.experiments.runner import run_experiment
    from internalize.teach.replay import replay_config

    config = replay_config(directory, seeds, first_seed)
    out = Path(out) if out is not None else Path(directory) / REPLAY_FOLDER
    with hold_run_directory(out, check_new_run_directory):
        results = run_experiment("teach", config, out, progress)
    return {
        "run_dir": str(out),
        "seeds": results["seeds"],
        "summary": results["summary"],
        "tests": results["tests"],
        "seconds": results["timings"]["total_s"],
    }
