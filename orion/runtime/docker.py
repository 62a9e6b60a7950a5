"""The Docker engine adapter: the only module that talks to the docker SDK.

It uses the SDK's low-level API so that each engine call is visible here and
every failure can be turned into a short :class:`RuntimeFailure` reason (a
task's ``reason`` is shown to users; an SDK traceback is not a reason).

The engine's own restart policy is always ``no``: Orion decides restarts, and
an engine that restarted containers behind its back would make the reported
state lie.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import docker
import requests
import urllib3
from docker.errors import APIError, DockerException, NotFound
from docker.utils import parse_repository_tag

from orion.domain.model import Resources, Task
from orion.runtime import (
    LABEL_MANAGED,
    LABEL_NODE,
    ContainerGone,
    ContainerState,
    EnginePlatform,
    EngineUnreachable,
    ExecSpec,
    LogQuery,
    LogStream,
    NetworkAttachment,
    NetworkNotReady,
    RegistryAuthRequired,
    RuntimeFailure,
    StartExtras,
)
from orion.runtime.create import NodePolicy, create_args
from orion.runtime.docker_exec import DockerExec, start_exec
from orion.runtime.inspect import auth_refused, auth_sentence, state_from_inspect

log = logging.getLogger(__name__)

T = TypeVar("T")

# A reason lands in the replicated task record and in API answers: keep it a line.
_MAX_REASON = 300
# What the docker SDK raises: its own errors (DockerException: APIError, NotFound, ...),
# transport errors (OSError: requests' exceptions and socket errors are IOErrors), urllib3's
# when a stream breaks mid-read, and ValueError for a JSON answer it cannot parse.
_SDK_ERRORS = (DockerException, OSError, urllib3.exceptions.HTTPError, ValueError)


def _line(text: str) -> str:
    """One line, at most _MAX_REASON characters."""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _short(exc: BaseException) -> str:
    """The engine's own sentence when it gave one, else the exception text, one line."""
    text = ""
    if isinstance(exc, APIError):
        text = str(exc.explanation or "")
    return _line(text or str(exc) or type(exc).__name__)


def _engine_down(exc: BaseException) -> bool:
    """Did the engine fail to answer at all (as opposed to answering "no")? The SDK
    wraps transport errors (e.g. in "Error while fetching server API version"), so
    the whole cause chain is read."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, requests.ConnectionError | requests.Timeout | ConnectionError | TimeoutError
                      | FileNotFoundError):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


class DockerRuntime:
    """Runs tasks as containers on one Docker engine.

    The client is created on first use, so an agent can start before its
    engine and report "engine unreachable" instead of dying. Thread-safe as the
    SDK is (one requests session); the reconciler calls it from one thread.
    """

    def __init__(self, docker_host: str, timeout: float = 60.0, policy: NodePolicy | None = None) -> None:
        self.docker_host = docker_host
        # What this node offers its tasks (config ``host_volumes``, ``host_devices``,
        # ``allow_privileged``). Its ``init``: the engine's tiny init as PID 1 forwards SIGTERM and
        # reaps zombies; without it a program that ignores signals as PID 1 (busybox httpd does) is
        # only ever killed after the full stop timeout, and every stop reports exit 137.
        self.policy = policy or NodePolicy()
        self._timeout = timeout
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------

    def _api(self) -> docker.APIClient:
        with self._lock:
            if self._client is None:
                with self._wrap("connect"):
                    self._client = docker.DockerClient(base_url=self.docker_host, timeout=int(self._timeout))
            return self._client.api

    @contextmanager
    def _wrap(self, what: str, failed: Callable[[str], str] | None = None) -> Iterator[None]:
        """The one place SDK errors become a short :class:`RuntimeFailure`: an unreachable
        engine says so (EngineUnreachable); any other error reads ``"{what}: {reason}"``,
        or ``failed(reason)`` when the caller words it. Answers a caller expects (NotFound)
        are caught inside the block, before they get here."""
        try:
            yield
        except _SDK_ERRORS as exc:
            if _engine_down(exc):
                raise EngineUnreachable(
                    f"{what}: docker engine unreachable at {self.docker_host}: {_short(exc)}") from None
            raise RuntimeFailure(failed(_short(exc)) if failed else f"{what}: {_short(exc)}") from None

    def _call(self, what: str, fn: Callable[[docker.APIClient], T]) -> T:
        api = self._api()
        with self._wrap(what):
            return fn(api)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- engine ---------------------------------------------------------------

    def ping(self, timeout: float | None = None) -> bool:
        """Does the engine answer (within ``timeout``: a hung engine must not hold the caller)?"""
        # The SDK's ping() takes no timeout: a plain GET /_ping on its own session does.
        def get(api: docker.APIClient) -> bool:
            resp = api.get(api.base_url + "/_ping", timeout=api.timeout if timeout is None else timeout)
            return resp.status_code == 200

        try:
            return self._call("ping", get)
        except RuntimeFailure:
            return False

    def engine_id(self) -> str:
        """The engine's ID (``docker info``): the host key of the overlay's lease, shared by
        every agent that drives this engine (they share its network, so they share a subnet)."""
        info = self._call("engine info", lambda api: api.info())
        engine = str(info.get("ID") or "")
        if not engine:
            raise RuntimeFailure(f"the engine at {self.docker_host} reports no ID")
        return engine

    def engine_capacity(self) -> Resources:
        info = self._call("engine info", lambda api: api.info())
        return Resources(memory=int(info.get("MemTotal", 0)), cpu_millis=int(info.get("NCPU", 0)) * 1000)

    def engine_platform(self) -> EnginePlatform:
        """The engine's own answers (``docker info``): its host's name, OS type, architecture
        and version, as Swarm reads a node's description."""
        info = self._call("engine info", lambda api: api.info())
        return EnginePlatform(str(info.get("Name", "")), str(info.get("OSType", "")),
                              str(info.get("Architecture", "")), str(info.get("ServerVersion", "")))

    # -- images ---------------------------------------------------------------

    def _image_present(self, image: str) -> bool:
        api = self._api()
        with self._wrap(f"inspect image {image}"):
            try:
                api.inspect_image(image)
            except NotFound:
                return False
        return True

    def _pull(self, image: str, auth: dict[str, str] | None) -> str:
        """Pull ``image`` (with ``auth``, the registry's credentials); the registry's error, or ""."""
        repo, tag = parse_repository_tag(image)
        api = self._api()
        # stream=True: errors arrive as JSON lines in a 200 answer, so read them all.
        for line in api.pull(repo, tag=tag or "latest", stream=True, decode=True, auth_config=auth):
            if isinstance(line, dict) and line.get("error"):
                return _line(str(line["error"]))
        return ""

    def ensure_image(self, image: str, pull_policy: str, auth: dict[str, str] | None = None) -> None:
        """Make ``image`` available locally as the task's pull policy says; a registry that wants
        credentials is a :class:`RegistryAuthRequired` naming the fix, not the engine's words."""
        if pull_policy == "never":
            if not self._image_present(image):
                raise RuntimeFailure(f"image {image} not found locally (pull policy never)")
            return
        if pull_policy == "if-not-present" and self._image_present(image):
            return
        def failed(detail: str) -> str:
            if pull_policy == "always":
                return f"pull of image {image} failed (pull policy always): {detail}"
            return f"image {image} not found locally and pull failed: {detail}"

        with self._wrap(f"pull of image {image}", failed):
            try:
                error = self._pull(image, auth)
            except APIError as exc:  # a 401/403/404 answered before the stream: the same as a streamed one
                error = _short(exc)
        if error and auth_refused(error):
            raise RegistryAuthRequired(auth_sentence(image, auth, error))
        if error:
            raise RuntimeFailure(failed(error))
        if not self._image_present(image):
            raise RuntimeFailure(f"image {image} not found locally and pull did not provide it")

    # -- containers -----------------------------------------------------------

    def inspect(self, container_id: str) -> ContainerState | None:
        """The container's state, or None when it is gone."""
        api = self._api()
        with self._wrap(f"inspect container {container_id[:12]}"):
            try:
                attrs = api.inspect_container(container_id)
            except NotFound:
                return None
        return state_from_inspect(attrs)

    def start(self, task: Task, node_id: str, extras: StartExtras | None = None,
              network: NetworkAttachment | None = None) -> ContainerState:
        """Create and start the task's container; return what the engine reports after start.

        Idempotent per (task, generation): a container of that name that is
        already live is adopted; a dead leftover (agent crashed between create
        and start) is removed and created afresh. What the container is created
        with is ``create_args`` (``create.py``): the one place that maps a task to the engine.
        With ``network`` the container joins that Docker network (its only one: port bindings
        work there as on the default bridge) with Orion's resolver; a network the engine does
        not have is NetworkNotReady.
        """
        extras = extras or StartExtras()
        # Secrets and configs: files on the node's tmpfs, bind-mounted read-only (docs/secrets.md).
        host_kwargs, create_kwargs = create_args(task, node_id, self.policy, extras, network)
        self.ensure_image(task.spec.image, task.spec.pull_policy, extras.auth)
        name = create_kwargs["name"]
        api = self._api()
        with self._wrap(f"create container {name}"):
            create_kwargs["host_config"] = api.create_host_config(**host_kwargs)
        container_id = self._create(name, create_kwargs, task)
        if isinstance(container_id, ContainerState):
            return container_id
        try:
            with self._wrap(f"start of {name}", lambda reason: f"start of {name} failed: {reason}"):
                api.start(container_id)
        except EngineUnreachable:
            raise
        except RuntimeFailure as exc:
            self._remove_quietly(container_id)  # a created container that cannot start is no use
            if network is not None and f"network {network.network} not found" in str(exc):
                raise NetworkNotReady(f"network {network.network} does not exist on this engine yet") from None
            raise
        state = self.inspect(container_id)
        if state is None:
            raise RuntimeFailure(f"container {name} vanished right after start")
        return state

    def _create(self, name: str, kwargs: dict[str, Any], task: Task) -> str | ContainerState:
        api = self._api()
        for attempt in (1, 2):
            with self._wrap(f"create container {name}"):
                try:
                    return str(api.create_container(**kwargs)["Id"])
                except APIError as exc:
                    if exc.status_code != 409 or attempt == 2:
                        raise
            # 409: a container of that name exists (an agent that crashed between create and start).
            existing = self.inspect(name)
            if existing is not None and existing.live and existing.task_id == task.id:
                return existing
            if existing is not None:
                self._remove_quietly(existing.container_id)
        raise AssertionError("unreachable")

    def _remove_quietly(self, container_id: str) -> None:
        try:
            self.remove(container_id)
        except RuntimeFailure as exc:
            log.warning("could not remove container %s: %s", container_id[:12], exc)

    def watch_exits(self, node_id: str, on_exit: Callable[[], None], stop: threading.Event) -> None:
        """Call ``on_exit()`` whenever a container of ``node_id`` dies, as the engine's event stream
        tells it (``docker events``), until ``stop``: the reconciler hears of a crash at once instead
        of at its next periodic pass. A stream that breaks (the engine restarted) is opened again
        after a second; nothing is missed for good, the periodic pass still lists every container."""
        filters = {"type": "container", "event": "die", "label": [f"{LABEL_MANAGED}=1", f"{LABEL_NODE}={node_id}"]}
        while not stop.is_set():
            try:
                for _event in self._api().events(decode=True, filters=filters):
                    if stop.is_set():
                        return
                    on_exit()
            except Exception as exc:  # noqa: BLE001 - the stream is a hint; the periodic pass is the truth
                log.debug("container events of %s: %s; again in 1 s", node_id, exc)
            stop.wait(1.0)

    def stop(self, container_id: str, timeout: float) -> None:
        api = self._api()
        with self._wrap(f"stop container {container_id[:12]}"):
            try:
                api.stop(container_id, timeout=max(0, math.ceil(timeout)))
            except NotFound:
                return

    def remove(self, container_id: str) -> None:
        api = self._api()
        with self._wrap(f"remove container {container_id[:12]}"):
            try:
                api.remove_container(container_id, force=True, v=True)
            except NotFound:
                return
            except APIError as exc:
                if exc.status_code == 409 and "already in progress" in _short(exc):
                    return  # the engine is removing it already
                raise

    def logs(self, container_id: str, query: LogQuery) -> LogStream:
        """The container's output as it comes from the engine (stdout and stderr demultiplexed,
        in the order written), streamed: a long log is never held in memory whole."""
        api = self._api()
        with self._wrap(f"logs of container {container_id[:12]}"):
            try:
                return api.logs(container_id, stdout=True, stderr=True, stream=True, follow=query.follow,
                                timestamps=query.timestamps, tail="all" if query.tail is None else query.tail,
                                since=query.since)
            except NotFound:
                raise ContainerGone(f"container {container_id[:12]} no longer exists") from None

    def container_ip(self, container_id: str) -> str:
        """The container's address on its engine's network ("" when it has none): where a
        health check dials it (orion/node/health_checks.py)."""
        api = self._api()
        with self._wrap(f"inspect container {container_id[:12]}"):
            try:
                net = api.inspect_container(container_id).get("NetworkSettings") or {}
            except NotFound:
                return ""
        found = [n.get("IPAddress") for n in (net.get("Networks") or {}).values()]
        return str(net.get("IPAddress") or next((ip for ip in found if ip), ""))

    def exec_in(self, container_id: str, argv: tuple[str, ...], timeout: float) -> tuple[int, str]:
        """Run ``argv`` in the container: (exit code, output). The engine has no exec timeout,
        so the call waits in a thread of its own; past ``timeout`` it is abandoned (and left to
        finish in the container, as Docker's own HEALTHCHECK leaves a timed-out probe)."""
        api = self._api()
        with self._wrap(f"exec in {container_id[:12]}"):
            exec_id = api.exec_create(container_id, list(argv), stdout=True, stderr=True)["Id"]
        done: dict[str, Any] = {}

        def run() -> None:
            try:
                done["output"] = api.exec_start(exec_id)
            except _SDK_ERRORS as exc:
                done["error"] = exc

        worker = threading.Thread(target=run, name=f"exec-{container_id[:12]}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise RuntimeFailure(f"timed out after {timeout:g}s")
        if "error" in done:
            raise RuntimeFailure(f"exec in {container_id[:12]}: {_short(done['error'])}")
        code = self._call("exec inspect", lambda api: api.exec_inspect(exec_id)).get("ExitCode")
        return int(code or 0), bytes(done.get("output") or b"").decode("utf-8", "replace")

    def exec_session(self, container_id: str, spec: ExecSpec) -> DockerExec:
        """Start ``spec`` in the container, its streams on a socket (``docker_exec.py``)."""
        api = self._api()
        with self._wrap(f"exec in container {container_id[:12]}"):
            try:
                return start_exec(api, container_id, spec)
            except NotFound:
                raise ContainerGone(f"container {container_id[:12]} no longer exists") from None

    def list_managed(self, node_id: str) -> list[ContainerState]:
        """Every Orion container labelled for ``node_id``, any status, by name."""
        filters = {"label": [f"{LABEL_MANAGED}=1", f"{LABEL_NODE}={node_id}"]}
        rows = self._call("list containers", lambda api: api.containers(all=True, filters=filters))
        states = []
        for row in rows:
            state = self.inspect(row["Id"])  # None: removed between list and inspect
            if state is not None:
                states.append(state)
        return sorted(states, key=lambda s: (s.task_id, s.generation, s.container_id))
