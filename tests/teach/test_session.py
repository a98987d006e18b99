"""A teaching session's core: credit and targets by hand, the log, refusals, and a learner that
its log reproduces (replay and resume, bit for bit on this machine)."""

import json
import secrets
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

from internalize import config as settings
from internalize.experiments.common import write_json
from internalize.learners.ppo import PRESETS
from internalize.teach.session import (
    CHECKPOINT_FOLDER,
    LOG_FILE,
    SESSION_FILE,
    LiveSession,
    Log,
    Refused,
    TeachConfig,
    Teacher,
    class_weights,
    encode_obs,
    read_log,
    replay_log,
    restore,
)
from internalize.teach.worlds import map_key

SMALL = TeachConfig(
    ppo=PRESETS["fast"].replace(num_envs=4, num_steps=16, minibatch_size=32, num_epochs=1),
    capacity=64,
    isr_steps=10,
    updates_per_block=1,
    updates_per_label=1,
    updates_alone=6,
    checkpoint_updates=4,
    stale_steps=10,
)


def shown(step: int, present: bool = True, action: int = 2) -> dict:
    obs = np.full((9, 9, 4), step % 256, np.uint8)
    record = {"kind": "shown", "step": step, "present": present, "action": action, "time": 0.0}
    return {**record, "obs": encode_obs(obs), "event": False}


def label(step: int, value: int, credited: list[int], label_id: str | None = None) -> dict:
    return {
        "kind": "label",
        "id": label_id or f"label-{step}-{value}",
        "step": step,
        "value": value,
        "time": 0.0,
        "credited": credited,
    }


@pytest.fixture(scope="module")
def teacher() -> Teacher:
    return Teacher(SMALL.replace(capacity=4))


def test_credit_and_targets_by_hand(teacher):
    t = Teacher(teacher.config, teacher.programs)
    for step in (1, 2, 3):
        t.apply(shown(step))
    t.apply(shown(4, present=False))  # the person was away: not data
    t.apply(shown(5))
    b = t.buffers
    assert b.written == 4 and b.slot_of == {1: 0, 2: 1, 3: 2, 5: 3}
    assert t.credited(3) == [2, 3]  # credit_steps 2: the step on screen and the one before
    assert t.credited(5) == [5]  # step 4 was not watched
    t.apply(label(3, 1, t.credited(3)))
    np.testing.assert_array_equal(b.target, np.float32([0.0, 0.4, 0.4, 0.0]))
    t.apply(label(3, -1, [3], "correction"))  # a later label of a transition replaces it
    np.testing.assert_array_equal(b.target, np.float32([0.0, 0.4, -0.4, 0.0]))
    assert (t.labels, t.approvals) == (2, 1)
    assert (b.obs[2] == 3).all() and b.action[3] == 2
    t.apply(shown(6))  # capacity 4: step 6 overwrites step 1's slot
    assert b.slot_of[6] == 4 and b.target[0] == 0.0 and (b.obs[0] == 6).all()
    assert t.credited(2) == [2]  # step 1 is gone from the data


def test_records_out_of_order_are_errors(teacher):
    t = Teacher(teacher.config, teacher.programs)
    t.apply(shown(1))
    with pytest.raises(ValueError, match="shown step 3 out of order"):
        t.apply(shown(3))
    with pytest.raises(ValueError, match="refit 2 out of order"):
        t.apply({"kind": "refit", "version": 2}, compute=False)
    with pytest.raises(ValueError, match="ISR 1 .* the log is inconsistent"):
        t.apply({"kind": "updates", "version": 1}, compute=False)
    with pytest.raises(ValueError, match="unknown log record kind 'surprise'"):
        t.apply({"kind": "surprise"})


def test_class_weights_by_hand():
    target = np.float32([0.4, 0.0, 0.0, -0.4, 0.0, 0.4])
    mask = np.array([True, True, True, True, True, False])
    weights = np.asarray(class_weights(target, mask))
    # Three kinds present: approved (1 in the mask), disapproved (1), silent (3).
    np.testing.assert_allclose(weights, [1 / 3, 1 / 9, 1 / 9, 1 / 3, 1 / 9, 0.0], rtol=1e-6)
    weights = np.asarray(class_weights(np.abs(target), mask))  # no disapproval: two kinds
    np.testing.assert_allclose(weights, [1 / 4, 1 / 6, 1 / 6, 1 / 4, 1 / 6, 0.0], rtol=1e-6)
    assert np.isclose(weights.sum(), 1.0)


def test_log_keeps_records_and_drops_a_line_cut_short(tmp_path):
    log = Log(tmp_path / LOG_FILE)
    log.append({"kind": "start"})
    log.append(label(1, 1, [1]), sync=True)
    log.close()
    with open(tmp_path / LOG_FILE, "a") as file:
        file.write('{"kind": "shown", "st')  # the server killed while writing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = read_log(tmp_path / LOG_FILE)
    assert [r["kind"] for r in records] == ["start", "label"]
    assert any("cut short" in str(w.message) for w in caught)
    lines = (tmp_path / LOG_FILE).read_text().split("\n")
    (tmp_path / LOG_FILE).write_text("\n".join([lines[0], "not json", lines[1]]) + "\n")
    with pytest.raises(ValueError, match="line 2: not a log record"):
        read_log(tmp_path / LOG_FILE)
    with pytest.raises(ValueError, match="not a teaching session"):
        read_log(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"world": "moon"}, "unknown world 'moon'"),
        ({"credit_steps": 0}, "credit_steps must be an integer >= 1"),
        ({"approval": -1.0}, "approval must be a positive number"),
        ({"stale_steps": 1}, "stale_steps must be at least credit_steps"),
        ({"preset": "slow"}, "unknown preset 'slow'"),
    ],
)
def test_bad_settings_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        TeachConfig(**changes)


def test_set_reaches_every_setting_and_names_a_wrong_key():
    config = settings.assign(TeachConfig(), ["credit_steps=3", "ppo.learning_rate=3e-4"])
    assert config.credit_steps == 3 and config.ppo.learning_rate == 3e-4
    with pytest.raises(ValueError, match="credit_stepz"):
        settings.assign(TeachConfig(), ["credit_stepz=3"])
    assert TeachConfig.from_dict(config.as_dict()) == config


def test_live_session_refuses_and_counts_once(tmp_path):
    session = LiveSession(tmp_path, SMALL, "token", resume=False)  # the trainer not started
    frames = [session.show() for _ in range(12)]
    assert [f["step"] for f in frames] == list(range(1, 13))
    assert all(set(f["state"]) >= {"walls", "goal", "agent", "heading"} for f in frames)
    with pytest.raises(Refused, match="step 13 has not been shown yet"):
        session.label("a", 13, 1, 0.0)
    with pytest.raises(Refused, match="step 2 is stale"):
        session.label("a", 2, 1, 0.0)
    ack = session.label("a", 12, 1, 0.0)
    assert ack["type"] == "ack" and not ack["duplicate"] and ack["labels"] == 1
    assert session.label("a", 12, 1, 0.0)["duplicate"]  # resent after a reconnection
    assert session.label("b", 12, 1, 0.0)["duplicate"]  # the same label from another tab
    assert session.label("c", 12, -1, 0.0)["labels"] == 2  # a correction counts
    assert session.label("e", 12, 1, 0.0)["labels"] == 3  # and a correction of it
    session.control("leave")
    with pytest.raises(Refused, match="has already left"):
        session.control("leave")
    frame = session.show()
    assert not frame["present"]
    with pytest.raises(Refused, match="the caregiver has left"):
        session.label("d", frame["step"], 1, 0.0)
    session.control("come_back")
    with pytest.raises(Refused, match="was not watched"):  # shown while away
        session.label("d", frame["step"], 1, 0.0)
    session.stop()
    records = read_log(tmp_path / LOG_FILE)
    labels = [r for r in records if r["kind"] == "label"]
    assert [(r["id"], r["credited"]) for r in labels] == [
        ("a", [11, 12]),
        ("c", [11, 12]),
        ("e", [11, 12]),
    ]
    assert labels[0]["state"] == frames[-1]["state"] and labels[0]["action"] == frames[-1]["action"]
    assert [r["kind"] for r in records if r["kind"] in ("leave", "come_back")] == [
        "leave",
        "come_back",
    ]


@pytest.fixture(scope="module")
def taught(tmp_path_factory):
    """A live session's directory, taught by a script (approve moving forward facing right,
    disapprove facing left), left, and its learner; as `internalize teach` leaves it."""
    directory = tmp_path_factory.mktemp("taught")
    write_json(directory / SESSION_FILE, {"config": SMALL.as_dict(), "token": "t"})
    session = LiveSession(directory, SMALL, "t", resume=False)
    session.start()
    labels = 0
    while labels < 12:
        frame = session.show()
        heading = frame["state"]["heading"]
        if frame["action"] == 2 and heading in (0, 2):
            session.label(secrets.token_hex(4), frame["step"], 1 if heading == 0 else -1, 0.0)
            labels += 1
        time.sleep(0.005)  # the trainer refits and trains meanwhile
    session.control("leave")
    deadline = time.monotonic() + 120
    while session.budget >= SMALL.updates_per_block and time.monotonic() < deadline:
        time.sleep(0.05)
    session.stop()
    return directory, session.teacher


def test_the_log_reproduces_the_live_learner(taught):
    """The taught session replayed and resumed from its log: the same learner and ISR, bit
    for bit."""
    directory, live = taught
    assert live.version >= 1 and live.updates >= SMALL.updates_alone
    records = read_log(directory / LOG_FILE)
    assert any(r["kind"] == "checkpoint" for r in records)

    def same(a, b):
        return all(
            np.array_equal(x, y)
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        )

    replayed = replay_log(SMALL, records, SMALL.seed)  # compiled afresh, as `--replay` does
    assert (replayed.updates, replayed.version) == (live.updates, live.version)
    assert same(replayed.runner.train.params, live.runner.train.params)
    assert same(replayed.isr_params, live.isr_params)
    other = replay_log(SMALL, records, SMALL.seed + 1, replayed.programs)
    assert not same(other.runner.train.params, live.runner.train.params)
    # Resume after a kill (the final checkpoint never written): the checkpoint before, then
    # the records after it; or, without checkpoints, every record.
    killed = records[:-1] if records[-1]["kind"] == "checkpoint" else records
    resumed = restore(SMALL, killed, directory / CHECKPOINT_FOLDER, replayed.programs)
    restarted = restore(SMALL, killed, directory / "no-checkpoints", replayed.programs)
    assert resumed.updates == live.updates and resumed.labels == live.labels == 12
    assert same(resumed.runner.train.params, live.runner.train.params)
    assert same(restarted.runner.train.params, live.runner.train.params)


def test_a_replay_is_a_run_that_report_and_render_read(taught, tmp_path):
    from internalize.render import render_run
    from internalize.report import write_report
    from internalize.teach.command import replay

    directory, live = taught
    with pytest.raises(ValueError, match="run `internalize teach --replay"):
        write_report(directory, tmp_path / "early.html")
    shown = replay(directory, None, 2, None, progress=False)
    assert shown["seeds"] == [SMALL.seed, SMALL.seed + 1]  # the session's seed first
    results = json.loads((directory / "replay" / "results.json").read_text())
    assert results["updates"] == live.updates and results["labels"] == live.labels
    assert set(results["per_seed"]) == {"untaught", "taught"}
    rendered = render_run(directory, episodes=1)  # the session's directory, through its replay
    assert [Path(f).name for f in rendered["files"]] == ["teach.gif"]
    report = write_report(directory, tmp_path / "report.html").read_text()
    assert "A person as the caregiver" in report and "ISR reward per episode, taught" in report
    with pytest.raises(ValueError, match="already holds a finished run"):
        replay(directory, None, 1, None, progress=False)


def test_a_boulder_world_session_shows_both_agents_and_trains(tmp_path):
    """`--env boulder`: frames draw the partner and the boulder, the ISR reads the partner's
    action, and a refit and a block of updates run."""
    config = SMALL.replace(world="boulder")
    session = LiveSession(tmp_path, config, "t", resume=False)
    frame = session.show()
    assert set(frame["state"]) >= {"partner", "boulder", "carrying", "goal", "agent", "heading"}
    assert session.label("first", frame["step"], 1, 0.0)["labels"] == 1
    assert session._step() and session.teacher.version == 1  # the refit
    assert session._step() and session.teacher.updates == config.updates_per_block
    values = np.asarray(session.reward_map()["values"])
    assert values.shape == (7, 7) and np.isfinite(values).all() and values.any()
    record = read_log(tmp_path / LOG_FILE)[1]
    assert record["kind"] == "shown" and isinstance(record["partner_action"], int)
    session.stop()


def test_the_reward_map_is_resent_when_the_layout_changes_not_the_learner():
    """The page's map is keyed on the layout: the learner moving, turning or carrying the boulder
    keeps it; a new goal, a wall, the partner or a boulder on the ground changes it."""
    goals = {"walls": [[2, 3]], "goal": [4, 4], "agent": [1, 1], "heading": 0}
    assert map_key(goals) == map_key({**goals, "agent": [2, 1], "heading": 3})
    assert map_key(goals) != map_key({**goals, "goal": [5, 4]})
    assert map_key(goals) != map_key({**goals, "walls": [[2, 3], [3, 3]]})
    boulder = {**goals, "partner": [5, 5], "boulder": [3, 2], "carrying": False}
    assert map_key(boulder) != map_key({**boulder, "boulder": [3, 1]})
    assert map_key(boulder) != map_key({**boulder, "partner": [5, 4]})
    carried = {**boulder, "carrying": True}
    assert map_key(carried) == map_key({**carried, "agent": [2, 1], "boulder": [2, 1]})
    assert map_key(carried) != map_key(boulder)


def test_a_replay_without_a_session_is_named(tmp_path, capsys):
    from internalize.cli import main

    assert main(["reproduce", "teach", "--out", str(tmp_path / "replay"), "--quiet"]) == 2
    assert "needs a teaching session's directory" in capsys.readouterr().err
    assert main(["teach", "--replay", str(tmp_path / "nowhere")]) == 2
    assert "nowhere is not a teaching session's directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["teach", "--resume", str(tmp_path / "empty")]) == 2
    assert "session.json is not a readable JSON file" in capsys.readouterr().err


def test_a_port_in_use_is_named_and_leaves_nothing(tmp_path, capsys):
    import socket

    from internalize.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = tmp_path / "session"
        assert main(["teach", "--port", str(port), "--out", str(out)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert not out.exists()
