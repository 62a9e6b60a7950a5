"""Whether this node must register (again), and whether the cluster still needs its name.

A node registers once at start (``orion/agent/compose.py``), but its record can go
afterwards: a snapshot restore replaces every node record with the file's, where this node
may be missing, or recorded with another host's addresses (a restore into a new cluster). A
node whose record is gone is invisible to placement; one recorded with the wrong addresses is
unreachable to its peers. So the registration loop keeps comparing the record with what this
node is, and registers again when they differ. Incarnation, status, readiness and capacity
are left out: those move by their own commands, and the capacity is re-measured only at start.

The cluster's name (``NameCluster``) is drawn by whichever node first sees the state unnamed
while every node reads the command (``SNAPSHOT_LOG_VERSION``): a rival naming is refused by
the machine, so two nodes drawing at once is harmless.

Pure: values in, commands out.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from orion.domain.model import NodeInfo
from orion.state.commands import Command, NameCluster, RegisterNode
from orion.state.entries import SNAPSHOT_LOG_VERSION


def record_gap(record: NodeInfo | None, info: NodeInfo) -> str:
    """Why ``record`` (the state's) no longer says who this node (``info``) is, or ""."""
    if record is None:
        return f"node {info.id} is not registered (a restored state without it?)"
    for name in ("api_addr", "raft_addr", "gossip_addr"):
        if getattr(record, name) != getattr(info, name):
            return f"node {info.id} is recorded at {name} {getattr(record, name)}, it is {getattr(info, name)}"
    if record.labels != info.labels or record.offers != info.offers:
        return f"node {info.id} is recorded with other labels, host volumes, host devices or privilege"
    return ""


def plan(record: NodeInfo | None, info: NodeInfo, cluster_id: str, log_version: int,
         new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> tuple[list[Command], str]:
    """(the commands to submit, the sentence saying why; "" when there is nothing to do)."""
    commands: list[Command] = []
    why: list[str] = []
    gap = record_gap(record, info)
    if gap:
        commands.append(RegisterNode(request_id=new_id(), node=info))
        why.append(f"registering again: {gap}")
    if not cluster_id and log_version >= SNAPSHOT_LOG_VERSION:
        name = new_id()
        commands.append(NameCluster(request_id=new_id(), cluster_id=name))
        why.append(f"naming the cluster {name}")
    return commands, "; ".join(why)
