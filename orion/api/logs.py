"""``GET /tasks/<id>/logs``: a task's output, read through any node.

The node that runs the task reads its container's logs from its own engine
(``Runtime.logs``). Any other node forwards the request to that node's API
with :class:`~orion.peer_http.PeerHttp` (the cluster's scheme, CA, client
certificate and token, as joining does) and relays the answer as it comes, so
a client needs the address of one node, never ssh to the right one. A
forwarded request carries ``X-Orion-Forwarded``; a node that receives one for a
task its own replica places elsewhere answers 409 instead of forwarding again,
so two nodes reading different moments of the log never bounce a request.

The answer is ``text/plain`` streamed as it is read (chunked): ``tail=N`` (the
last N lines), ``since`` (Unix seconds, RFC 3339, or a duration such as ``10m``
back from now, resolved by the first node), ``timestamps=1``, and ``follow=1``,
which keeps streaming new lines until the client goes away or the container
ends (``orion/api/schema/queries.py`` parses them). ``X-Orion-Node`` names the
node whose engine was read.

A follow holds a thread on every node it passes through, for as long as it
lasts: under the agent's worker one of its stream threads, never one of the
request threads (:func:`is_followed_log` tells the worker which requests those
are); each node serves at most ``max_log_follows`` at once (429 beyond), see
``orion/api/streaming.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, quote

import requests
from flask import Blueprint, Response, request

from orion.api.auth import identity_of
from orion.api.http import ApiError, error_response
from orion.api.schema.openapi import PREFIX as API_PREFIX
from orion.api.schema.queries import LogsQuery, parse_query
from orion.api.scopes import Identity
from orion.api.streaming import FollowSlots, Pump, client_gone
from orion.domain.model import NodeInfo, Task
from orion.peer_http import PeerHttp
from orion.runtime import ContainerGone, EngineUnreachable, LogQuery, LogStream, RuntimeFailure
from orion.store.port import Store

log = logging.getLogger("orion.api.logs")

FORWARDED = "X-Orion-Forwarded"
NODE_HEADER = "X-Orion-Node"
# Reaching the owner node: a live peer accepts a connection in milliseconds; a dead one
# should cost the client seconds, not the kernel's two-minute connect timeout.
CONNECT_TIMEOUT = 5.0
# Between two chunks of a log that is not followed: the engine sends an existing log at once.
READ_TIMEOUT = 30.0


def is_followed_log(method: str, path: str, query: str) -> bool:
    """Whether a request, as the server parsed it, asks to follow a task's log (``GET
    [/v1]/tasks/<id>/logs?follow=1``): the agent's worker serves those on a stream thread.
    It only picks the thread: the route still checks everything, so a wrong guess costs nothing."""
    if method != "GET":
        return False
    if path.startswith(API_PREFIX + "/"):
        path = path[len(API_PREFIX):]
    parts = path.split("/")
    if len(parts) != 4 or parts[1] != "tasks" or parts[3] != "logs":
        return False
    follow = parse_qs(query, keep_blank_values=True).get("follow")
    return bool(follow) and follow[0].strip().lower() in ("1", "true", "yes")


def _params(query: LogQuery) -> dict[str, str]:
    """The query as the owner node is asked it: ``since`` already absolute."""
    params = {"follow": "1" if query.follow else "0", "timestamps": "1" if query.timestamps else "0"}
    if query.tail is not None:
        params["tail"] = str(query.tail)
    if query.since is not None:
        params["since"] = repr(query.since)
    return params


@dataclass(frozen=True)
class LogsDeps:
    """``open_logs`` is this node's ``Runtime.logs``; ``peer`` how it calls another node's API;
    ``max_follows`` the agent's ``max_log_follows``."""

    store: Store
    node_id: str
    open_logs: Callable[[str, LogQuery], LogStream]
    peer: PeerHttp
    max_follows: int
    closing: threading.Event | None = None
    # The headers that carry the caller to the owner node (``Auth.vouch``): who asked, for its audit.
    vouch: Callable[[Identity | None, str, str], dict[str, str]] | None = None
    clock: Callable[[], float] = time.time


def no_container(task: Task) -> ApiError:
    if task.node_id is None:
        why = f"it is {task.state}" + (f" ({task.reason})" if task.reason else "")
    else:
        why = f"it is {task.state} on node {task.node_id}, which has not reported one yet"
    return ApiError(409, f"task {task.id} has no container yet: {why}; its logs start once it runs", "id")


def task_with_container(store: Store, node_id: str, task_id: str) -> Task:
    """The task whose container a route reaches (its logs, an exec): 404 without the task, 409
    before it has a container, and 409 when a node forwarded it here yet this node's state places
    it elsewhere (the two read at different moments: forwarded again, it could loop)."""
    task, _ = store.read(lambda m: m.task(task_id))
    if task is None:
        raise ApiError(404, f"no task {task_id}", "id")
    if task.node_id is None or task.container_id is None:
        raise no_container(task)
    forwarded_by = request.headers.get(FORWARDED)
    if task.node_id != node_id and forwarded_by:
        raise ApiError(409, f"task {task.id} runs on node {task.node_id}, not on {node_id} (which "
                            f"{forwarded_by} forwarded this to): the two read the state at different "
                            "moments; retry", "id")
    return task


def container_gone(task: Task) -> ApiError:
    return ApiError(409, f"the container of task {task.id} is gone (the task is {task.state}; its node removes "
                         "the containers of tasks it no longer runs)", "id")


def _shutdown(response: requests.Response) -> None:
    """Close a streamed answer even while another thread is blocked reading it: shut the socket
    down first (a plain close does not wake a blocked recv), as docker's CancellableStream does."""
    try:
        response.raw._fp.fp.raw._sock.shutdown(2)  # noqa: SLF001 - urllib3 keeps the socket there
    except (AttributeError, OSError):
        pass
    response.close()


def logs_blueprint(deps: LogsDeps) -> Blueprint:
    bp = Blueprint("logs", __name__)
    slots = FollowSlots(deps.max_follows)

    def stream(chunks: Iterable[bytes], close: Callable[[], None], follow: bool, node: str,
               release: Callable[[], None]) -> Response:
        """The answer: chunks relayed as they come; ``close`` and ``release`` run when it closes."""
        if follow:
            pump = Pump(chunks, close, name=f"logs-{node}")
            body: Iterator[bytes] = pump.relay(client_gone(request.environ, deps.closing))
            close = pump.close
        else:
            body = _quietly(chunks)
        response = Response(body, mimetype="text/plain", headers={NODE_HEADER: node, "Cache-Control": "no-store"})
        response.call_on_close(close)
        response.call_on_close(release)
        return response

    def local(task: Task, query: LogQuery, release: Callable[[], None]) -> Response:
        try:
            source = deps.open_logs(task.container_id or "", query)
        except ContainerGone:
            raise container_gone(task) from None
        except EngineUnreachable as exc:
            raise ApiError(503, f"cannot read the logs of task {task.id}: {exc}") from None
        except RuntimeFailure as exc:
            raise ApiError(409, f"cannot read the logs of task {task.id}: {exc}", "id") from None
        return stream(source, source.close, query.follow, deps.node_id, release)

    def forward(task: Task, node: NodeInfo | None, query: LogQuery, release: Callable[[], None]) -> Response:
        if node is None or not node.api_addr:
            raise ApiError(502, f"task {task.id} runs on node {task.node_id}, whose API address is unknown")
        try:
            path = f"/tasks/{quote(task.id, safe='')}/logs"
            vouched = deps.vouch(identity_of(request.environ), "GET", path) if deps.vouch else {}
            answer = deps.peer.get(node.api_addr, path,
                                   timeout=(CONNECT_TIMEOUT, None if query.follow else READ_TIMEOUT),
                                   params=_params(query), headers={FORWARDED: deps.node_id, **vouched}, stream=True)
        except requests.RequestException as exc:
            raise ApiError(502, f"node {node.id} ({node.api_addr}), which runs task {task.id}, did not answer: "
                                f"{type(exc).__name__}", "nodeId") from None
        if answer.status_code != 200:  # the owner's own refusal (409, 429, ...), passed on as it said it
            release()  # nothing streams: this node's follow slot is free again at once
            try:
                body = answer.json()
            except ValueError:
                body = {"error": f"node {node.id} answered {answer.status_code}"}
            answer.close()
            extra = {k: v for k, v in body.items() if k not in ("error", "field")} if isinstance(body, dict) else {}
            response = error_response(answer.status_code, str(body.get("error", "")), body.get("field"), **extra)
            if "Retry-After" in answer.headers:
                response.headers["Retry-After"] = answer.headers["Retry-After"]
            return response
        chunks = answer.iter_content(chunk_size=None)
        return stream(chunks, lambda: _shutdown(answer), query.follow, answer.headers.get(NODE_HEADER, node.id),
                      release)

    @bp.get("/tasks/<task_id>/logs")
    def task_logs(task_id: str) -> Response:
        query = parse_query(LogsQuery, request.args, now=deps.clock()).log_query()
        task = task_with_container(deps.store, deps.node_id, task_id)
        release: Callable[[], None] = _nothing
        if query.follow:
            taken = slots.take()
            if taken is None:
                response = error_response(429, f"node {deps.node_id} already streams {slots.limit} followed "
                                               "log(s), its limit (max_log_follows); retry later, or read "
                                               "without follow")
                response.headers["Retry-After"] = "5"
                return response
            release = taken
        try:
            if task.node_id == deps.node_id:
                return local(task, query, release)
            node, _ = deps.store.read(lambda m: m.node(task.node_id or ""))
            return forward(task, node, query, release)
        except BaseException:
            release()
            raise

    return bp


def _nothing() -> None:
    return None


def _quietly(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks; a source that breaks mid-way (engine or peer gone) just ends the answer,
    whose status is sent already."""
    try:
        yield from chunks
    except Exception as exc:  # noqa: BLE001 - docker, urllib3 and socket errors alike
        log.info("log stream broke off: %s", exc)
