"""Gossip in the agent: discovery, node metadata and the member view.

The SWIM/Lifeguard member list (``orion/gossip``) is the source of truth for
who is alive; :meth:`GossipAgent.view` is what the leader's liveness
(``orion/membership/liveness.py``) turns into registry statuses. Raft membership
itself is changed only through authenticated requests (``orion/membership/join.py``)
and the autopilot: gossip news alone never adds a voter.

Encryption: the gossip key is the configured ``gossip_key`` or, by default,
derived from the Raft secret, so a cluster that has a Raft secret gossips
encrypted and authenticated with no extra setting.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from orion.domain.model import NODE_ALIVE, NodeInfo, Resources
from orion.gossip import codec
from orion.gossip.config import GossipConfig
from orion.gossip.member import MemberState
from orion.gossip.meta import NodeMeta
from orion.gossip.transport import Addr, GossipNode, parse_addr

log = logging.getLogger("orion.membership.gossip_agent")


def gossip_keyring(gossip_key: str, raft_secret: str) -> codec.Keyring | None:
    """Keys from ``gossip_key`` (base64, comma-separated, primary first), else one derived
    from the Raft secret; None only for an insecure loopback cluster."""
    if gossip_key:
        return codec.Keyring(tuple(base64.b64decode(k.strip()) for k in gossip_key.split(",") if k.strip()))
    if raft_secret:
        return codec.Keyring((hashlib.sha256(b"orion-gossip-v1\0" + raft_secret.encode()).digest(),))
    return None


def gossip_config(probe_interval: float) -> GossipConfig:
    """memberlist's LAN profile, with the agent's probe period (the probe timeout scales with it)."""
    base = GossipConfig()
    scale = probe_interval / base.probe_interval
    return replace(base, probe_interval=probe_interval, probe_timeout=base.probe_timeout * scale)


def node_meta(info: NodeInfo, used: Resources | None = None) -> dict[str, Any]:
    return NodeMeta(node_id=info.id, api_addr=info.api_addr, raft_addr=info.raft_addr, gossip_addr=info.gossip_addr,
                    capacity=info.capacity, used=used or Resources(), labels=info.labels, role="server").to_dict()


class GossipAgent:
    """The agent's gossip node and what the rest of the agent asks of it."""

    def __init__(self, info: NodeInfo, bind: Addr, config: GossipConfig, key: codec.Keyring | None) -> None:
        """``info``: this node as it registers (its gossip metadata); ``bind``: where to listen."""
        self._id = info.id
        self._self_addr = parse_addr(info.gossip_addr)
        self.node = GossipNode(config, info.id, bind, meta=node_meta(info), key=key)

    def start(self) -> None:
        self.node.start()

    def join(self, seeds: Iterable[str]) -> int:
        """Gossip-join the given HOST:GOSSIP_PORT seeds; returns how many members answered."""
        addrs = []
        for seed in seeds:
            try:
                addr = parse_addr(seed)
            except ValueError:
                continue
            if addr != self._self_addr:
                addrs.append(addr)
        if not addrs:
            return 0
        return self.node.join(addrs, timeout=2.0)

    def api_addrs(self) -> list[str]:
        """API addresses of live members, learned from their gossip metadata."""
        out = []
        for m in self.node.members():
            api = m.meta.get("api") if m.name != self._id else None
            if api and m.state == NODE_ALIVE:
                out.append(str(api))
        return sorted(out)

    def nodes_view(self) -> dict[str, dict[str, Any]]:
        """Extra per-node fields for GET /nodes: this node's gossip view."""
        view: dict[str, dict[str, Any]] = {}
        for m in self.node.members():
            view[m.name] = {"gossip": {"state": m.state, "incarnation": m.incarnation,
                                       "addr": f"{m.addr[0]}:{m.addr[1]}"}}
        view.setdefault(self._id, {})["healthScore"] = self.node.health_score
        return view

    def members(self) -> list[MemberState]:
        return self.node.members()

    def view(self) -> dict[str, tuple[str, int]]:
        """node id -> (gossip state, incarnation): what liveness judges from."""
        return {m.name: (m.state, m.incarnation) for m in self.node.members()}

    def stop(self, leave: bool = True) -> None:
        try:
            if leave:
                self.node.leave(linger=0.3)
        finally:
            self.node.stop()
