"""The node registry inside the replicated state machine: who is there, in what state.

Split from ``orion/state/machine.py`` (which dispatches to it) because node
commands touch nothing but nodes: registration, the membership status the
leader commits from gossip, and the readiness a node reports about its own
container engine. Deterministic like the rest of the machine: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import replace

from orion.domain.model import NODE_ALIVE, NODE_RESTARTING, NODE_STATES, NODE_SUSPECT, NodeInfo
from orion.state.commands import RegisterNode, SetNodeReadiness, SetNodeStatus, handles
from orion.state.results import NodeChanged, NodeRegistered, RefusalKind, Refused

# Node statuses from which a node may announce its own restart (``restarting``).
_MAY_RESTART = frozenset({NODE_ALIVE, NODE_SUSPECT, NODE_RESTARTING})


class NodeRegistry:
    """Registered nodes by id; changed only through the machine's dispatch."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}

    @handles(RegisterNode)
    def register(self, cmd: RegisterNode, index: int) -> NodeRegistered | Refused:
        node = NodeInfo.from_dict(cmd.node.to_dict())  # canonical form, as a restore would give
        if not node.id:
            return Refused(RefusalKind.INVALID, "a node needs an id")
        if node.status not in NODE_STATES:
            return Refused(RefusalKind.INVALID, f"unknown node status {node.status!r}")
        old = self.nodes.get(node.id)
        status_index = old.status_index if old is not None and old.status == node.status else index
        self.nodes[node.id] = replace(node, status_index=status_index)
        return NodeRegistered(self.nodes[node.id], old is None)

    @handles(SetNodeStatus)
    def set_status(self, cmd: SetNodeStatus, index: int) -> NodeChanged | Refused:
        node = self.nodes.get(cmd.node_id)
        if node is None:
            return Refused(RefusalKind.NOT_FOUND, f"node {cmd.node_id!r} is not registered")
        if cmd.status not in NODE_STATES:
            return Refused(RefusalKind.INVALID,
                           f"unknown node status {cmd.status!r}; expected one of {', '.join(NODE_STATES)}")
        if cmd.status == NODE_RESTARTING and node.status not in _MAY_RESTART:
            # Only the node itself announces a restart, and only from a life the cluster still
            # counts on: a drained (left) or dead node's tasks are gone already.
            return Refused(RefusalKind.WRONG_STATE,
                           f"node {node.id} is {node.status}: only an alive node can announce a restart")
        changed = node.status != cmd.status
        if changed:
            node = self.nodes[node.id] = replace(node, status=cmd.status, status_index=index)
        return NodeChanged(node, changed)

    @handles(SetNodeReadiness)
    def set_readiness(self, cmd: SetNodeReadiness, index: int) -> NodeChanged | Refused:  # noqa: ARG002
        node = self.nodes.get(cmd.node_id)
        if node is None:
            return Refused(RefusalKind.NOT_FOUND, f"node {cmd.node_id!r} is not registered")
        reason = "" if cmd.ready else cmd.reason
        changed = (node.ready, node.ready_reason) != (cmd.ready, reason)
        if changed:
            node = self.nodes[node.id] = replace(node, ready=cmd.ready, ready_reason=reason)
        return NodeChanged(node, changed)
