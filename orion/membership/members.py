"""The member side of joining: what a member answers (``join.py`` is the joining side).

``GET /cluster/members`` lists the voters (and gossip addresses to join
through). "Admit me" (``POST /cluster/members``): the leader decides whether the
joiner becomes a voter or a non-voting replica (``Store.admit``, serialized
with every other membership change, ``orion/store/admission.py``) and answers
with the role — never a refusal that leaves the joiner outside. Removing a voter
(``DELETE /cluster/members/<addr>``) is a graceful leave. Adding or removing
needs the join proof, an HMAC of the address under the shared Raft secret:
knowing the API is not enough to change who votes.

The API (``orion/api/cluster.py``) is a thin caller: it parses, forwards a
request to the leader when this member does not lead (``NotLeader``), and
answers what these functions return.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from orion.membership.join import join_proof
from orion.store.port import Store

log = logging.getLogger("orion.membership.members")


def proof_matches(given: str, raft_secret: str, addr: str) -> bool:
    """Compared as bytes: ``hmac.compare_digest`` refuses a str with non-ASCII characters (a 500)."""
    return hmac.compare_digest(given.encode(), join_proof(raft_secret, addr).encode())


def listing(store: Store, ready: bool, voter_cap: int) -> dict[str, Any]:
    """The voters, the leader, whether this member is ready, the cap, and the registered
    nodes' gossip addresses (a joiner joins gossip through them)."""
    nodes, _ = store.read(lambda m: m.nodes())
    return {"members": store.members(), "leader": store.status().leader, "ready": ready,
            "voterCap": voter_cap, "gossip": sorted(n.gossip_addr for n in nodes if n.gossip_addr)}


def admit(store: Store, node_id: str, addr: str, voter_cap: int, timeout: float) -> dict[str, Any]:
    """On the leader: the joiner's role, why, the voters to dial and the leader.
    Raises NotLeader elsewhere (the caller forwards), StoreError when not committed."""
    admission = store.admit(addr, voter_cap, timeout)
    log.info("admitted %s (%s) as a %s: %s", node_id, addr, admission.role, admission.reason)
    return {**admission.to_dict(), "members": store.members(), "leader": store.status().leader}


def remove(store: Store, addr: str, timeout: float) -> dict[str, Any]:
    """On the leader: remove the voter ``addr`` (a graceful leave); the voters left."""
    store.change_membership("remove", addr, timeout=timeout)
    return {"members": store.members()}


def leader_api(store: Store, leader: str) -> str | None:
    """The API address of the node whose Raft address is ``leader`` (None: not registered yet)."""
    api, _ = store.read(lambda m: next((n.api_addr for n in m.nodes() if n.raft_addr == leader), None))
    return api or None
