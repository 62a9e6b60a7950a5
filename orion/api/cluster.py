"""The member side of joining, over HTTP (the decisions: ``orion/membership/members.py``).

``GET /cluster/members`` lists the voters (and gossip addresses to join
through). ``POST /cluster/members`` is "admit me" (``{"nodeId", "raftAddr", "proof"}``,
``orion/api/schema/cluster.py``), answered with the role the leader decided.
``DELETE /cluster/members/<addr>`` removes a voter (graceful leave). Only the
leader changes membership: any other member forwards the request to it, once.
Adding or removing needs the join proof (``members.proof_matches``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import requests
from flask import Blueprint, Response, jsonify, request

from orion.api.http import read_json_body
from orion.api.schema.cluster import AdmitRequest, parse_admit_request
from orion.api.schema.problems import ValidationError
from orion.membership import members as membership
from orion.peer_http import PeerHttp
from orion.store.port import NotLeader, Store, StoreError

log = logging.getLogger("orion.api.cluster")

# Set on a request one member forwards to the leader: a forwarded request is never forwarded again.
FORWARDED = "X-Orion-Forwarded"


def cluster_blueprint(store: Store, raft_secret: str, voter_cap: int, write_timeout: float,
                      ready: Callable[[], bool], peer: PeerHttp | None = None) -> Blueprint:
    """List members, admit a joiner, remove a voter. ``ready`` is the agent's readiness;
    ``peer`` is how this member forwards a membership request to the leader (None: it does not)."""
    bp = Blueprint("cluster", __name__)

    def on_leader(change: Callable[[], Response], proof_header: str | None = None,
                  body: Any = None) -> tuple[Response, int]:
        """Run ``change`` here if this node leads, else forward the request (and its ``body``) to the leader."""
        try:
            return change(), 200
        except NotLeader as exc:
            forwarded = _forward(store, peer, exc.leader, proof_header, write_timeout, body)
            if forwarded is not None:
                return forwarded
            return jsonify({"error": str(exc), "leader": exc.leader}), 503
        except StoreError as exc:
            return jsonify({"error": str(exc)}), exc.http_status

    @bp.get("/cluster/members")
    def members() -> Response:
        return jsonify(membership.listing(store, ready(), voter_cap))

    @bp.post("/cluster/members")
    def admit() -> tuple[Response, int]:
        try:
            raw = read_json_body(f"a JSON object like {AdmitRequest.EXAMPLE}")
            body = parse_admit_request(raw)
        except ValidationError as exc:
            return jsonify(exc.to_dict()), exc.status
        addr = body.raft_addr
        if not membership.proof_matches(body.proof, raft_secret, addr):
            return jsonify({"error": "join proof does not match this cluster's Raft secret",
                            "field": "proof"}), 403

        return on_leader(lambda: jsonify(membership.admit(store, body.node_id, addr, voter_cap, write_timeout)),
                         body=raw)

    @bp.delete("/cluster/members/<path:addr>")
    def remove_member(addr: str) -> tuple[Response, int]:
        proof = request.headers.get("X-Orion-Join-Proof", "")
        if not membership.proof_matches(proof, raft_secret, addr):
            return jsonify({"error": "X-Orion-Join-Proof header must carry the HMAC of the address "
                            "under the Raft secret", "field": "X-Orion-Join-Proof"}), 403

        return on_leader(lambda: jsonify(membership.remove(store, addr, write_timeout)), proof_header=proof)

    return bp


def _forward(store: Store, peer: PeerHttp | None, leader: str | None, proof_header: str | None,
             timeout: float, body: Any) -> tuple[Response, int] | None:
    """The leader's answer to this same request, or None when it cannot be asked (no peer,
    leader unknown or not registered yet, already forwarded once, unreachable)."""
    if peer is None or leader is None or request.headers.get(FORWARDED):
        return None
    api = membership.leader_api(store, leader)
    if not api:
        return None
    headers = {FORWARDED: "1", **({"X-Orion-Join-Proof": proof_header} if proof_header is not None else {})}
    try:
        resp = peer.request(request.method, api, request.path, timeout=timeout + 2, headers=headers,
                            json=body)
    except requests.RequestException as exc:
        log.info("could not forward %s %s to the leader at %s: %s", request.method, request.path, api, exc)
        return None
    return Response(resp.content, status=resp.status_code, content_type="application/json"), resp.status_code
