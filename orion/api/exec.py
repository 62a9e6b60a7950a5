"""``POST /tasks/<id>/exec``: a process in a task's container, its streams relayed from any node.

The request (JSON: the command, ``tty``, ``stdin``, the terminal's size) asks to
upgrade the connection (``Connection: Upgrade``, ``Upgrade: orion-exec.v1``); once
everything is checked — the caller's scope (admin, ``scopes.py``), the body, the task
and its container — the node answers ``101`` and the connection carries frames both
ways (``exec_wire.py``). A refusal is an ordinary JSON answer, before any upgrade.

The node that runs the task starts the process with its engine's exec API
(``Runtime.exec_session``) and splices the client's connection to the engine's:
stdin frames become the process's input, an empty one closes it, resize frames
resize its terminal; the engine's output goes back as stdout/stderr frames, and
the last frame carries the exit code. Any other node forwards the request to that
node (the cluster's scheme, CA, client certificate and token, as logs are, plus
the caller it vouches for: ``auth.py``) and splices the two connections, frames
passing unchanged.

A session holds a thread for as long as it lasts, on every node it passes through:
under the agent's worker one of its stream threads (``orion/agent/worker.py`` sends
exec requests there), never one of the request threads; each node serves at most
``max_exec_sessions`` at once and answers ``429`` beyond. The agent stopping ends
its sessions with a status frame that says so.

Every session is audited on each node it passes: one record when its stream opens,
one when it ends, with the exit code (``audit.py``).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, request

from orion.api.audit import exec_record
from orion.api.audit_file import AuditLog
from orion.api.auth import identity_of
from orion.api.exec_wire import (
    PROTOCOL,
    RESIZE,
    STATUS,
    STDIN,
    STDOUT,
    Decoder,
    ProtocolError,
    Target,
    Way,
    dial,
    frame,
    parse_resize,
    splice,
    status_frame,
    upgrade_answer,
)
from orion.api.holds import STREAM_KEY
from orion.api.http import ApiError, error_response, json_body
from orion.api.logs import FORWARDED, NODE_HEADER, container_gone, task_with_container
from orion.api.schema.exec import ExecRequest, parse_exec_request
from orion.api.schema.openapi import PREFIX as API_PREFIX
from orion.api.scopes import Identity
from orion.api.streaming import FollowSlots
from orion.domain.model import NodeInfo, Task
from orion.peer_http import PeerHttp
from orion.runtime import ContainerGone, EngineUnreachable, ExecSession, ExecSpec, RuntimeFailure
from orion.store.port import Store

log = logging.getLogger("orion.api.exec")

# Reaching the task's node: a live peer accepts in milliseconds, a dead one should cost seconds.
CONNECT_TIMEOUT = 5.0
# Its answer comes once its engine has started the process: as long as a log read may wait.
ANSWER_TIMEOUT = 30.0
# Writing the last status frame to a client that may not read any more.
GOODBYE_TIMEOUT = 2.0


def is_exec_request(method: str, path: str) -> bool:
    """``POST [/v1]/tasks/<id>/exec``: the agent's worker serves it on a stream thread. Only
    picks the thread: the route checks everything."""
    if method != "POST":
        return False
    if path.startswith(API_PREFIX + "/"):
        path = path[len(API_PREFIX):]
    parts = path.split("/")
    return len(parts) == 4 and parts[1] == "tasks" and parts[3] == "exec"


@dataclass(frozen=True)
class ExecDeps:
    """``open_exec`` is this node's ``Runtime.exec_session``; ``peer`` how it calls another
    node; ``vouch`` the headers that carry the caller to it (``Auth.vouch``); ``max_sessions``
    the agent's ``max_exec_sessions``; ``audit`` the node's audit log."""

    store: Store
    node_id: str
    open_exec: Callable[[str, ExecSpec], ExecSession]
    peer: PeerHttp
    vouch: Callable[[Identity | None, str, str], dict[str, str]]
    max_sessions: int
    audit: AuditLog | None = None
    closing: threading.Event | None = None
    clock: Callable[[], float] = time.time


class Upgrade(Response):
    """The ``101``: run by gunicorn like any answer, it writes on the connection itself, relays
    the session, then tells gunicorn that nothing is left to write (``StopIteration``: the
    worker closes the connection, as for a client gone mid-answer)."""

    def __init__(self, run: Callable[[socket.socket], None]) -> None:
        super().__init__(status=101)
        self._run = run

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        try:
            self._run(environ["gunicorn.socket"])
        except Exception:  # noqa: BLE001 - the connection is ours: nothing may be written after this
            log.exception("exec session failed")
        raise StopIteration


class _ClientFrames:
    """What the client sends, for the engine: stdin's bytes; an empty stdin frame closes the
    process's stdin; a resize resizes its terminal."""

    def __init__(self, session: ExecSession, spec: ExecSpec, close_stdin: Callable[[], None]) -> None:
        self._session = session
        self._spec = spec
        self._close_stdin = close_stdin
        self._decoder = Decoder()

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for channel, payload in self._decoder.feed(data):
            if channel == STDIN and self._spec.stdin:
                if payload:
                    out += payload
                else:
                    self._close_stdin()
            elif channel == RESIZE and self._spec.tty:
                rows, cols = parse_resize(payload)
                try:
                    self._session.resize(rows, cols)
                except Exception as exc:  # noqa: BLE001 - a failed resize is not worth the session
                    log.info("exec: resize to %dx%d failed: %s", rows, cols, exc)
            elif channel not in (STDIN, RESIZE):
                raise ProtocolError(f"a client sends stdin and resize frames, not channel {channel}")
        return bytes(out)


class _StatusWatch:
    """Frames passing from the task's node to the client, unchanged; remembers the exit status
    so the forwarding node can audit it, and supplies one if the stream ends without it."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._decoder = Decoder()
        self.status: dict[str, Any] | None = None

    def feed(self, data: bytes) -> bytes:
        try:
            for channel, payload in self._decoder.feed(data):
                if channel == STATUS:
                    self.status = json.loads(payload)
        except (ProtocolError, ValueError):
            self.status = self.status or {"exitCode": None, "error": "the task's node sent a broken stream"}
        return data

    def end(self) -> bytes:
        if self.status is not None:
            return b""
        self.status = {"exitCode": None, "error": f"node {self._owner} closed the session without an exit status"}
        return status_frame(None, self.status["error"])


def exec_blueprint(deps: ExecDeps) -> Blueprint:
    bp = Blueprint("exec", __name__)
    slots = FollowSlots(deps.max_sessions)
    stopping = deps.closing.is_set if deps.closing is not None else (lambda: False)

    def audit(identity: Identity | None, task: Task, spec: ExecSpec, phase: str, ran_on: str, **end: Any) -> None:
        """One record of the session (run inside its request: gunicorn calls the ``101`` there)."""
        if deps.audit is not None:
            deps.audit.write(exec_record(now=deps.clock(), node=deps.node_id, identity=identity,
                                         remote=request.remote_addr or "", task=task.id, command=spec.command,
                                         tty=spec.tty, phase=phase, ran_on=ran_on, **end))

    def goodbye(client: socket.socket, why: str) -> None:
        try:
            client.settimeout(GOODBYE_TIMEOUT)
            client.sendall(status_frame(None, why))
        except OSError:
            pass

    def local(task: Task, spec: ExecSpec, identity: Identity | None, release: Callable[[], None]) -> Response:
        try:
            session = deps.open_exec(task.container_id or "", spec)
        except ContainerGone:
            raise container_gone(task) from None
        except EngineUnreachable as exc:
            raise ApiError(503, f"cannot exec in task {task.id}: {exc}") from None
        except RuntimeFailure as exc:
            raise ApiError(409, f"cannot exec in task {task.id}: {exc}", "id") from None
        def run(client: socket.socket) -> None:
            started = time.monotonic()
            result: dict[str, Any] = {}
            try:
                client.sendall(upgrade_answer(deps.node_id))
                audit(identity, task, spec, "start", deps.node_id)
                engine = session.sock
                up = Way(client, engine)
                up.feed = _ClientFrames(session, spec, lambda: setattr(up, "close_dst", True)).feed

                def out(data: bytes) -> bytes:  # a tty's bytes are framed here; Docker frames the rest
                    return frame(STDOUT, data) if spec.tty and data else data

                def end() -> bytes:
                    code = session.exit_code()
                    result["exitCode"] = code
                    if code is None:
                        result["error"] = "the engine did not say how the process ended"
                    return status_frame(code, result.get("error", ""))

                down = Way(engine, client, out, end)
                down.buf += out(session.early)
                try:
                    why = splice(up, down, stopping)
                except ProtocolError as exc:
                    why = f"protocol error: {exc}"
                    goodbye(client, why)
                if why == "stopped":
                    goodbye(client, f"node {deps.node_id} is stopping")
                if why != "done":
                    result.setdefault("exitCode", None)
                    result.setdefault("error", why)
            finally:
                session.close()
                release()
                audit(identity, task, spec, "end", deps.node_id, exit_code=result.get("exitCode"),
                      error=result.get("error", ""), seconds=time.monotonic() - started)

        return Upgrade(run)

    def forward(task: Task, node: NodeInfo | None, spec: ExecSpec, identity: Identity | None,
                release: Callable[[], None]) -> Response:
        if node is None or not node.api_addr:
            raise ApiError(502, f"task {task.id} runs on node {task.node_id}, whose API address is unknown")
        path = f"/tasks/{quote(task.id, safe='')}/exec"
        headers = {**deps.peer.auth_headers(), FORWARDED: deps.node_id, **deps.vouch(identity, "POST", path)}
        body = request.get_data()
        try:
            answer = dial(Target(deps.peer.url(node.api_addr, path), deps.peer.ssl_context(), headers), body,
                          CONNECT_TIMEOUT, ANSWER_TIMEOUT)
        except OSError as exc:
            raise ApiError(502, f"node {node.id} ({node.api_addr}), which runs task {task.id}, did not answer: "
                                f"{type(exc).__name__}: {exc}", "nodeId") from None
        if answer.status != 101 or answer.sock is None:  # the owner's refusal, passed on as it said it
            data = answer.json()
            extra = {k: v for k, v in data.items() if k not in ("error", "field")}
            response = error_response(answer.status, str(data.get("error", "")), data.get("field"), **extra)
            if "Retry-After" in answer.headers:
                response.headers["Retry-After"] = answer.headers["Retry-After"]
            release()
            return response
        owner = answer.headers.get(NODE_HEADER, node.id)
        peer_sock = answer.sock

        def run(client: socket.socket) -> None:
            started = time.monotonic()
            watch = _StatusWatch(owner)
            why = "done"
            try:
                client.sendall(upgrade_answer(owner))
                audit(identity, task, spec, "start", owner)
                down = Way(peer_sock, client, watch.feed, watch.end)
                down.buf += watch.feed(answer.early)
                why = splice(Way(client, peer_sock), down, stopping)
                if why == "stopped":
                    goodbye(client, f"node {deps.node_id} (forwarding to {owner}) is stopping")
            finally:
                peer_sock.close()
                release()
                status = watch.status or {"exitCode": None, "error": why}
                audit(identity, task, spec, "end", owner, exit_code=status.get("exitCode"),
                      error=status.get("error", ""), seconds=time.monotonic() - started)

        return Upgrade(run)

    @bp.post("/tasks/<task_id>/exec")
    def exec_task(task_id: str) -> Response:
        spec = json_body(parse_exec_request, f"a JSON object like {ExecRequest.EXAMPLE}")
        if request.headers.get("Upgrade", "").strip().lower() != PROTOCOL:
            raise ApiError(400, f"exec streams on an upgraded connection: send Connection: Upgrade and Upgrade: "
                                f"{PROTOCOL} (`orion exec` does; docs/api.md, \"Exec\")", "Upgrade")
        task = task_with_container(deps.store, deps.node_id, task_id)
        if request.environ.get("gunicorn.socket") is None:
            raise ApiError(501, "exec needs the agent's own server (gunicorn with its worker), which hands the "
                                "connection over; this one cannot")
        if not request.environ.get(STREAM_KEY):
            return _busy(f"node {deps.node_id} has no stream thread free for an exec session; retry shortly")
        release = slots.take()
        if release is None:
            return _busy(f"node {deps.node_id} already relays {slots.limit} exec session(s), its limit "
                         "(max_exec_sessions); retry later")
        identity = identity_of(request.environ)
        try:
            if task.node_id == deps.node_id:
                return local(task, spec, identity, release)
            node, _ = deps.store.read(lambda m: m.node(task.node_id or ""))
            return forward(task, node, spec, identity, release)
        except BaseException:
            release()
            raise

    return bp


def _busy(message: str) -> Response:
    response = error_response(429, message)
    response.headers["Retry-After"] = "5"
    return response
