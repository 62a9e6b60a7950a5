"""``/secrets``, ``/configs``, ``/registries``: create, update, read (metadata), delete; rotate the key.

A secret's value is sealed here, on the node that takes the request, before its command enters
the Raft log (``orion/domain/sealing.py``): with this node's primary cluster key, and only once
every alive node holds that key (else the value would reach a node that cannot open it). The
answer is metadata; nothing in this module puts a value, or the sealed bytes, in an answer or a
log line. A config is stored as it is and reads back. Registry credentials are sealed like a
secret and used by every node that pulls from that registry (``orion/node/task_files.py``).

``POST /secrets/rotate`` is the middle step of a key rotation (``orion/control/rotation.py``):
every value not sealed with this node's primary key is opened and sealed again, in place.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import pydantic
from flask import Blueprint, Response, request

from orion.api.http import ApiError, AppliedSignal, answer, read_json_body
from orion.api.refusals import format_gate, refusal
from orion.api.schema import secrets as s
from orion.api.schema.fields import parse_name
from orion.api.schema.problems import Problem, ValidationError
from orion.api.schema.problems import refusal as body_problem
from orion.api.schema.queries import BlockingQuery, parse_query
from orion.api.secret_views import object_view, registry_view
from orion.control.rotation import SealedValue, nodes_without, plan, remaining
from orion.domain.sealing import Keyring, SealError, digest, open_sealed, seal, sealed_key_id
from orion.domain.secrets import CONFIG, SECRET
from orion.node.templates import template_problem
from orion.state.commands import (
    Command,
    DeleteRegistryAuth,
    DeleteSecret,
    PutRegistryAuth,
    PutSecret,
    Reseal,
    ResealSecrets,
)
from orion.state.entries import SECRETS_LOG_VERSION
from orion.state.machine import StateMachine
from orion.state.results import Refused, Result
from orion.state.secrets import REGISTRY
from orion.store.port import Store

_BODIES = {(SECRET, True): s.SecretRequest, (SECRET, False): s.SecretValue,
           (CONFIG, True): s.ConfigRequest, (CONFIG, False): s.ConfigValue}


def _parse(model: type[pydantic.BaseModel], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as exc:
        raise body_problem(exc) from None


def secrets_blueprint(store: Store, write_timeout: float, applied: AppliedSignal, keyring: Keyring | None,
                      clock: Callable[[], float] = time.time) -> Blueprint:
    bp = Blueprint("secrets", __name__)

    def block() -> None:
        applied.block(parse_query(BlockingQuery, request.args))

    def submit(command: Command) -> Result:
        """The machine's answer; a refusal is its status by kind (``orion/api/refusals.py``)."""
        store.read(lambda m: format_gate(m, SECRETS_LOG_VERSION, "a secret, config or registry login", "name"))
        result = store.submit(command, write_timeout)
        if isinstance(result, Refused):
            raise refusal(result, field="name")
        return result

    def sealing_key() -> Keyring:
        """This node's keyring, once every alive node holds its primary key."""
        if keyring is None:
            raise ApiError(409, "this node has no cluster key (cluster_key_file), so it cannot seal a secret; "
                                "install the cluster's key file on every node (the Ansible role does) and restart "
                                "the agents")
        nodes, _ = store.read(lambda m: m.nodes())
        lacking = nodes_without(keyring.primary_id, nodes)
        if lacking:
            raise ApiError(409, f"node(s) {', '.join(lacking)} do not hold cluster key {keyring.primary_id} (this "
                                "node's primary), so they could not open what it seals; install the key file on "
                                "every node and restart their agents first")
        return keyring

    def view(kind: str, name: str, detail: bool) -> tuple[dict[str, Any], int]:
        def read(m: StateMachine) -> dict[str, Any] | None:
            obj = m.secrets.get(kind, name)
            return None if obj is None else dict(object_view(obj, m.secrets.users(kind, name)[0], detail))

        found, index = store.read(read)
        if found is None:
            raise ApiError(404, f"no {kind} {name}", "name")
        return found, index

    def write(kind: str, name: str | None) -> Response:
        body = _parse(_BODIES[(kind, name is None)], read_json_body(_BODIES[(kind, name is None)].EXAMPLE))
        name = name if name is not None else body.name
        raw: bytes = body.data
        template = bool(getattr(body, "template", False))
        if kind == SECRET:
            ring = sealing_key()
            data, sig = seal(ring, raw, SECRET, name), digest(ring, raw)
        else:
            problem = _template_problem(raw) if template else None
            if problem:
                raise ValidationError("data", problem)
            data, sig = base64.b64encode(raw).decode(), "sha256:" + hashlib.sha256(raw).hexdigest()
        result = submit(PutSecret(request_id=uuid.uuid4().hex, kind=kind, name=name, data=data, size=len(raw),
                                  digest=sig, template=template, at=clock(), create=request.method == "POST"))
        found, index = view(kind, name, detail=False)
        response = answer({**found, "changed": result.changed, "rolled": list(result.rolled)},
                          201 if result.changed else 200, index)
        response.headers["Location"] = f"{request.script_root}/{kind}s/{name}"
        return response

    def routes(kind: str) -> None:
        plural = f"/{kind}s"

        @bp.post(plural, endpoint=f"create_{kind}")
        def create() -> Response:
            return write(kind, None)

        @bp.put(plural + "/<name>", endpoint=f"update_{kind}")
        def update(name: str) -> Response:
            _name(name)
            return write(kind, name)

        @bp.get(plural, endpoint=f"list_{kind}s")
        def listing() -> Response:
            block()
            def read(m: StateMachine) -> list[dict[str, Any]]:
                return [dict(object_view(o, m.secrets.users(kind, o.name)[0])) for o in m.secrets.all(kind)]

            views, index = store.read(read)
            return answer(views, 200, index)

        @bp.get(plural + "/<name>", endpoint=f"get_{kind}")
        def one(name: str) -> Response:
            _name(name)  # a name that cannot exist is refused before any hold
            block()
            found, index = view(kind, name, detail=True)
            return answer(found, 200, index)

        @bp.delete(plural + "/<name>", endpoint=f"delete_{kind}")
        def delete(name: str) -> Response:
            view(kind, name, detail=False)  # 404 for a name that is not there; gone meanwhile: 409
            submit(DeleteSecret(request_id=uuid.uuid4().hex, kind=kind, name=name))
            return answer({"name": name, "deleted": True}, 200, store.read(lambda m: None)[1])

    routes(SECRET)
    routes(CONFIG)

    @bp.post("/secrets/rotate")
    def rotate() -> Response:
        ring = sealing_key()
        values, _ = store.read(lambda m: m.secrets.sealed_values())
        envelopes = {(k, n, v): e for k, n, v, e in values}
        sealed = [SealedValue(k, n, v, _key_id(e), len(e)) for k, n, v, e in values]
        done, skipped = 0, []
        for batch in plan(sealed, ring.primary_id):
            items = []
            for value in batch:
                purpose = REGISTRY if value.kind == REGISTRY else SECRET
                try:
                    raw = open_sealed(ring, envelopes[(value.kind, value.name, value.version)], purpose, value.name)
                except SealError as exc:
                    raise ApiError(409, f"{value.kind} {value.name}: {exc}; add that key to this node's key file "
                                        "(after the primary) to rotate away from it") from None
                items.append(Reseal(value.kind, value.name, value.version, value.key_id,
                                    seal(ring, raw, purpose, value.name), digest(ring, raw)))
            result = submit(ResealSecrets(request_id=uuid.uuid4().hex, items=tuple(items)))
            done += len(result.resealed)
            skipped += result.skipped
        values, index = store.read(lambda m: m.secrets.sealed_values())
        left = remaining([SealedValue(k, n, v, _key_id(e), len(e)) for k, n, v, e in values], ring.primary_id)
        return answer({"key": ring.primary_id, "resealed": done, "skipped": skipped, "remaining": left}, 200, index)

    @bp.post("/registries")
    def login() -> Response:
        body = _parse(s.RegistryLogin, read_json_body(s.RegistryLogin.EXAMPLE))
        ring = sealing_key()
        secret = body.credential.encode()
        result = submit(PutRegistryAuth(request_id=uuid.uuid4().hex, server=body.server, username=body.username,
                                        sealed=seal(ring, secret, REGISTRY, body.server),
                                        digest=digest(ring, secret), at=clock()))
        auth, index = store.read(lambda m: m.secrets.registry(body.server))
        return answer(registry_view(auth), 201 if result.changed else 200, index)

    @bp.get("/registries")
    def registries() -> Response:
        block()
        views, index = store.read(lambda m: [registry_view(r) for r in m.secrets.all_registries()])
        return answer(views, 200, index)

    @bp.delete("/registries/<server>")
    def logout(server: str) -> Response:
        if store.read(lambda m: m.secrets.registry(server))[0] is None:
            raise ApiError(404, f"no credentials for registry {server}", "server")
        submit(DeleteRegistryAuth(request_id=uuid.uuid4().hex, server=server))
        return answer({"server": server, "deleted": True}, 200, store.read(lambda m: None)[1])

    return bp


def _name(name: str) -> None:
    try:
        parse_name(name)
    except Problem as exc:
        raise ValidationError("name", exc.message) from None


def _key_id(envelope: str) -> str:
    try:
        return sealed_key_id(envelope)
    except SealError:
        return ""


def _template_problem(raw: bytes) -> str | None:
    try:
        return template_problem(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return "a template is UTF-8 text"
