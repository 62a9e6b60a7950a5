"""What a node tells about the cluster and itself: ``GET /nodes``, ``/raft``, ``/health``, and the
API's own description and metrics (``/openapi.json``, ``/metrics``).

All reads: ``/nodes`` (linearizable unless ``?stale``) and ``/raft`` (this
node's own view, never a read point) answer with the index they reflect and
take blocking queries; ``/health`` is what load
balancers and systemd probe (no token, ``ApiDeps.open_paths``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request

from orion.api.http import AppliedSignal, answer
from orion.api.schema.openapi import openapi_document
from orion.api.schema.queries import BlockingQuery, BlockingReadQuery, parse_query
from orion.api.views import node_view
from orion.domain.model import Resources
from orion.store.port import Store
from orion.version import orion_version


def status_blueprint(store: Store, node_id: str, applied: AppliedSignal,
                     nodes_view: Callable[[], Mapping[str, Mapping[str, Any]]] | None = None,
                     metrics_wsgi: Callable[..., Any] | None = None) -> Blueprint:
    """``nodes_view``: this node's gossip view of each node, merged into ``GET /nodes``;
    ``metrics_wsgi``: served at ``GET /metrics`` when given."""
    bp = Blueprint("status", __name__)

    @bp.get("/nodes")
    def list_nodes() -> Response:
        applied.block(parse_query(BlockingReadQuery, request.args))
        leader = store.status().leader
        extras = nodes_view() if nodes_view is not None else {}

        def snapshot(m: Any) -> list[tuple[Any, Resources, Any, Any]]:
            leases = {holder: lease for lease in m.leases() for holder in lease.holders}
            out = []
            for node in m.nodes():
                usage = m.usage(node.id)
                out.append((node, usage.used, usage.ports, leases.get(node.id)))
            return out

        rows, index = store.read(snapshot)
        return answer([node_view(n, used, ports, leader, extras.get(n.id), lease) for n, used, ports, lease in rows],
                      200, index)

    @bp.get("/raft")
    def raft_status() -> Response:
        applied.block(parse_query(BlockingQuery, request.args))  # this node's own view: no read point
        status = store.status()
        digest, digest_index = store.digest()  # replicas at equal indexes must show equal digests
        return answer({**status.to_dict(), "digest": digest, "digestIndex": digest_index}, 200,
                      status.applied_index)

    @bp.get("/health")
    def health() -> tuple[Response, int]:
        status = store.status()
        ok = store.ready()  # a leader with a quorum, and this replica caught up (Store.ready)
        body = {"status": "ok" if ok else "no-leader", "leader": status.leader, "node": node_id,
                "appliedIndex": status.applied_index, "version": orion_version()}
        return jsonify(body), 200 if ok else 503

    @bp.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(openapi_document())

    if metrics_wsgi is not None:
        metrics_app = metrics_wsgi

        @bp.get("/metrics")
        def metrics() -> Response:
            return Response.from_app(metrics_app, request.environ)

    return bp
