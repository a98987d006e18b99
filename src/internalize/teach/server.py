"""The web app of `internalize teach`: one page, one websocket, a token.

Endpoints (every one refuses a request without the session's token, `?token=...`, with 403):

- `GET /` the page (`page.html`);
- `GET /status` the session's status as JSON;
- `WS /ws` the live channel.

Messages from the page are JSON objects of at most `MAX_MESSAGE_BYTES` bytes:

- `{"type": "label", "id": str, "step": int, "value": 1 | -1, "time": float}`: approve (1) or
  disapprove (-1) of shown step `step`, the frame on screen when the key was pressed; answered
  `{"type": "ack", "id", "duplicate", "labels", ...}` once it is on disk (a label id seen before,
  or the same label from another tab, is acknowledged again and not counted twice);
- `{"type": "control", "action": "pause" | "resume" | "leave" | "come_back"}`;
- `{"type": "control", "action": "speed", "value": steps per second}`.

A message that is not one of these, too large, or not acceptable now (a step not shown yet, a
stale one, a label while the caregiver is away) is answered `{"type": "refused", "reason",
"id"?}` and logged; the connection and the server go on. The server sends `hello` (the
session's status) on connect, a `frame` per shown step, `status` about once a second and `map`
(the ISR's reward map of the current layout) when it changes.
"""

import asyncio
import contextlib
import json
import logging
import math
import secrets
import socket
from importlib.resources import files

from internalize.teach.session import LiveSession, Refused
from internalize.teach.worlds import map_key

LOGGER = logging.getLogger("internalize.teach")
MAX_MESSAGE_BYTES = 2_048
"""Larger messages are refused (the websocket itself closes above `MAX_FRAME_BYTES`)."""
MAX_FRAME_BYTES = 65_536
MAX_SPEED = 100.0
"""Fastest pace of the shown environment, steps per second."""
MIN_SPEED = 0.25
CONTROLS = ("pause", "resume", "leave", "come_back", "speed")


def parse_message(text: str | bytes | None) -> dict:
    """The page's message `text` checked (see the module doc); `Refused` names what is wrong."""
    if text is None:
        raise Refused("binary messages are not accepted")
    if len(text) > MAX_MESSAGE_BYTES:
        raise Refused(f"message of {len(text)} bytes (at most {MAX_MESSAGE_BYTES})")
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise Refused(f"not JSON: {error}") from None
    if not isinstance(message, dict):
        raise Refused("not a JSON object")
    kind = message.get("type")
    if kind == "label":
        label_id, step, value, when = (message.get(k) for k in ("id", "step", "value", "time"))
        if not isinstance(label_id, str) or not 1 <= len(label_id) <= 64:
            raise Refused("a label needs an id: a string of 1 to 64 characters")
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise Refused(f"a label's step must be a shown step number >= 1, got {step!r}")
        if isinstance(value, bool) or value not in (1, -1):
            raise Refused(f"a label's value must be 1 or -1, got {value!r}")
        if isinstance(when, bool) or not isinstance(when, (int, float)) or not math.isfinite(when):
            raise Refused(f"a label's time must be a number, got {when!r}")
        return {"type": "label", "id": label_id, "step": step, "value": value, "time": when}
    if kind == "control":
        action = message.get("action")
        if action not in CONTROLS:
            raise Refused(f"unknown control {action!r}; known: {list(CONTROLS)}")
        if action == "speed":
            value = message.get("value")
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not MIN_SPEED <= value <= MAX_SPEED:
                raise Refused(
                    f"speed must be a number in [{MIN_SPEED}, {MAX_SPEED}], got {value!r}"
                )
            return {"type": "control", "action": action, "value": float(value)}
        return {"type": "control", "action": action}
    raise Refused(f"unknown message type {kind!r}")


class Hub:
    """The open websockets of a session, and the loop that shows the environment to them."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.sockets: set = set()
        self.map_key = None

    async def send(self, websocket, message: dict) -> None:
        with contextlib.suppress(Exception):  # a closed socket is dropped by its handler
            await websocket.send_text(json.dumps(message))

    async def broadcast(self, message: dict) -> None:
        text = json.dumps(message)

        async def one(websocket):
            try:
                await asyncio.wait_for(websocket.send_text(text), timeout=2.0)
            except Exception:  # noqa: BLE001 (a slow or closed tab must not stop the others)
                self.sockets.discard(websocket)

        await asyncio.gather(*(one(w) for w in list(self.sockets)))

    async def run(self) -> None:
        """Show a step every 1/speed seconds (unless paused), a status every second."""
        session, last_status = self.session, 0.0
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            if session.error is not None:
                LOGGER.error("the trainer stopped: %r", session.error)
                raise session.error
            if not session.paused:
                frame = await asyncio.to_thread(session.show)
                await self.broadcast(frame)
                await self.send_map()
            if started - last_status >= 1.0:
                await self.broadcast(session.status())
                last_status = started
            delay = (0.2 if session.paused else 1.0 / session.speed) - (loop.time() - started)
            await asyncio.sleep(max(delay, 0.0))

    async def send_map(self) -> None:
        """The ISR's reward map, when the ISR or the layout (not the learner) changed since the
        last one."""
        session = self.session
        key = (session.teacher.version, map_key(session.programs.world.picture(session.state)))
        if key != self.map_key:
            self.map_key = key
            await self.broadcast(await asyncio.to_thread(session.reward_map))

    def handle(self, text) -> dict | None:
        """The answer to one message (None: nothing to answer but the broadcasts)."""
        session = self.session
        message = parse_message(text)
        if message["type"] == "label":
            return session.label(message["id"], message["step"], message["value"], message["time"])
        session.control(message["action"], message.get("value"))
        return session.status()


def make_app(session: LiveSession):
    """The Starlette app serving `session`."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocketDisconnect

    hub = Hub(session)
    page = files("internalize.teach").joinpath("page.html").read_text(encoding="utf-8")

    def allowed(connection) -> bool:
        given = connection.query_params.get("token", "")
        return secrets.compare_digest(given.encode(), session.token.encode())

    async def index(request):
        if not allowed(request):
            LOGGER.warning("refused %s: no valid token", request.url.path)
            return PlainTextResponse("a valid ?token= is required\n", status_code=403)
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def status(request):
        if not allowed(request):
            return PlainTextResponse("a valid ?token= is required\n", status_code=403)
        return JSONResponse(session.status())

    async def channel(websocket):
        if not allowed(websocket):
            LOGGER.warning("refused a websocket: no valid token")
            await websocket.close(code=1008)
            return
        await websocket.accept()
        hub.sockets.add(websocket)
        await hub.send(
            websocket, {**session.status(), "type": "hello", "world": session.config.world}
        )
        await hub.send(websocket, await asyncio.to_thread(session.reward_map))
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                try:
                    answer = await asyncio.to_thread(hub.handle, text)
                except Refused as refusal:
                    LOGGER.warning("refused a message: %s", refusal)
                    answer = {"type": "refused", "reason": str(refusal)}
                    with contextlib.suppress(Exception):
                        answer["id"] = json.loads(text).get("id")
                if answer is not None:
                    await hub.send(websocket, answer)
                    if answer.get("type") == "status":  # a control: every tab should know
                        await hub.broadcast(answer)
        except WebSocketDisconnect:
            pass
        finally:
            hub.sockets.discard(websocket)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        session.start()
        task = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    routes = [Route("/", index), Route("/status", status), WebSocketRoute("/ws", channel)]
    return Starlette(routes=routes, lifespan=lifespan)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 takes a free one. OSError names the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(error.errno, f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(64)
    return sock


def serve(session: LiveSession, sock: socket.socket, announce=print) -> None:
    """Serve `session` on `sock` until interrupted; the session is stopped (its learner
    saved, its log closed) whatever ends it."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}/?token={session.token}"
    config = uvicorn.Config(
        make_app(session),
        log_level="warning",
        ws_max_size=MAX_FRAME_BYTES,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    announce(f"teaching session in {session.directory}\nopen {url}")
    try:
        server.run(sockets=[sock])
    finally:
        session.stop()
    if session.error is not None:
        raise RuntimeError(f"the teaching session's trainer failed: {session.error!r}")
