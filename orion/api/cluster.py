"""The member side of joining (``orion/cluster/join.py`` is the joining side).

``GET /cluster/members`` lists the voters (and gossip addresses to join
through), ``POST /cluster/members`` adds a voter, ``DELETE
/cluster/members/<addr>`` removes one (graceful leave). Adding or removing
needs the join proof, an HMAC of the address under the shared Raft secret:
knowing the API is not enough to change who votes.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

from flask import Blueprint, Response, jsonify, request

from orion.cluster.join import join_proof
from orion.state.store import Store, StoreError

log = logging.getLogger("orion.api.cluster")


def cluster_blueprint(store: Store, raft_secret: str, voter_cap: int, write_timeout: float,
                      ready: Callable[[], bool]) -> Blueprint:
    """List members, add a voter, remove one. ``ready`` is the agent's readiness."""
    bp = Blueprint("cluster", __name__)

    @bp.get("/cluster/members")
    def members() -> Response:
        nodes, _ = store.read(lambda m: m.nodes())
        return jsonify({"members": store.members(), "leader": store.status().leader, "ready": ready(),
                        "voter_cap": voter_cap,
                        "gossip": sorted(n.gossip_addr for n in nodes if n.gossip_addr)})

    @bp.post("/cluster/members")
    def add_member() -> tuple[Response, int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("raft_addr"), str):
            return jsonify({"error": "body must be a JSON object with raft_addr", "field": "raft_addr"}), 400
        addr = body["raft_addr"]
        if not hmac.compare_digest(str(body.get("proof", "")), join_proof(raft_secret, addr)):
            return jsonify({"error": "join proof does not match this cluster's Raft secret",
                            "field": "proof"}), 403
        voters = store.members()
        if addr not in voters and len(voters) >= voter_cap:
            return jsonify({"error": f"the cluster has {len(voters)} voters (voter_cap {voter_cap}); "
                            "join as a non-voting replica (GET /cluster/members tells a joiner which)",
                            "field": "raft_addr"}), 409
        try:
            store.change_membership("add", addr, timeout=write_timeout)
        except StoreError as exc:
            return jsonify({"error": str(exc)}), exc.http_status
        log.info("added %s (%s) to the Raft cluster", body.get("node_id", "?"), addr)
        return jsonify({"members": store.members()}), 200

    @bp.delete("/cluster/members/<path:addr>")
    def remove_member(addr: str) -> tuple[Response, int]:
        proof = request.headers.get("X-Orion-Join-Proof", "")
        if not hmac.compare_digest(proof, join_proof(raft_secret, addr)):
            return jsonify({"error": "X-Orion-Join-Proof header must carry the HMAC of the address "
                            "under the Raft secret", "field": "X-Orion-Join-Proof"}), 403
        try:
            store.change_membership("remove", addr, timeout=write_timeout)
        except StoreError as exc:
            return jsonify({"error": str(exc)}), exc.http_status
        return jsonify({"members": store.members()}), 200

    return bp
