"""``orion top``'s pure parts: events between two views, rows, keys."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from orion.cli.top_model import (
    BACKSPACE,
    DOWN,
    ENTER,
    ESCAPE,
    TASK_COLUMNS,
    UP,
    Drain,
    Event,
    Quit,
    Ui,
    View,
    derive_events,
    on_key,
    task_row,
    task_rows,
)


def node(node_id: str, status: str = "alive", leader: bool = False) -> dict[str, Any]:
    return {"id": node_id, "status": status, "leader": leader}


def task(task_id: str, node_id: str | None = None, state: str = "running", restarts: int = 0,
         **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "name": f"n-{task_id}", "state": state, "nodeId": node_id, "restarts": restarts,
            "ports": {}, **extra}


def view(nodes: list[dict[str, Any]] = (), tasks: list[dict[str, Any]] = (),  # type: ignore[assignment]
         healthy: bool | None = True) -> View:
    return View(nodes={n["id"]: n for n in nodes}, tasks={t["id"]: t for t in tasks}, healthy=healthy)


THREE = [node("a", leader=True), node("b"), node("c")]


def texts(events: list[Event]) -> list[str]:
    return [e.text() for e in events]


def test_the_first_view_is_the_starting_picture_not_a_burst() -> None:
    assert derive_events(View(), view(THREE, [task("t1", "a")])) == []


def test_a_node_kill_transcript() -> None:
    """b dies; its task is lost, then placed again on c."""
    before = view(THREE, [task("t1", "b"), task("t2", "a")])
    b_dead = view([THREE[0], node("b", "dead"), THREE[2]],
                  [task("t1", "b", "lost", reason="node b is dead"), task("t2", "a")])
    moved = view([THREE[0], node("b", "dead"), THREE[2]], [task("t1", "c", "running"), task("t2", "a")])
    assert texts(derive_events(before, b_dead)) == ["node b dead", "task t1 lost (node b is dead)"]
    assert texts(derive_events(b_dead, moved)) == ["task t1 moved b -> c"]


def test_placement_restart_failure_and_join() -> None:
    before = view(THREE, [task("t1"), task("t2", "a")])
    after = view(THREE + [node("d")], [task("t1", "a", "assigned"), task("t2", "a", "failed", 2, reason="exit 1")])
    assert texts(derive_events(before, after)) == [
        "node d joined", "task t1 placed on a", "task t2 failed (exit 1)", "task t2 restarted (2 restarts)"]


def test_leader_change_and_quorum() -> None:
    before = view(THREE)
    lost = view([node("a"), node("b"), node("c")], healthy=False)
    back = view([node("a"), node("b", leader=True), node("c")], healthy=True)
    assert texts(derive_events(before, lost, "n1")) == [
        "n1 has no leader: the cluster has lost quorum or is electing"]
    assert texts(derive_events(lost, back, "n1")) == ["n1 has a leader again", "leader is now b"]


@given(st.lists(st.sampled_from(["a", "b", "c", None]), max_size=6),
       st.lists(st.sampled_from(["running", "pending", "lost", "failed"]), max_size=6))
def test_an_unchanged_view_has_no_events(nodes_of: list[str | None], states: list[str]) -> None:
    tasks = [task(f"t{i}", n, s) for i, (n, s) in enumerate(zip(nodes_of, states, strict=False))]
    same = view(THREE, tasks)
    assert derive_events(same, same) == []


def test_rows_filter_and_sort_live_tasks_first() -> None:
    rows = [task_row(task("t1", "b", "lost"), 0.0, True, 100.0),
            task_row(task("t2", "a", restarts=3), 50.0, False, 100.0),
            task_row(task("t3", "c", restarts=1), 90.0, False, 100.0)]
    assert rows[0] == ("t1", "n-t1", "lost", "b", "", "0", ">=100s")
    assert [r[0] for r in task_rows(rows, "", TASK_COLUMNS.index("NODE"))] == ["t2", "t3", "t1"]
    assert [r[0] for r in task_rows(rows, "", TASK_COLUMNS.index("RESTARTS"))] == ["t3", "t2", "t1"]
    assert [r[0] for r in task_rows(rows, "", TASK_COLUMNS.index("AGE"))] == ["t2", "t3", "t1"]  # oldest first
    assert [r[0] for r in task_rows(rows, "N-T3", 0)] == ["t3"]
    assert [r[0] for r in task_rows(rows, "lost", 0)] == ["t1"]


def press(ui: Ui, *keys: str, nodes: tuple[str, ...] = ("a", "b", "c")) -> tuple[Ui, list[Any]]:
    actions = []
    for key in keys:
        ui, action = on_key(ui, key, nodes)
        if action is not None:
            actions.append(action)
    return ui, actions


def test_filter_is_typed_kept_and_cleared() -> None:
    ui, _ = press(Ui(), "/", "w", "e", "x", BACKSPACE, "b", ENTER)
    assert (ui.filter, ui.typing) == ("web", False)
    ui, actions = press(ui, "/", "q", ENTER)  # q while typing is text, not quit
    assert (ui.filter, actions) == ("webq", [])
    ui, _ = press(ui, ESCAPE)
    assert ui.filter == ""


def test_sort_cycles_through_every_column() -> None:
    ui, _ = press(Ui(), *["s"] * len(TASK_COLUMNS))
    assert ui.sort == 0
    assert press(Ui(), "s")[0].sort == 1


def test_drain_needs_a_confirmation() -> None:
    ui, actions = press(Ui(), DOWN, "d")
    assert (ui.confirm_drain, actions) == ("b", [])
    assert press(ui, "n") == (Ui(selected=1), [])
    assert press(ui, "y") == (Ui(selected=1), [Drain("b")])
    assert press(Ui(), UP, "d", "y")[1] == [Drain("c")]
    assert press(Ui(), "d", nodes=())[1] == []


def test_q_quits() -> None:
    assert isinstance(press(Ui(), "q")[1][0], Quit)


def test_terminal_input_splits_into_keys() -> None:
    from orion.cli.top import split_keys

    assert split_keys("\x1b[A\x1b[Bd/x\r\x7f\x1bq") == [UP, DOWN, "d", "/", "x", ENTER, BACKSPACE, ESCAPE, "q"]
