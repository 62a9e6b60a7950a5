"""``/stacks``: the services grouped by the stack they carry (docs/stacks.md).

A stack has no record of its own: it is the services whose spec names it
(``ServiceSpec.stack``), as a Swarm stack is the services labelled with its
namespace. So it exists while one of its services does, and nothing can
disagree about what it holds. ``orion stack deploy`` (the CLI) reads a compose
file, plans against ``GET /stacks/<name>`` and declares each service through
``/services``; these routes only read a stack and delete it.

``DELETE /stacks/<name>`` deletes its services one command each, in name order:
a failure part way (no leader) answers 503 and leaves the rest, and asking again
finishes the job (a deleted service is simply no longer in the stack).
"""

from __future__ import annotations

import uuid
from collections import Counter

from flask import Blueprint, Response

from orion.api.http import ApiError, answer
from orion.api.refusals import refusal
from orion.api.schema import responses as r
from orion.api.service_views import service_view
from orion.state.commands import DeleteService
from orion.state.machine import StateMachine
from orion.state.results import Refused
from orion.state.services import ServiceRecord
from orion.store.port import Store


def stack_summary(name: str, views: list[r.Service]) -> r.Stack:
    """One stack's line: its services' names, their replicas wanted, healthy, and counted per state."""
    tasks: Counter[str] = Counter()
    for view in views:
        tasks.update(view["tasks"])
    return {"name": name, "services": sorted(v["name"] for v in views), "count": sum(v["count"] for v in views),
            "healthy": sum(v["healthy"] for v in views), "tasks": dict(sorted(tasks.items()))}


def _members(m: StateMachine, stack: str) -> list[ServiceRecord]:
    return sorted((s for s in m.services.all() if s.spec.stack == stack), key=lambda s: s.name)


def stacks_blueprint(store: Store, write_timeout: float) -> Blueprint:
    bp = Blueprint("stacks", __name__)

    @bp.get("/stacks")
    def list_stacks() -> Response:
        def read(m: StateMachine) -> list[r.Stack]:
            grouped: dict[str, list[r.Service]] = {}
            for record in m.services.all():
                if record.spec.stack:
                    grouped.setdefault(record.spec.stack, []).append(
                        service_view(record, m.services.replicas(record.name)))
            return [stack_summary(name, views) for name, views in sorted(grouped.items())]

        views, index = store.read(read)
        return answer(views, 200, index)

    @bp.get("/stacks/<name>")
    def get_stack(name: str) -> Response:
        def read(m: StateMachine) -> list[r.Service]:
            return [service_view(s, m.services.replicas(s.name), detail=True) for s in _members(m, name)]

        views, index = store.read(read)
        if not views:
            raise ApiError(404, f"no stack {name}: no service carries it", "name")
        return answer({**stack_summary(name, views), "details": views}, 200, index)

    @bp.delete("/stacks/<name>")
    def delete_stack(name: str) -> Response:
        names, _ = store.read(lambda m: [s.name for s in _members(m, name)])
        if not names:
            raise ApiError(404, f"no stack {name}: no service carries it", "name")
        stopping: list[str] = []
        for service in names:
            result = store.submit(DeleteService(request_id=uuid.uuid4().hex, name=service), write_timeout)
            if isinstance(result, Refused):
                raise refusal(result, f"cannot delete {service} of stack {name}", "name")
            stopping.extend(result.stopped)
        _, index = store.read(lambda m: None)
        return answer({"name": name, "deleted": names, "stopping": stopping}, 200, index)

    return bp
