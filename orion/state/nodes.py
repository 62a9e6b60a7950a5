"""The node registry inside the replicated state machine: who is there, in what state.

Split from ``orion/state/machine.py`` (which dispatches to it) because node
commands touch nothing but nodes: registration, the membership status the
leader commits from gossip, and the readiness a node reports about its own
container engine. Deterministic like the rest of the machine: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from orion.domain.model import NODE_ALIVE, NODE_RESTARTING, NODE_STATES, NODE_SUSPECT, NodeInfo
from orion.state.commands import RegisterNode, SetNodeReadiness, SetNodeStatus

# Node statuses from which a node may announce its own restart (``restarting``).
_MAY_RESTART = frozenset({NODE_ALIVE, NODE_SUSPECT, NODE_RESTARTING})


def refused(error: str) -> dict[str, Any]:
    return {"ok": False, "error": error}


class NodeRegistry:
    """Registered nodes by id; changed only through the machine's dispatch."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}

    def register(self, cmd: RegisterNode, index: int) -> dict[str, Any]:
        node = NodeInfo.from_dict(cmd.node.to_dict())  # canonical form, as a restore would give
        if not node.id:
            return refused("a node needs an id")
        if node.status not in NODE_STATES:
            return refused(f"unknown node status {node.status!r}")
        old = self.nodes.get(node.id)
        status_index = old.status_index if old is not None and old.status == node.status else index
        self.nodes[node.id] = replace(node, status_index=status_index)
        return {"ok": True, "node": self.nodes[node.id].to_dict(), "created": old is None}

    def set_status(self, cmd: SetNodeStatus, index: int) -> dict[str, Any]:
        node = self.nodes.get(cmd.node_id)
        if node is None:
            return refused(f"node {cmd.node_id!r} is not registered")
        if cmd.status not in NODE_STATES:
            return refused(f"unknown node status {cmd.status!r}; expected one of {', '.join(NODE_STATES)}")
        if cmd.status == NODE_RESTARTING and node.status not in _MAY_RESTART:
            # Only the node itself announces a restart, and only from a life the cluster still
            # counts on: a drained (left) or dead node's tasks are gone already.
            return refused(f"node {node.id} is {node.status}: only an alive node can announce a restart")
        changed = node.status != cmd.status
        if changed:
            node = self.nodes[node.id] = replace(node, status=cmd.status, status_index=index)
        return {"ok": True, "node": node.to_dict(), "changed": changed}

    def set_readiness(self, cmd: SetNodeReadiness, index: int) -> dict[str, Any]:  # noqa: ARG002
        node = self.nodes.get(cmd.node_id)
        if node is None:
            return refused(f"node {cmd.node_id!r} is not registered")
        reason = "" if cmd.ready else cmd.reason
        changed = (node.ready, node.ready_reason) != (cmd.ready, reason)
        if changed:
            node = self.nodes[node.id] = replace(node, ready=cmd.ready, ready_reason=reason)
        return {"ok": True, "node": node.to_dict(), "changed": changed}
