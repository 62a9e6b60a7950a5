"""What each listing shows: its columns (``-o table``/``wide``) over the API's rows.

Pure: rows in, cells out, so the tables are tested without a server. The rows
are the API's JSON objects, which ``-o json``/``yaml`` print as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orion.cli.output import Column
from orion.cli.render import cut, human_bytes, human_cpu, ports_text

Row = Mapping[str, Any]


def _dash(value: Any) -> Any:
    return "-" if value is None or value == "" else value


TASK_COLUMNS: tuple[Column, ...] = (
    Column("ID", lambda t: t.get("id")),
    Column("NAME", lambda t: t.get("name") or "-"),
    Column("IMAGE", lambda t: t.get("image")),
    Column("STATE", lambda t: t.get("state")),
    Column("NODE", lambda t: t.get("nodeId") or "-"),
    Column("PORTS", lambda t: ports_text(t.get("ports"))),
    Column("IP", lambda t: _dash(t.get("ip")), wide_only=True),
    Column("MEMORY", lambda t: human_bytes(t.get("memory"))),
    Column("CPU", lambda t: human_cpu(t.get("cpu"))),
    Column("DESIRED", lambda t: t.get("desired"), wide_only=True),
    Column("RESTARTS", lambda t: t.get("restarts", 0), wide_only=True),
    Column("EXIT", lambda t: _dash(t.get("exitCode")), wide_only=True),
    Column("GEN", lambda t: t.get("generation"), wide_only=True),
    Column("REASON", lambda t: cut(t.get("reason") or ""), wide_cell=lambda t: t.get("reason") or ""),
)


def _usage(node: Row, key: str, fmt: Any) -> str:
    used = (node.get("used") or {}).get(key)
    cap = (node.get("capacity") or {}).get(key)
    return f"{fmt(used)}/{fmt(cap)}"


def _gossip(node: Row) -> str:
    """The answering node's gossip view of this node, and its own health score if known."""
    state = (node.get("gossip") or {}).get("state", "-")
    score = node.get("healthScore")
    return state if score is None else f"{state} (health {score})"


def _labels(node: Row) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((node.get("labels") or {}).items())) or "-"


NODE_COLUMNS: tuple[Column, ...] = (
    Column("NODE", lambda n: str(n.get("id")) + (" *" if n.get("leader") else "")),
    Column("STATUS", lambda n: n.get("status")),
    Column("READY", lambda n: "yes" if n.get("ready", True) else "no"),
    Column("GOSSIP", _gossip),
    Column("API", lambda n: n.get("apiAddr")),
    Column("RAFT", lambda n: _dash(n.get("raftAddr")), wide_only=True),
    Column("GOSSIP ADDR", lambda n: _dash(n.get("gossipAddr")), wide_only=True),
    Column("MEMORY USED/CAP", lambda n: _usage(n, "memory", human_bytes)),
    Column("CPU USED/CAP", lambda n: _usage(n, "cpu", human_cpu)),
    Column("PORTS IN USE", lambda n: ",".join(n.get("portsInUse") or []) or "-", wide_only=True),
    Column("SUBNET", lambda n: _dash(n.get("subnet")), wide_only=True),
    Column("VTEP", lambda n: _dash((n.get("vtep") or {}).get("ip")), wide_only=True),
    Column("LABELS", _labels),
)


def published_text(publish: Sequence[Row] | None) -> str:
    """``8080->80/tcp,53->53/udp``: a service's ports opened on every host."""
    return ",".join(f"{p['published']}->{p['target']}/{p['protocol']}" for p in publish or ()) or "-"


def node_notes(nodes: Sequence[Row]) -> list[str]:
    """Under the nodes table: why a node is not ready (its engine does not answer), and the legend."""
    notes = [f"{n.get('id')} not ready: {n.get('readyReason') or '-'}" for n in nodes if not n.get("ready", True)]
    if any(n.get("leader") for n in nodes):
        notes.append("(* = Raft leader)")
    return notes


def member_rows(members: Row, nodes: Sequence[Row]) -> list[dict[str, Any]]:
    """One row per Raft voter (``GET /cluster/members``) and per non-voting replica (a
    registered node without a Raft address), with the node it is and its gossip view."""
    by_raft = {n.get("raftAddr"): n for n in nodes if n.get("raftAddr")}
    leader = members.get("leader")
    rows = []
    for addr in sorted(members.get("members") or []):
        node = by_raft.get(addr, {})
        rows.append({"nodeId": node.get("id"), "raftAddr": addr, "role": "leader" if addr == leader else "voter",
                     "gossipAddr": node.get("gossipAddr"), "gossip": (node.get("gossip") or {}).get("state"),
                     "status": node.get("status")})
    for node in nodes:
        if not node.get("raftAddr"):
            rows.append({"nodeId": node.get("id"), "raftAddr": None, "role": "non-voter",
                         "gossipAddr": node.get("gossipAddr"), "gossip": (node.get("gossip") or {}).get("state"),
                         "status": node.get("status")})
    return rows


def member_id(row: Row) -> str:
    """A member's id for ``-q``: its node id, or its Raft address for a voter not registered (yet)."""
    return str(row.get("nodeId") or row.get("raftAddr"))


MEMBER_COLUMNS: tuple[Column, ...] = (
    Column("NODE", lambda m: _dash(m.get("nodeId"))),
    Column("RAFT", lambda m: _dash(m.get("raftAddr"))),
    Column("ROLE", lambda m: m.get("role")),
    Column("GOSSIP", lambda m: _dash(m.get("gossip"))),
    Column("STATUS", lambda m: _dash(m.get("status"))),
    Column("GOSSIP ADDR", lambda m: _dash(m.get("gossipAddr")), wide_only=True),
)
