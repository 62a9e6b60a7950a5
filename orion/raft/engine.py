"""pysyncobj 0.3.17 as Orion runs it: its configuration, the engine, the consumer, the handover.

:func:`build_engine` makes one engine from :class:`RaftSettings`; ``RaftStore``
(``store.py``) may build several in a row (a joiner turned replica, a resync),
each from the journal and snapshot on disk. What the engine does differently
from pysyncobj itself — the election gate of a joiner not yet admitted (no
elections before admission: the issue's hundred-agent start saw nodes outside
the configuration at terms up to 251), no wait when alone, the watch for
truncated applied entries, group commit, the next-index and handover rules —
is in ``patches.py``, each rule with the upstream line it changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pysyncobj import FAIL_REASON, SyncObjConsumer, replicated

from orion.defaults import RAFT_CONNECT_RETRY
from orion.raft.journal import RaftJournal
from orion.raft.patches import ElectionGate, Engine


@dataclass(frozen=True)
class RaftSettings:
    """What the backend needs from the agent's config."""

    self_addr: str
    bind_addr: str
    data_dir: str
    secret: str | None
    # The agent's raft_election_min/max and raft_compaction_entries (declared ``raft.*`` in orion/config/runtime.py).
    election_min: float
    election_max: float
    compaction_entries: int
    # "fsync": the journal is on disk before an entry counts toward a commit; "none": never
    # synced (the agent's durability setting; what each promises is in orion/config/runtime.py).
    durability: str
    # False: a non-voting replica (pysyncobj "readonly" node) — it receives the log and
    # forwards writes, but neither votes nor counts for quorum (beyond the voter cap).
    voter: bool = True
    # True for a node joining a cluster: a voter-to-be that holds its elections back until
    # the leader's answer admits it (ElectionGate), or restarts as a replica.
    joining: bool = False


class Replicated(SyncObjConsumer):
    """The one replicated method. Snapshots are the machine's plain-data form,
    not a pickle of our classes, so a newer node can restore an older dump."""

    def __init__(self, on_apply: Callable[[str, int], Any], dump: Callable[[], Any],
                 load: Callable[[Any], None]) -> None:
        super().__init__()
        self._on_apply, self._dump, self._load = on_apply, dump, load

    @replicated
    def apply_command(self, text: str) -> Any:
        # The index comes from the engine applying it (after a restart, the new one).
        return self._on_apply(text, self._syncObj.raftLastApplied + 1)

    def _serialize(self) -> Any:
        return self._dump()

    def _deserialize(self, data: Any) -> None:
        self._load(data)


def build_engine(settings: RaftSettings, voter: bool, partners: list[str], gated: bool,
                 consumer: Replicated) -> Engine:
    """Start one engine on the data dir's journal and snapshot. ``gated``: no elections
    until ``engine.conf.open()`` (a joiner not admitted yet)."""
    data = Path(settings.data_dir)
    # Alone: a voter whose configuration holds no other voter (a fresh bootstrap, a one-node
    # cluster restarting) campaigns at once instead of after a randomized timeout (patches.py, rule 6).
    alone_at_start = voter and not [p for p in partners if p != settings.self_addr]
    conf = ElectionGate(
        closed=gated,
        alone=lambda: alone_at_start,
        password=settings.secret or None,
        appendEntriesUseBatch=False,
        # Heartbeat period: pysyncobj requires it below a third of the election timeout.
        appendEntriesPeriod=min(0.1, settings.election_min / 4),
        useFork=False,
        dynamicMembershipChange=True,
        journalFile=None,  # ours, below (the engine installs it: patches.py, rule 3)
        fullDumpFile=str(data / "raft.dump"),
        raftMinTimeout=settings.election_min,
        raftMaxTimeout=settings.election_max,
        leaderFallbackTimeout=max(3.0, 3 * settings.election_max),
        logCompactionMinEntries=settings.compaction_entries,
        bindAddress=settings.bind_addr,
        connectionRetryTime=RAFT_CONNECT_RETRY,
        commandsWaitLeader=True,
    )
    journal = RaftJournal(str(data / "raft.journal"), str(data / "raft.dump"),
                          fsync=settings.durability == "fsync")
    engine = Engine(journal, settings.self_addr if voter else None, partners, conf, [consumer])
    # From here on the configuration itself says: a voter added later (or a removal that
    # leaves this one alone) changes the next timeout drawn.
    conf.watch_alone(lambda: engine.selfNode is not None and not engine.otherNodes)
    return engine


def hand_over(sync: Engine, deadline: float) -> str:
    """Ask ``sync`` (the leader) to pass leadership to its most caught-up follower (Raft's
    TimeoutNow) until one leads or ``deadline`` (monotonic) passes; say what happened.
    pysyncobj refuses while no follower has every entry, so it is asked again meanwhile."""
    last = "no answer"
    while time.monotonic() < deadline:
        done = threading.Event()
        box: dict[str, Any] = {}

        def callback(result: Any, error: int, box: dict = box, done: threading.Event = done) -> None:
            box["error"] = error
            done.set()

        sync.call_on_tick(lambda callback=callback: sync.transferLeadership(callback=callback))
        if not done.wait(max(0.0, deadline - time.monotonic())):
            break
        if box["error"] == FAIL_REASON.SUCCESS:
            while time.monotonic() < deadline:
                leader = sync._getLeader()
                if leader is not None and leader != sync.selfNode:
                    return f"leadership handed to {leader.address}"
                time.sleep(0.005)
            return "leadership transfer sent, but no other leader within the timeout"
        if box["error"] == FAIL_REASON.NOT_LEADER:
            return "not the leader any more: no leadership to hand over"
        # REQUEST_DENIED: no follower connected, or none caught up to the last entry yet.
        last = f"refused (reason {box['error']}): no caught-up follower"
        time.sleep(0.02)
    return f"leadership not handed over ({last}); an election follows"
