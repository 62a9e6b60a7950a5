"""``/tasks``: submit, list, read and stop one-off tasks (``PATCH`` scales them: ``ops.py``).

``POST /tasks`` commits the task placed when a node fits (``create``: the
create and its placement share one entry), else waits briefly
(``placement_wait``) for the leader's placement pass to place it, so the common
case answers with the node and ports at once; if placement takes longer the
answer is the pending task, which is still correct: the task is committed
either way.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import replace

from flask import Blueprint, Response, request

from orion.api.http import (
    RECHECK,
    ApiError,
    AppliedSignal,
    answer,
    idempotency_key,
    json_body,
)
from orion.api.refusals import format_gate, refusal
from orion.api.schema.queries import BlockingReadQuery, TaskListQuery, parse_query
from orion.api.schema.tasks import parse_task_request
from orion.api.views import task_view
from orion.domain.model import PENDING, TERMINAL_STATES, Task, TaskSpec
from orion.state.commands import CreateTask, StopTask
from orion.state.entries import SECRETS_LOG_VERSION, needs_secrets
from orion.state.results import Refused, Result
from orion.store.port import Store


def new_task_id() -> str:
    """12 hex chars: 48 random bits, short enough to type, collisions negligible per cluster."""
    return uuid.uuid4().hex[:12]


def _settled(task: Task | None) -> bool:
    """Placed (or otherwise moved on), or the placement planner said why it cannot place it."""
    return task is None or task.state != PENDING or bool(task.reason)


def tasks_blueprint(store: Store, applied: AppliedSignal, write_timeout: float, placement_wait: float,
                    id_factory: Callable[[], str] = new_task_id,
                    create: Callable[[CreateTask], Result] | None = None) -> Blueprint:
    """``create`` commits a CreateTask with its placement (None: a plain submit, placed by the
    leader's pass); ``applied`` wakes placement waits and holds blocking reads."""
    bp = Blueprint("tasks", __name__)

    def wait_for_placement(task_ids: list[str]) -> tuple[list[Task | None], int]:
        deadline = time.monotonic() + placement_wait
        while True:
            tasks, index = store.read(lambda m: [m.task(t) for t in task_ids])
            remaining = deadline - time.monotonic()
            if all(_settled(t) for t in tasks) or remaining <= 0:
                return tasks, index
            applied.wait_beyond(index, min(remaining, RECHECK))

    def find_task(task_id: str) -> tuple[Task, int]:
        task, index = store.read(lambda m: m.task(task_id))
        if task is None:
            raise ApiError(404, f"no task {task_id}", "id")
        return task, index

    def submit_create(spec: TaskSpec, key: str) -> tuple[str, bool]:
        if needs_secrets(spec):
            store.read(lambda m: format_gate(m, SECRETS_LOG_VERSION, "a task that reads secrets or configs", "secrets"))
        command = CreateTask(request_id=uuid.uuid4().hex, task_id=id_factory(), spec=spec, idempotency_key=key)
        result = create(command) if create is not None else store.submit(command, write_timeout)
        if isinstance(result, Refused):
            raise refusal(result, "the cluster refused the task")
        return result.task.id, result.created

    @bp.post("/tasks")
    def create_task() -> Response:
        spec = json_body(parse_task_request)
        key = idempotency_key()
        if spec.count == 1:
            created_ids = [submit_create(spec, key)]
        else:  # replicas: one task each, so each is placed, reported and stopped on its own;
            # a shared group id makes them one service (scaled by PATCH /tasks/<id>).
            spec = replace(spec, group=new_task_id())
            created_ids = [submit_create(spec, f"{key}/{i}" if key else "") for i in range(1, spec.count + 1)]
        ids = [task_id for task_id, _ in created_ids]
        created = any(new for _, new in created_ids)
        tasks, index = wait_for_placement(ids) if created else store.read(lambda m: [m.task(t) for t in ids])
        views = [task_view(t, detail=True) for t in tasks if t is not None]
        response = answer(views[0] if spec.count == 1 else views, 201 if created else 200, index)
        response.headers["Location"] = f"{request.script_root}/tasks/{ids[0]}"
        return response

    @bp.get("/tasks")
    def list_tasks() -> Response:
        query = parse_query(TaskListQuery, request.args)
        applied.block(query)
        service, state = query.service, query.state  # a service's replicas (docs/services.md)
        tasks, index = store.read(lambda m: m.tasks() if service is None else m.services.replicas(service))
        return answer([task_view(t) for t in tasks if state is None or t.state == state], 200, index)

    @bp.get("/tasks/<task_id>")
    def get_task(task_id: str) -> Response:
        applied.block(parse_query(BlockingReadQuery, request.args))
        task, index = find_task(task_id)
        return answer(task_view(task, detail=True), 200, index)

    @bp.delete("/tasks/<task_id>")
    def stop_task(task_id: str) -> Response:
        find_task(task_id)
        result = store.submit(StopTask(request_id=uuid.uuid4().hex, task_id=task_id), write_timeout)
        if isinstance(result, Refused):
            raise refusal(result, f"cannot stop {task_id}", "id")
        task, index = find_task(task_id)
        return answer(task_view(task, detail=True), 200 if task.state in TERMINAL_STATES else 202, index)

    return bp
