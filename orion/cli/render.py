"""Human-readable output of the CLI: pure functions from API JSON to text.

Kept apart from the commands so tables are tested without a server, and so the
``--json`` path and the human path read the very same answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

# A reason longer than this is cut in tables; `orion inspect` shows it whole.
REASON_WIDTH = 60


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces, like docker's."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def human_bytes(n: int | float | None) -> str:
    """Binary units, as the engine counts them: 104857600 -> 100Mi."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("", "Ki", "Mi", "Gi", "Ti"):
        if abs(value) < 1024 or unit == "Ti":
            text = f"{value:.1f}".rstrip("0").rstrip(".") if unit else str(int(value))
            return f"{text}{unit}"
        value /= 1024
    return str(n)  # pragma: no cover


def human_cpu(cores: float | int | None) -> str:
    if cores is None:
        return "-"
    return f"{cores:g}"


def ports_text(ports: dict[str, Any] | None) -> str:
    """``{"80/tcp": 8080}`` -> ``8080->80/tcp``; a dynamic port not yet known shows ``?``."""
    if not ports:
        return ""
    parts = []
    for key, host in sorted(ports.items()):
        parts.append(f"{host if host else '?'}->{key}")
    return ",".join(parts)


def cut(text: str, width: int = REASON_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def task_summary(task: dict[str, Any]) -> str:
    """One line after `orion run`/`orion stop`: where it went, or why it waits."""
    state = task.get("state", "?")
    where = f" on {task['nodeId']}" if task.get("nodeId") else ""
    ports = ports_text(task.get("ports"))
    text = f"{task.get('id')}: {state}{where}"
    if ports:
        text += f", ports {ports}"
    if task.get("reason"):
        text += f" ({task['reason']})"
    return text


def count_states(tasks: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for task in tasks:
        state = str(task.get("state"))
        counts[state] = counts.get(state, 0) + 1
    return dict(sorted(counts.items()))


def status_text(healthy: bool, health: dict[str, Any], raft: dict[str, Any] | None,
                nodes: Sequence[dict[str, Any]] | None, counts: dict[str, int] | None) -> str:
    leader = health.get("leader") or "none"
    lines = [f"health:   {'ok' if healthy else 'NO LEADER (writes refused; is a majority of nodes up?)'}",
             f"leader:   {leader}"]
    if raft:
        role = "leader" if raft.get("is_leader") else "follower"
        term, commit, applied = raft.get("term"), raft.get("commit_index"), raft.get("applied_index")
        lines.append(f"node:     {health.get('node')} at {raft.get('self')} "
                     f"({role}, term {term}, commit {commit}, applied {applied})")
        lines.append(f"members:  {', '.join(raft.get('members') or []) or '-'}")
    if nodes is not None:
        by_status = count_states({"state": n.get("status")} for n in nodes)
        detail = ", ".join(f"{v} {k}" for k, v in by_status.items())
        lines.append(f"nodes:    {len(nodes)}" + (f" ({detail})" if detail else ""))
    if counts is not None:
        lines.append("tasks:    " + (", ".join(f"{v} {k}" for k, v in counts.items()) or "none"))
    return "\n".join(lines)
