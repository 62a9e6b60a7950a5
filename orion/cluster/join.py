"""Joining the Raft cluster over HTTP, until gossip carries membership.

pysyncobj cannot join by itself: a new node must start with the current member
list as partners and be added by a member (``addNodeToCluster``). So a joining
node asks any member for the list (``GET /cluster/members``), starts its replica
with it, then asks that member to add it (``POST /cluster/members``).

The request is authenticated with an HMAC of the joiner's Raft address under
the shared Raft secret: knowing the API is not enough to add a voter.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable

import requests
from flask import Blueprint, jsonify, request

from orion.cluster.gossip_agent import GossipAgent
from orion.config import AgentConfig
from orion.peer_http import PeerHttp
from orion.state.raft import RaftStore
from orion.state.store import StoreError

log = logging.getLogger("orion.cluster.join")


class JoinError(RuntimeError):
    """The join target could not be reached or refused us."""


def join_proof(secret: str, raft_addr: str) -> str:
    return hmac.new(secret.encode(), raft_addr.encode(), hashlib.sha256).hexdigest()


def _why(exc: Exception) -> str:
    """A TLS failure says which (an untrusted certificate, a refused client certificate):
    the operator fixes tls_ca or the certificates, not the address."""
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS: {exc}"
    return exc.__class__.__name__


class JoinClient:
    """The joining side: find the members, then ask to be one."""

    def __init__(self, cfg: AgentConfig, gossip: GossipAgent | None = None, discover_timeout: float = 60.0,
                 *, peer: PeerHttp) -> None:
        self._cfg = cfg
        self._gossip = gossip
        self._timeout = discover_timeout
        # Scheme, TLS trust and identity, API token: the same for every call to a peer.
        self._peer = peer
        self._targets = list(cfg.join)

    def _api_targets(self) -> list[str]:
        """``--join`` names a gossip address (HOST:GOSSIP_PORT) or, as a fallback, an API
        address. Gossip first: if a member answers, the API addresses come from the
        members' gossip metadata."""
        if self._gossip is None or self._gossip.join(self._cfg.join) == 0:
            return list(self._cfg.join)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not self._gossip.api_addrs():
            time.sleep(0.05)
        return self._gossip.api_addrs() or list(self._cfg.join)

    def discover_members(self) -> tuple[list[str], bool]:
        """Raft addresses of the current voters, from the first target that answers, and
        whether this node should join as a voter (False once the voter cap is reached)."""
        deadline = time.monotonic() + self._timeout
        errors: list[str] = []
        while time.monotonic() < deadline:
            self._targets = self._api_targets()
            for target in self._targets:
                try:
                    resp = self._peer.get(target, "/cluster/members", timeout=2)
                    if resp.ok:
                        body = resp.json()
                        if self._gossip is not None:
                            self._gossip.join(body.get("gossip", ()))
                        voters = [m for m in body["members"] if m != self._cfg.raft_addr]
                        return voters, len(voters) < int(body.get("voter_cap", len(voters) + 1))
                    errors.append(f"{target}: HTTP {resp.status_code} {resp.text[:200]}")
                except (requests.RequestException, ValueError, KeyError) as exc:
                    errors.append(f"{target}: {_why(exc)}")
            time.sleep(0.5)
        raise JoinError(f"no join target answered within {self._timeout:.0f}s: {'; '.join(errors[-3:])}; "
                        "check --join (HOST:GOSSIP_PORT or HOST:API_PORT of a running member)")

    def request_membership(self, timeout: float) -> None:
        body = {"node_id": self._cfg.id, "raft_addr": self._cfg.raft_addr,
                "proof": join_proof(self._cfg.raft_secret, self._cfg.raft_addr)}
        errors = []
        for target in self._targets:
            try:
                resp = self._peer.post(target, "/cluster/members", json=body, timeout=timeout + 2)
            except requests.RequestException as exc:
                errors.append(f"{target}: {_why(exc)}")
                continue
            if resp.ok:
                log.info("joined the cluster through %s", target)
                return
            errors.append(f"{target}: HTTP {resp.status_code} {resp.text[:200]}")
        raise JoinError("; ".join(errors))


def cluster_blueprint(store: RaftStore, cfg: AgentConfig, ready: Callable[[], bool]) -> Blueprint:
    """The member side: list members, add a voter, remove one (graceful leave)."""
    bp = Blueprint("cluster", __name__)

    @bp.get("/cluster/members")
    def members():  # noqa: ANN202 - Flask view
        nodes, _ = store.read(lambda m: m.nodes())
        return jsonify({"members": store.members(), "leader": store.status().leader, "ready": ready(),
                        "voter_cap": cfg.voter_cap,
                        "gossip": sorted(n.gossip_addr for n in nodes if n.gossip_addr)})

    @bp.post("/cluster/members")
    def add_member():  # noqa: ANN202
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("raft_addr"), str):
            return jsonify({"error": "body must be a JSON object with raft_addr", "field": "raft_addr"}), 400
        addr = body["raft_addr"]
        expected = join_proof(cfg.raft_secret, addr)
        if not hmac.compare_digest(str(body.get("proof", "")), expected):
            return jsonify({"error": "join proof does not match this cluster's Raft secret",
                            "field": "proof"}), 403
        if addr not in store.members() and len(store.members()) >= cfg.voter_cap:
            return jsonify({"error": f"the cluster has {len(store.members())} voters (voter_cap {cfg.voter_cap}); "
                            "join as a non-voting replica (GET /cluster/members tells a joiner which)",
                            "field": "raft_addr"}), 409
        try:
            store.change_membership("add", addr, timeout=cfg.write_timeout)
        except StoreError as exc:
            return jsonify({"error": str(exc)}), exc.http_status
        log.info("added %s (%s) to the Raft cluster", body.get("node_id", "?"), addr)
        return jsonify({"members": store.members()}), 200

    @bp.delete("/cluster/members/<path:addr>")
    def remove_member(addr: str):  # noqa: ANN202
        proof = request.headers.get("X-Orion-Join-Proof", "")
        if not hmac.compare_digest(proof, join_proof(cfg.raft_secret, addr)):
            return jsonify({"error": "X-Orion-Join-Proof header must carry the HMAC of the address "
                            "under the Raft secret", "field": "X-Orion-Join-Proof"}), 403
        try:
            store.change_membership("remove", addr, timeout=cfg.write_timeout)
        except StoreError as exc:
            return jsonify({"error": str(exc)}), exc.http_status
        return jsonify({"members": store.members()}), 200

    return bp
