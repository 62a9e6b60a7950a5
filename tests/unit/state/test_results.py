"""Typed results against what the release before them wrote (``orion/state/results.py``).

``data/log_before_typed_results.json`` holds the log entries and the results main's code
(commit 5906c60, the last before typed results) gave them; ``data/snapshot_before_typed_results.json``
the snapshot that machine took just before the first ``RestoreSnapshot`` (which replaces it all;
``snapshot_after`` entries in). Both were written by that code, running a script that applied
one of each command, refused and accepted, to a fresh machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orion.state.commands import decode, encode
from orion.state.entries import apply_entry
from orion.state.machine import StateMachine
from orion.state.results import (
    BatchApplied,
    ClusterNamed,
    GroupScaled,
    HealthReported,
    NodeChanged,
    NodeRegistered,
    Placed,
    PlanApplied,
    RefusalKind,
    Refused,
    ServiceDeclared,
    ServiceDeleted,
    SnapshotRestored,
    TaskChanged,
    TaskCreated,
    result_from_dict,
)

DATA = Path(__file__).parent / "data"
OLD_LOG = json.loads((DATA / "log_before_typed_results.json").read_text())
OLD_SNAPSHOT = json.loads((DATA / "snapshot_before_typed_results.json").read_text())


def as_before(plain: Any) -> Any:
    """A result's plain form as the release before kinds wrote it: no ``kind`` on a refusal
    (the service-exists refusal had an ``exists`` flag instead), a refused item a sentence."""
    if isinstance(plain, list):
        return [as_before(p) for p in plain]
    if not isinstance(plain, dict):
        return plain
    if plain.get("ok") is False:
        old = {"ok": False, "error": plain["error"]}
        return {**old, "exists": True} if plain["error"].startswith("service ") and plain["kind"] == "exists" else old
    out = {k: as_before(v) for k, v in plain.items()}
    if isinstance(plain.get("refused"), dict):
        out["refused"] = {k: v["error"] for k, v in plain["refused"].items()}
    return out


def replayed(entries: int | None = None) -> tuple[StateMachine, list]:
    """A fresh machine after the old log's first ``entries`` (all of them by default), and their results."""
    machine = StateMachine()
    return machine, [apply_entry(machine, entry, i + 1) for i, entry in enumerate(OLD_LOG["entries"][:entries])]


def test_the_old_log_replays_to_the_results_it_gave_then():
    _, results = replayed()
    assert [as_before(r.to_dict()) for r in results] == OLD_LOG["results"]


def test_its_refusals_carry_their_kinds():
    _, results = replayed()
    refusals = [(json.loads(entry)["request_id"], r.kind) for entry, r in zip(OLD_LOG["entries"], results, strict=True)
                if isinstance(r, Refused)]
    assert refusals == [
        ("r-bad", RefusalKind.INVALID), ("r-dup", RefusalKind.EXISTS), ("r-stale", RefusalKind.STALE),
        ("r-fin2", RefusalKind.WRONG_STATE), ("r-stop-none", RefusalKind.NOT_FOUND),
        ("r-put-exists", RefusalKind.EXISTS), ("r-plan-stale", RefusalKind.STALE), ("r-h-none", RefusalKind.STALE),
        ("r-rb", RefusalKind.NOT_FOUND), ("r-del2", RefusalKind.NOT_FOUND), ("r-name2", RefusalKind.EXISTS),
        ("", RefusalKind.WRONG_STATE),  # a restore of another cluster's state, not forced
        ("", RefusalKind.INVALID)]  # a restore whose body cannot be read
    placed = next(r for r in results if isinstance(r, Placed) and r.refused)
    assert {k: r.kind for k, r in placed.refused.items()} == {"t3": RefusalKind.NO_FIT, "zz": RefusalKind.NOT_FOUND}


def test_every_result_survives_its_plain_form_and_json():
    _, results = replayed()
    kinds = {type(r) for r in results}
    assert {Refused, NodeRegistered, NodeChanged, TaskCreated, TaskChanged, Placed, ServiceDeclared,
            ServiceDeleted, PlanApplied, HealthReported, GroupScaled, ClusterNamed, SnapshotRestored,
            BatchApplied} <= kinds
    for result in results:
        assert result_from_dict(json.loads(json.dumps(result.to_dict()))) == result


@pytest.mark.parametrize("entry", OLD_LOG["entries"], ids=lambda e: json.loads(e)["request_id"] or "batch")
def test_each_old_entry_decodes_and_encodes_byte_for_byte(entry):
    assert encode(decode(entry)) == entry


def test_a_snapshot_of_the_release_before_restores_with_its_answers_typed():
    restored = StateMachine.restore(OLD_SNAPSHOT)
    machine, results = replayed(OLD_LOG["snapshot_after"])
    snap = restored.snapshot()
    # The same machine as the one the log builds here; its remembered answers as they were written.
    assert {k: v for k, v in snap.items() if k != "requests"} == \
        {k: v for k, v in machine.snapshot().items() if k != "requests"}
    assert [[rid, as_before(answer)] for rid, answer in snap["requests"]] == OLD_SNAPSHOT["requests"]
    # A retried request gets its first answer back, typed; a refusal of then reads with kind other,
    # except the two it flagged (exists, unreadable).
    again = restored.apply(decode(OLD_LOG["entries"][0]), 99)
    assert isinstance(again, NodeRegistered) and again == results[0]
    answers = dict(restored.snapshot()["requests"])
    assert answers["r-dup"]["kind"] == "other" and answers["r-put-exists"]["kind"] == "exists"


def test_a_refusal_of_an_unknown_kind_reads_as_other():
    assert result_from_dict({"ok": False, "error": "no", "kind": "from-the-future"}) == \
        Refused(RefusalKind.OTHER, "no")
