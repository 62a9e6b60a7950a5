"""Operations on a running cluster: scale a service, drain a node.

``PATCH /tasks/<id>`` with ``{"count": N}`` sets the size of the service the
task belongs to (its replicas share ``spec.group``; a lone task is a service
of one). ``POST /nodes/<id>/drain`` marks the node ``left``: the leader migrates
its tasks elsewhere, each replacement running before its original stops (see
``orion/control/drain.py``). Both are one Raft command each;
the app's error handlers (``orion/api/http.py``) turn StoreError/ApiError into JSON answers.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Response

from orion.api.http import ApiError, answer, json_body
from orion.api.refusals import refusal
from orion.api.schema.tasks import ScaleRequest, parse_scale_request
from orion.api.tasks import new_task_id
from orion.api.views import node_view, task_view
from orion.node.leave import drain_command
from orion.state.commands import ScaleTask
from orion.state.results import Refused
from orion.store.port import Store


def ops_blueprint(store: Store, write_timeout: float) -> Blueprint:
    bp = Blueprint("ops", __name__)

    @bp.patch("/tasks/<task_id>")
    def scale(task_id: str) -> Response:
        count = json_body(parse_scale_request, f"a JSON object like {ScaleRequest.EXAMPLE}")
        task, _ = store.read(lambda m: m.task(task_id))
        if task is None:
            raise ApiError(404, f"no task {task_id}", "id")
        command = ScaleTask(request_id=uuid.uuid4().hex, task_id=task_id, count=count,
                            new_task_ids=tuple(new_task_id() for _ in range(count)))
        result = store.submit(command, write_timeout)
        if isinstance(result, Refused):
            raise refusal(result, f"cannot scale {task_id}", "count")
        group = result.group
        members, index = store.read(lambda m: m.group_members(group))
        return answer({"group": group, "count": count, "created": list(result.created),
                       "stopped": list(result.stopped), "tasks": [task_view(t) for t in members]}, 200, index)

    @bp.post("/nodes/<node_id>/drain")
    def drain(node_id: str) -> Response:
        node, _ = store.read(lambda m: m.node(node_id))
        if node is None:
            raise ApiError(404, f"no node {node_id}", "id")
        result = store.submit(drain_command(node_id), write_timeout)
        if isinstance(result, Refused):
            raise refusal(result, f"cannot drain {node_id}", "id")

        leader = store.status().leader

        def view(m):  # noqa: ANN001, ANN202
            usage = m.usage(node_id)
            return (node_view(m.node(node_id), usage.used, usage.ports, leader, lease=m.lease_of_node(node_id)),
                    [t.id for t in m.tasks_on(node_id)])

        (shown, held), index = store.read(view)
        return answer({**shown, "tasksToMove": held}, 202, index)

    return bp
