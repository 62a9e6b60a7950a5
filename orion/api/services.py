"""``/services``: declare, update, read, roll back and delete services (docs/services.md).

``POST /services`` creates (201, version 1; 409 if the name exists), ``PUT
/services/<name>`` declares the full spec: a new version and a deployment (201)
or, for the same spec, nothing at all (200), so applying one file in a loop is
harmless. Bodies go through ``orion/api/schema/services.py`` (400 with the
nested field); each write is one command, stamped with this node's clock (the
deployment's start: the state machine has none). The rollout itself is the
leader's ``DeploymentLoop``; these routes only declare and read.

``POST /tasks`` stays what it was, one-off tasks with an optional ``count`` of
unnamed replicas (scaled by ``PATCH /tasks/<id>``): a service is the named,
versioned, health-checked form, and turning ``count`` into an unnamed service
would change the answers of a route scripts already parse.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, request

from orion.api.http import ApiError, AppliedSignal, answer, read_json_body
from orion.api.refusals import format_gate, refusal
from orion.api.schema.fields import parse_name
from orion.api.schema.network import reserved_problem
from orion.api.schema.problems import Problem, ValidationError
from orion.api.schema.queries import BlockingReadQuery, RollbackQuery, parse_query
from orion.api.schema.services import parse_service_request, service_notes
from orion.api.service_views import job_view, run_view, service_view, version_view
from orion.control import rebalance
from orion.domain.model import ASSIGNED, DESIRED_RUN, RUNNING
from orion.domain.network import NetworkSettings
from orion.domain.service import GLOBAL, ServiceSpec, eligible
from orion.domain.spec_diff import spec_diff
from orion.state.commands import Command, DeleteService, PutService, RebalanceService, RedeployService, RollbackService
from orion.state.entries import SECRETS_LOG_VERSION, WORKLOADS_LOG_VERSION, needs_secrets, needs_workloads
from orion.state.machine import StateMachine
from orion.state.network import NETWORK_LOG_VERSION
from orion.state.results import Refused, Result, ServiceDeclared
from orion.state.service_records import ServiceRecord
from orion.store.port import Store


def full_view(m: StateMachine, record: ServiceRecord, now: float, detail: bool = False) -> dict[str, Any]:
    """A service as the routes show it: a global one counts its eligible nodes, a job its runs."""
    wanted = sum(eligible(record.spec, n) for n in m.nodes()) if record.spec.mode == GLOBAL else None
    job = job_view(record, m.jobs.get(record.name), now) if record.spec.job is not None else None
    return dict(service_view(record, m.services.replicas(record.name), detail, wanted, job, vip=m.vip(record.name)))


def services_blueprint(store: Store, write_timeout: float, applied: AppliedSignal,
                       clock: Callable[[], float] = time.time) -> Blueprint:
    """``applied`` holds the reads' blocking queries (``?index=N&wait=D``, ``http.py``)."""
    bp = Blueprint("services", __name__)

    def block(name: str | None = None) -> None:
        """Hold the read; a ``name`` that cannot exist is refused first (400), never held."""
        if name is not None:
            try:
                parse_name(name)
            except Problem as exc:
                raise ValidationError("name", exc.message) from None
        applied.block(parse_query(BlockingReadQuery, request.args))

    def read_service(name: str, detail: bool = True) -> tuple[tuple[ServiceRecord, dict[str, Any]], int]:
        """The record and its view (404 when there is none)."""
        now = clock()

        def read(m: StateMachine) -> tuple[ServiceRecord | None, dict[str, Any]]:
            record = m.services.get(name)
            return record, full_view(m, record, now, detail) if record is not None else {}

        (record, view), index = store.read(read)
        if record is None:
            raise ApiError(404, f"no service {name}", "name")
        return (record, view), index

    def submit(command: Command, what: str) -> Result:
        result = store.submit(command, write_timeout)
        if isinstance(result, Refused):
            raise refusal(result, what, "name")
        return result

    def declared(name: str, result: ServiceDeclared, notes: tuple[str, ...] = (),
                 diff: dict[str, Any] | None = None) -> Response:
        (_record, view), index = read_service(name)
        body = {**view, "changed": result.changed, "notes": list(notes)}
        if diff is not None:
            body["diff"] = diff
        response = answer(body, 201 if result.changed else 200, index)
        response.headers["Location"] = f"{request.script_root}/services/{name}"
        return response

    def put(name: str, spec: ServiceSpec, create: bool) -> Response:
        # The diff against the spec as the machine will pin it (secrets and configs at their current versions).
        (current, task, network), _ = store.read(
            lambda m: (m.services.get(name), m.secrets.pin(spec.task), network_facts(m)))
        problem = network_problem(spec, *network)
        if problem is not None:
            raise problem
        if needs_workloads(spec):
            what = f"a {spec.mode} service with these placement rules"
            store.read(lambda m: format_gate(m, WORKLOADS_LOG_VERSION, what, "mode"))
        if needs_secrets(spec.task):
            store.read(lambda m: format_gate(m, SECRETS_LOG_VERSION, "a service that reads secrets or configs",
                                             "secrets"))
        diff = None
        if current is not None:
            d = spec_diff(current.spec, spec if isinstance(task, Refused) else replace(spec, task=task))
            diff = {"changed": list(d.changed), "replace": d.replace, "scale": d.scale}
        command = PutService(request_id=uuid.uuid4().hex, spec=spec, at=clock(), create=create)
        result = submit(command, f"cannot declare {name}")  # a port another service publishes names "publish"
        return declared(name, result, service_notes(spec), diff)

    @bp.post("/services")
    def create_service() -> Response:
        body = read_json_body()
        if not isinstance(body, dict) or "name" not in body:
            raise ValidationError("name", "is required: POST /services takes the spec with its name; "
                                  "PUT /services/<name> declares one by its URL")
        spec = parse_service_request(body["name"], body)
        return put(spec.name, spec, create=True)

    @bp.put("/services/<name>")
    def put_service(name: str) -> Response:
        return put(name, parse_service_request(name, read_json_body()), create=False)

    @bp.get("/services")
    def list_services() -> Response:
        block()
        now = clock()

        def read(m: StateMachine) -> list[dict[str, Any]]:
            return [full_view(m, r, now) for r in m.services.all()]

        views, index = store.read(read)
        return answer(views, 200, index)

    @bp.get("/services/<name>")
    def get_service(name: str) -> Response:
        block(name)
        (_record, view), index = read_service(name)
        return answer(view, 200, index)

    @bp.get("/services/<name>/versions")
    def versions(name: str) -> Response:
        block(name)
        (record, _), index = read_service(name, detail=False)
        kept = [version_view(v) for v in record.versions]
        if record.stable is not None and record.stable not in record.versions:
            kept.insert(0, version_view(record.stable))
        return answer(kept, 200, index)

    @bp.delete("/services/<name>")
    def delete(name: str) -> Response:
        read_service(name)
        result = submit(DeleteService(request_id=uuid.uuid4().hex, name=name), f"cannot delete {name}")
        _, index = store.read(lambda m: None)
        return answer({"name": name, "deleted": True, "stopping": list(result.stopped)}, 200, index)

    @bp.post("/services/<name>/rollback")
    def rollback(name: str) -> Response:
        version = parse_query(RollbackQuery, request.args, name=name).version
        read_service(name)
        command = RollbackService(request_id=uuid.uuid4().hex, name=name, version=version, at=clock())
        result = submit(command, f"cannot roll {name} back")
        return declared(name, result)

    @bp.post("/services/<name>/redeploy")
    def redeploy(name: str) -> Response:
        read_service(name, detail=False)
        store.read(lambda m: format_gate(m, WORKLOADS_LOG_VERSION, "a redeploy", "mode"))
        result = submit(RedeployService(request_id=uuid.uuid4().hex, name=name, at=clock()), f"cannot redeploy {name}")
        return declared(name, result)

    @bp.post("/services/<name>/rebalance")
    def rebalance_service(name: str) -> Response:
        (record, _), _index = read_service(name, detail=False)
        store.read(lambda m: format_gate(m, WORKLOADS_LOG_VERSION, "a rebalance", "mode"))

        def plan(m: StateMachine) -> rebalance.Moves:
            live = [t for t in m.services.replicas(name) if t.desired == DESIRED_RUN and t.state in (ASSIGNED, RUNNING)]
            return rebalance.plan(record.spec, live, m.nodes(), m.usages())

        moves, _ = store.read(plan)
        if not moves.replicas:
            (_record, view), index = read_service(name)
            return answer({**view, "moves": [], "sentence": moves.sentence}, 200, index)
        command = RebalanceService(request_id=uuid.uuid4().hex, name=name, moves=moves.replicas, at=clock())
        submit(command, f"cannot rebalance {name}")
        (_record, view), index = read_service(name)
        return answer({**view, "moves": list(moves.replicas), "sentence": moves.sentence}, 201, index)

    @bp.get("/services/<name>/runs")
    def runs(name: str) -> Response:
        block(name)
        (record, _), _index = read_service(name, detail=False)
        if record.spec.job is None:
            raise ApiError(400, f"{name} is a {record.spec.mode} service: only a job has runs", "name")
        jobs, index = store.read(lambda m: m.jobs.get(name))
        return answer([run_view(r) for r in (jobs.runs if jobs is not None else ())], 200, index)

    return bp


def network_facts(m: StateMachine) -> tuple[int, frozenset[int], int]:
    """What the network checks need from the replica: the oldest log format a node reads, the
    ports Orion's agents listen on (every registered node's API, gossip and Raft port), and
    the overlay's VXLAN port (the default until the network is set)."""
    ports = (addr.rpartition(":")[2] for n in m.nodes() for addr in (n.api_addr, n.gossip_addr, n.raft_addr))
    own = frozenset(int(port) for port in ports if port.isascii() and port.isdigit())
    settings = m.network() or NetworkSettings()
    return m.log_version(), own, settings.port


def network_problem(spec: ServiceSpec, log_version: int, own: frozenset[int],
                    vxlan_port: int) -> ValidationError | ApiError | None:
    """A published port the cluster needs itself (400), or network fields while a node of an older
    release may still read the log: it would drop them and keep another spec (409)."""
    reserved = reserved_problem(spec.publish, own, vxlan_port)
    if reserved is not None:
        return reserved
    if log_version < NETWORK_LOG_VERSION:
        used = [name for name, on in (("endpointMode", spec.endpoint_mode != "vip"), ("publish", bool(spec.publish)),
                                      ("overlay", not spec.overlay)) if on]
        if used:
            return ApiError(409, f"a node of this cluster runs an older Orion (log format {log_version}) that "
                                 f"would ignore {used[0]}; finish the upgrade first", used[0])
    return None
