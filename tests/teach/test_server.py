"""The web app over real HTTP and websockets: the token, bad messages, two tabs, a killed server
and `--resume`."""

import json
import signal
import urllib.error
import urllib.request

import pytest

from internalize.teach.server import MAX_MESSAGE_BYTES, parse_message
from internalize.teach.session import LOG_FILE, Refused, read_log

websocket = pytest.importorskip("websocket", reason="websocket-client (the test extra)")


def connect(server, timeout: float = 30.0):
    socket = websocket.create_connection(server.ws, timeout=timeout)
    return socket, receive(socket, "hello")


def receive(socket, kind: str, limit: int = 2_000) -> dict:
    """The next message of type `kind` (frames, statuses and maps pass meanwhile)."""
    for _ in range(limit):
        message = json.loads(socket.recv())
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind!r} message in {limit}")


def answer(socket, message) -> dict:
    """Send `message` (a dict, or raw text) and return the reply to it: an ack, a refusal or,
    for a control, the status."""
    socket.send(message if isinstance(message, str) else json.dumps(message))
    for _ in range(2_000):
        reply = json.loads(socket.recv())
        if reply["type"] in ("ack", "refused") or (
            reply["type"] == "status"
            and not isinstance(message, str)
            and message.get("type") == "control"
        ):
            return reply
    raise AssertionError("no reply")


def label(step: int, value: int = 1, label_id: str = "x") -> dict:
    return {"type": "label", "id": label_id, "step": step, "value": value, "time": 1.0}


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as page:
            return page.status
    except urllib.error.HTTPError as error:
        return error.code


def test_every_endpoint_needs_the_token(server):
    assert http_status(server.url) == 200
    assert http_status(server.base + "/") == 403
    assert http_status(server.base + "/?token=wrong") == 403
    assert http_status(server.base + "/status") == 403
    assert http_status(f"{server.base}/status?token={server.token}") == 200
    assert http_status(server.base + "/../session.json?token=" + server.token) == 404
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(server.ws.replace(server.token, "wrong"), timeout=10)
    with urllib.request.urlopen(server.url, timeout=10) as page:
        assert "Teach a learner your values" in page.read().decode()


@pytest.mark.parametrize(
    "text, reason",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"type": "shout"}', "unknown message type 'shout'"),
        ('{"type": "label", "id": "a", "step": 1, "value": 2, "time": 0}', "must be 1 or -1"),
        ('{"type": "label", "id": "", "step": 1, "value": 1, "time": 0}', "needs an id"),
        ('{"type": "label", "id": "a", "step": true, "value": 1, "time": 0}', "step must be"),
        ('{"type": "label", "id": "a", "step": 1, "value": 1, "time": "now"}', "time must be"),
        ('{"type": "control", "action": "explode"}', "unknown control 'explode'"),
        ('{"type": "control", "action": "speed", "value": 1e9}', "speed must be a number"),
        ("x" * (MAX_MESSAGE_BYTES + 1), f"at most {MAX_MESSAGE_BYTES}"),
    ],
)
def test_malformed_messages_are_refused_by_name(text, reason):
    with pytest.raises(Refused, match=reason):
        parse_message(text)


def test_bad_messages_never_stop_the_server(server):
    socket, _ = connect(server)
    for text in ("{not json", "x" * (MAX_MESSAGE_BYTES + 10), '{"type": "label"}'):
        reply = answer(socket, text)
        assert reply["type"] == "refused" and reply["reason"]
    frame = receive(socket, "frame")
    assert answer(socket, label(frame["step"] + 10_000))["reason"].startswith(
        f"step {frame['step'] + 10_000} has not been shown yet"
    )
    socket.send_binary(b"\x00\x01")
    assert receive(socket, "refused")["reason"] == "binary messages are not accepted"
    with pytest.raises((websocket.WebSocketException, OSError)):  # above the frame limit: closed
        socket.send("y" * 100_000)
        for _ in range(2_000):
            socket.recv()
    socket, _ = connect(server)  # the server lives on
    frame = receive(socket, "frame")
    assert answer(socket, label(frame["step"]))["type"] == "ack"
    socket.close()


def test_two_tabs_count_a_label_once(server):
    first, _ = connect(server)
    second, _ = connect(server)
    frame = receive(first, "frame")
    before = server.status()["labels"]  # the module's session: other tests labelled too
    assert not answer(first, label(frame["step"], label_id="one"))["duplicate"]
    again = answer(second, label(frame["step"], label_id="one"))  # resent by another tab
    same = answer(second, label(frame["step"], label_id="two"))  # pressed in both tabs
    assert again["duplicate"] and same["duplicate"] and same["labels"] == before + 1
    labels = server.status()["labels"]
    assert not answer(first, label(frame["step"], -1, label_id="three"))["duplicate"]
    assert server.status()["labels"] == labels + 1  # a correction counts
    paused = answer(second, {"type": "control", "action": "pause"})
    assert paused["paused"] and receive(first, "status")["paused"]  # every tab hears it
    assert not answer(first, {"type": "control", "action": "resume"})["paused"]
    first.close(), second.close()


def test_a_killed_server_loses_no_acknowledged_label(start_teach, small_settings, tmp_path):
    server = start_teach(["--out", str(tmp_path / "session"), *small_settings])
    socket, _ = connect(server)
    acknowledged = []
    while len(acknowledged) < 5:
        frame = receive(socket, "frame")
        reply = answer(
            socket, label(frame["step"], 1 if frame["step"] % 2 else -1, f"l{frame['step']}")
        )
        if reply["type"] == "ack":
            acknowledged.append(reply["id"])
    server.process.send_signal(signal.SIGKILL)  # no chance to save anything more
    server.process.wait(timeout=30)
    logged = [r["id"] for r in read_log(server.directory / LOG_FILE) if r["kind"] == "label"]
    assert logged == acknowledged
    resumed = start_teach(["--resume", str(server.directory)])
    try:
        assert resumed.token == server.token  # an open tab reconnects as it was
        assert resumed.status()["labels"] == 5
        socket, hello = connect(resumed)
        assert hello["labels"] == 5
        frame = receive(socket, "frame")
        assert frame["step"] > max(int(i[1:]) for i in acknowledged)  # numbering goes on
        assert answer(socket, label(frame["step"], label_id="after"))["labels"] == 6
        assert answer(socket, label(frame["step"], label_id=acknowledged[0]))["duplicate"]
        socket.close()
    finally:
        assert resumed.stop() == 0
    records = read_log(server.directory / LOG_FILE)
    assert [r["id"] for r in records if r["kind"] == "label"] == [*acknowledged, "after"]
