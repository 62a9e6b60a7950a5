"""``orion top``'s pure parts: the view of the cluster, the events between two views,
the rows it shows, and what a key does. No I/O, no clock (``now`` comes in), no
terminal: ``orion/cli/top.py`` feeds these from the API and draws what they return.

The events line is derived, not reported: the API has no event stream, so two
successive views are compared (a task's node changed: it was placed or moved; a
node's registry status became ``dead``: it died). An event the watcher did not
see between two views (a task placed and stopped within one answer) is not shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

Json = Mapping[str, Any]

TASK_COLUMNS = ("ID", "NAME", "STATE", "NODE", "PORTS", "RESTARTS", "AGE")
# Tasks that have ended are listed after the live ones whatever the sort: a cluster
# that ran for a while has many of them, and the operator looks at what runs.
ENDED = frozenset({"stopped", "failed", "completed", "lost"})


@dataclass(frozen=True)
class View:
    """One moment of the cluster as this node's API showed it."""

    nodes: Mapping[str, Json] = field(default_factory=dict)  # id -> GET /nodes entry
    tasks: Mapping[str, Json] = field(default_factory=dict)  # id -> GET /tasks entry
    raft: Json = field(default_factory=dict)  # GET /raft
    healthy: bool | None = None  # GET /health: a leader is known (None: not asked yet)

    def leader_id(self) -> str | None:
        return next((n for n, v in self.nodes.items() if v.get("leader")), None)


@dataclass(frozen=True)
class Event:
    kind: str  # task-placed, task-moved, task-lost, task-failed, task-restarted,
    # node-joined, node-status, leader-changed, quorum-lost, quorum-back
    subject: str
    detail: str = ""

    def text(self) -> str:
        return {
            "task-placed": f"task {self.subject} placed on {self.detail}",
            "task-moved": f"task {self.subject} moved {self.detail}",
            "task-lost": f"task {self.subject} lost ({self.detail})",
            "task-failed": f"task {self.subject} failed ({self.detail})",
            "task-restarted": f"task {self.subject} restarted ({self.detail})",
            "node-joined": f"node {self.subject} joined",
            "node-status": f"node {self.subject} {self.detail}",
            "leader-changed": f"leader is now {self.subject}",
            "quorum-lost": f"{self.subject} has no leader: the cluster has lost quorum or is electing",
            "quorum-back": f"{self.subject} has a leader again",
        }.get(self.kind, f"{self.kind} {self.subject} {self.detail}")


def task_events(old: Mapping[str, Json], new: Mapping[str, Json]) -> list[Event]:
    events = []
    for task_id, task in new.items():
        before = old.get(task_id, {})
        node, was_on = task.get("nodeId"), before.get("nodeId")
        if node and node != was_on:
            kind, where = ("task-moved", f"{was_on} -> {node}") if was_on else ("task-placed", node)
            events.append(Event(kind, task_id, where))
        state = task.get("state")
        if state != before.get("state") and state in ("lost", "failed"):
            events.append(Event(f"task-{state}", task_id, str(task.get("reason") or state)))
        restarts = int(task.get("restarts") or 0)
        if before and restarts > int(before.get("restarts") or 0):
            events.append(Event("task-restarted", task_id, f"{restarts} restarts"))
    return events


def node_events(old: Mapping[str, Json], new: Mapping[str, Json]) -> list[Event]:
    events = []
    for node_id, node in new.items():
        if node_id not in old:
            events.append(Event("node-joined", node_id))
        elif node.get("status") != old[node_id].get("status"):
            events.append(Event("node-status", node_id, str(node.get("status"))))
    return events


def derive_events(old: View, new: View, self_name: str = "this node") -> list[Event]:
    """What changed from ``old`` to ``new``, as the events line says it. A first view
    (``old`` empty) is the starting picture, not a burst of placements."""
    events: list[Event] = []
    if old.healthy is not None and old.healthy != new.healthy and new.healthy is not None:
        events.append(Event("quorum-back" if new.healthy else "quorum-lost", self_name))
    if old.nodes:
        events += node_events(old.nodes, new.nodes)
        leader = new.leader_id()
        if leader and leader != old.leader_id():
            events.append(Event("leader-changed", leader))
    if old.tasks:
        events += task_events(old.tasks, new.tasks)
    return events


# -- what the screen lists ------------------------------------------------------------------------
def human_age(seconds: float, before_start: bool) -> str:
    """The API has no creation time (the state machine has no clock): age is since this
    ``orion top`` first saw the task, ``>=`` when the task was there when it started."""
    s = int(seconds)
    text = f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h"
    return (">=" if before_start else "") + text


def ports_text(ports: Json | None) -> str:
    return ",".join(f"{host if host else '?'}->{key}" for key, host in sorted((ports or {}).items()))


def task_row(task: Json, first_seen: float, before_start: bool, now: float) -> tuple[str, ...]:
    return (str(task.get("id")), str(task.get("name") or "-"), str(task.get("state")),
            str(task.get("nodeId") or "-"), ports_text(task.get("ports")), str(task.get("restarts") or 0),
            human_age(now - first_seen, before_start))


def _sort_key(row: tuple[str, ...], column: int) -> tuple[Any, ...]:
    ended = row[2] in ENDED
    value: Any = row[column]
    if TASK_COLUMNS[column] == "RESTARTS":
        value = int(value)
    elif TASK_COLUMNS[column] == "AGE":
        value = -_age_seconds(value)
    return (ended, value, row[0])


def _age_seconds(text: str) -> int:
    number = text.lstrip(">=")
    return int(number[:-1]) * {"s": 1, "m": 60, "h": 3600}[number[-1]]


def task_rows(tasks: Sequence[tuple[str, ...]], text: str, sort_column: int) -> list[tuple[str, ...]]:
    """Rows containing ``text`` (any column, case-insensitive), sorted by the column."""
    needle = text.lower()
    kept = [r for r in tasks if not needle or any(needle in cell.lower() for cell in r)]
    return sorted(kept, key=lambda r: _sort_key(r, sort_column))


# -- keys -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ui:
    """What the operator has set: the filter (and whether it is being typed), the sort
    column, the selected node, and a drain waiting for its confirmation."""

    filter: str = ""
    typing: bool = False
    sort: int = 0
    selected: int = 0
    confirm_drain: str | None = None


@dataclass(frozen=True)
class Drain:
    node_id: str


class Quit:
    pass


Action = Drain | Quit | None
ENTER, ESCAPE, BACKSPACE, UP, DOWN = "enter", "escape", "backspace", "up", "down"


def on_key(ui: Ui, key: str, node_ids: Sequence[str]) -> tuple[Ui, Action]:
    """The new UI state and what to do, for one key. Keys are characters or the names above."""
    if ui.confirm_drain is not None:
        if key in ("y", "Y"):
            return replace(ui, confirm_drain=None), Drain(ui.confirm_drain)
        return replace(ui, confirm_drain=None), None  # anything else cancels
    if ui.typing:
        if key == ENTER:
            return replace(ui, typing=False), None
        if key == ESCAPE:
            return replace(ui, typing=False, filter=""), None
        if key == BACKSPACE:
            return replace(ui, filter=ui.filter[:-1]), None
        if len(key) == 1 and key.isprintable():
            return replace(ui, filter=ui.filter + key), None
        return ui, None
    if key == "q":
        return ui, Quit()
    if key == "/":
        return replace(ui, typing=True), None
    if key == ESCAPE:
        return replace(ui, filter=""), None
    if key == "s":
        return replace(ui, sort=(ui.sort + 1) % len(TASK_COLUMNS)), None
    if key in (UP, "k", DOWN, "j") and node_ids:
        step = -1 if key in (UP, "k") else 1
        return replace(ui, selected=(ui.selected + step) % len(node_ids)), None
    if key == "d" and node_ids:
        return replace(ui, confirm_drain=node_ids[min(ui.selected, len(node_ids) - 1)]), None
    return ui, None
