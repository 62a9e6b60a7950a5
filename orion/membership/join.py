"""Joining the Raft cluster: the joining side (the member side is ``members.py``).

pysyncobj cannot join by itself: a new node must start with the current member
list as partners and be added by the leader (``addNodeToCluster``). So a joining
node finds members through gossip (``--join`` names a gossip address; their API
addresses come from gossip metadata), asks one for the list (``GET
/cluster/members``), starts its replica with it — holding its elections back —
and asks to be admitted (``POST /cluster/members``). The leader, not the
joiner, decides whether it becomes a voter or a non-voting replica, from its
own configuration at that moment (``orion/store/admission.py``); the answer is
a role, never a refusal, and asking again gets the same answer. Gossip finds
the members; Raft membership itself changes only through these authenticated
requests and the leader's autopilot.

The request is authenticated with an HMAC of the joiner's Raft address under
the shared Raft secret: knowing the API is not enough to add a voter.

The agent is a thin caller: :func:`join_until_admitted` asks until the leader
answers and applies the answer to the node's replica; :func:`registered_as` and
:func:`gossip_seeds` are what the answer and the registry mean for the rest of
the node.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, get_args

import requests

from orion.domain.model import NodeInfo
from orion.membership.gossip_agent import GossipAgent
from orion.peer_http import PeerHttp
from orion.store.admission import REPLICA, Role

log = logging.getLogger("orion.membership.join")


class JoinError(RuntimeError):
    """The join target could not be reached or refused us."""


@dataclass(frozen=True)
class Admitted:
    """The leader's answer: this node's role, why, and the voters to dial."""

    role: Role
    reason: str
    members: list[str]


def join_proof(secret: str, raft_addr: str) -> str:
    return hmac.new(secret.encode(), raft_addr.encode(), hashlib.sha256).hexdigest()


def _field(resp: requests.Response) -> str | None:
    """The field a 4xx answer names, if it is a JSON error body."""
    try:
        body = resp.json()
    except ValueError:
        return None
    return body.get("field") if isinstance(body, dict) else None


def _why(exc: Exception) -> str:
    """A TLS failure says which (an untrusted certificate, a refused client certificate):
    the operator fixes tls_ca or the certificates, not the address."""
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS: {exc}"
    return exc.__class__.__name__


class JoinClient:
    """The joining side: find the members, then ask to be one."""

    def __init__(self, node_id: str, raft_addr: str, raft_secret: str, join: Sequence[str],
                 gossip: GossipAgent | None = None, discover_timeout: float = 60.0, *, peer: PeerHttp) -> None:
        """``join``: the ``--join`` targets; ``raft_secret`` signs the request (``join_proof``);
        ``peer`` carries the scheme, TLS trust and identity and the API token of every call."""
        self._node_id, self._raft_addr, self._raft_secret = node_id, raft_addr, raft_secret
        self._join = tuple(join)
        self._gossip = gossip
        self._timeout = discover_timeout
        self._peer = peer
        self._targets = list(join)

    def _api_targets(self) -> list[str]:
        """``--join`` names a gossip address (HOST:GOSSIP_PORT) or, as a fallback, an API
        address. Gossip first: if a member answers, the API addresses come from the
        members' gossip metadata."""
        if self._gossip is None or self._gossip.join(self._join) == 0:
            return list(self._join)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not self._gossip.api_addrs():
            time.sleep(0.05)
        return self._gossip.api_addrs() or list(self._join)

    def discover_members(self) -> list[str]:
        """Raft addresses of the current voters, from the first target that answers: the
        partners this node starts with. Whether it will vote is the leader's to decide."""
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
                        return [str(m) for m in body["members"] if m != self._raft_addr]
                    errors.append(f"{target}: HTTP {resp.status_code} {resp.text[:200]}")
                except (requests.RequestException, ValueError, KeyError) as exc:
                    errors.append(f"{target}: {_why(exc)}")
            time.sleep(0.5)
        raise JoinError(f"no join target answered within {self._timeout:.0f}s: {'; '.join(errors[-3:])}; "
                        "check --join (HOST:GOSSIP_PORT or HOST:API_PORT of a running member)")

    def request_admission(self, timeout: float) -> Admitted:
        """Ask to be admitted (any member: one that does not lead forwards to the leader)."""
        proof = join_proof(self._raft_secret, self._raft_addr)
        body = {"nodeId": self._node_id, "raftAddr": self._raft_addr, "proof": proof}
        # A member of the release before camelCase bodies (a rolling upgrade adding a host)
        # refuses this one with a 400 naming ``raft_addr``: it is asked again in its words.
        legacy = {"node_id": self._node_id, "raft_addr": self._raft_addr, "proof": proof}
        errors = []
        for target in self._targets:
            try:
                resp = self._peer.post(target, "/cluster/members", json=body, timeout=timeout + 4)
                if resp.status_code == 400 and _field(resp) == "raft_addr":
                    resp = self._peer.post(target, "/cluster/members", json=legacy, timeout=timeout + 4)
                answer = resp.json() if resp.ok else None
            except (requests.RequestException, ValueError) as exc:
                errors.append(f"{target}: {_why(exc)}")
                continue
            if isinstance(answer, dict) and answer.get("role") in get_args(Role):
                log.info("admitted through %s as a %s: %s", target, answer["role"], answer.get("reason", ""))
                return Admitted(answer["role"], str(answer.get("reason", "")),
                                [str(m) for m in answer.get("members", ())])
            errors.append(f"{target}: HTTP {resp.status_code} {resp.text[:200]}")
        raise JoinError("; ".join(errors))


class Joining(Protocol):
    """The node's replica as joining sees it (``RaftStore.join_as``)."""

    def join_as(self, role: Role, members: list[str]) -> None:
        """A voter opens its election gate; a replica restarts as a non-voting one."""


def join_until_admitted(join: JoinClient, replica: Joining, stop: threading.Event,
                        timeout: float) -> Admitted | None:
    """Ask to be admitted; retry (the cluster may be electing) until the leader answers,
    then take the role it gave: a voter starts taking part in elections, a replica
    restarts its replica as a non-voting one. None when ``stop`` is set first."""
    while not stop.is_set():
        try:
            answer = join.request_admission(timeout=timeout)
        except JoinError as exc:
            log.warning("not admitted yet: %s", exc)
            stop.wait(1.0)
            continue
        replica.join_as(answer.role, answer.members)
        log.info("joined as a %s: %s", answer.role, answer.reason)
        return answer
    return None


def registered_as(info: NodeInfo, role: Role) -> NodeInfo:
    """How the node registers in that role: a replica without a Raft address, so autopilot
    never counts it as a voter to add (pysyncobj cannot promote a replica in place)."""
    return replace(info, raft_addr="") if role == REPLICA else info


def gossip_seeds(nodes: Iterable[NodeInfo], self_id: str, join: Sequence[str]) -> list[str]:
    """Where to join gossip: every registered node but this one (covers restarts, where no
    ``--join`` is given, and nodes that joined through the API address), then ``--join``."""
    return [n.gossip_addr for n in nodes if n.id != self_id and n.gossip_addr] + list(join)
