"""A person as the caregiver: `internalize teach` (`teach.session`: what a session does;
`teach.server`: the web app; `teach.replay`: retraining from a session's log;
`teach.command`: the command line's three ways in)."""

from pathlib import Path

REPLAY_FOLDER = "replay"
"""Where `teach --replay DIR` writes by default, inside the session's directory."""


def replay_directory(path: str | Path) -> Path:
    """`path` itself, or, for a teaching session's directory, its replay's run directory
    (`report` and `render` read a session through its replay); ValueError if it has none."""
    path = Path(path)
    if (path / "session.json").is_file() and not (path / "config.json").is_file():
        replay = path / REPLAY_FOLDER
        if not (replay / "config.json").is_file():
            raise ValueError(
                f"{path} is a teaching session: run `internalize teach --replay {path}` first "
                "(report and render read its replay)"
            )
        return replay
    return path
