"""What this node believes about the others, and the incarnation rules that change it.

This is the half of the core that never sends a probe: it takes news (alive /
suspect / dead, from gossip or push-pull) and decides whether it overrides what
we hold. The rules, as the paper and memberlist state them:

* News counts only at an incarnation >= the one we hold; "alive" needs a
  strictly greater one (only the member itself raises its incarnation, so a
  newer "alive" is the member speaking).
* News about ourselves that says anything but "alive at our incarnation" is
  refuted by gossiping "alive" at a higher incarnation; being suspected or
  declared dead also raises our Lifeguard health score.
* A suspicion becomes "dead" only when its (Lifeguard) timer runs out.
* Someone else's "dead" learnt through push-pull is only a suspicion for us,
  so a live member always gets its chance to refute.

Accepted news is re-queued for gossip: that is what makes dissemination
infection-style.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from orion.gossip import config as cfgmod
from orion.gossip.awareness import Awareness
from orion.gossip.broadcast import BroadcastQueue
from orion.gossip.config import GossipConfig
from orion.gossip.member import ALIVE, DEAD, LEFT, SUSPECT, Addr, Member, MemberEvent, MemberState
from orion.gossip.messages import Alive, Dead, NodeState, PushPull, Suspect
from orion.gossip.push_pull import table_digest
from orion.gossip.suspicion import Suspicion


@dataclass
class Record:
    """Mutable row of the member table (snapshots of it are frozen MemberState)."""

    name: str
    addr: Addr
    meta: dict[str, Any]
    incarnation: int
    state: str
    since: float

    def snapshot(self) -> MemberState:
        return MemberState(self.name, self.addr, self.meta, self.incarnation, self.state, self.since)


class MemberTable:
    def __init__(self, config: GossipConfig, self_member: Member, rng: random.Random) -> None:
        self.cfg = config
        self.rng = rng
        self.name = self_member.name
        self.addr: Addr = tuple(self_member.addr)  # type: ignore[assignment]
        self.meta = dict(self_member.meta)
        self.incarnation = self_member.incarnation
        self.awareness = Awareness(config.awareness_max_multiplier)
        self.leaving = False
        self._members: dict[str, Record] = {}
        # Members alive or suspect (not us), kept as each rule changes a state: the probe,
        # gossip and push-pull paths ask for ``n`` on every message, and counting a hundred
        # rows each time was the largest item of an idle replica's profile (issue #14).
        self._not_dead = 0
        self._order: list[str] = []  # probe round-robin; new members go in at a random place
        self._suspicions: dict[str, Suspicion] = {}
        # Dead members forgotten from the table, kept only to try reconnecting
        # (heals partitions that outlast the tombstone).
        self._graveyard: dict[str, tuple[Addr, float]] = {}
        self._queue = BroadcastQueue()
        self._events: list[MemberEvent] = []
        self._queue.queue(self.name, self._self_alive())

    def num_alive(self) -> int:
        """Members not known dead, counting ourselves: the ``n`` of the formulas."""
        return 1 + self._not_dead

    # ---------------------------------------------------------------- rules

    def _on_alive(self, now: float, a: Alive) -> None:
        addr: Addr = tuple(a.addr)  # type: ignore[assignment]
        if a.node == self.name:
            same = a.incarnation == self.incarnation and a.meta == self.meta and addr == self.addr
            if a.incarnation >= self.incarnation and not same and not self.leaving:
                self._refute(a.incarnation)  # an older life of ours is being gossiped: outbid it
            return
        m = self._members.get(a.node)
        if m is None:
            m = Record(a.node, addr, a.meta, a.incarnation, ALIVE, now)
            self._members[a.node] = m
            self._not_dead += 1
            self._graveyard.pop(a.node, None)
            self._order.insert(self.rng.randint(0, len(self._order)), a.node)
            self._emit("join", m)
            self._queue.queue(a.node, a)
            return
        if a.incarnation <= m.incarnation:
            return
        old_state = m.state
        changed = a.meta != m.meta or addr != m.addr
        m.incarnation, m.meta, m.addr = a.incarnation, a.meta, addr
        self._suspicions.pop(a.node, None)
        if old_state != ALIVE:
            m.state, m.since = ALIVE, now
            if old_state in (DEAD, LEFT):
                self._not_dead += 1
            self._emit("alive" if old_state == SUSPECT else "join", m)
        elif changed:
            self._emit("update", m)
        self._queue.queue(a.node, a)

    def _on_suspect(self, now: float, s: Suspect) -> None:
        if s.node == self.name:
            if s.incarnation >= self.incarnation and not self.leaving:
                self.awareness.apply_delta(1)  # being suspected hints we are the slow one
                self._refute(s.incarnation)
            return
        m = self._members.get(s.node)
        if m is None or s.incarnation < m.incarnation:
            return
        susp = self._suspicions.get(s.node)
        if susp is not None:
            if susp.confirm(s.accuser):
                self._queue.queue(s.node, s)  # re-gossip so others count the confirmation too
            return
        if m.state != ALIVE:
            return
        m.state, m.incarnation, m.since = SUSPECT, s.incarnation, now
        n = self.num_alive()
        min_t = cfgmod.suspicion_min_timeout(self.cfg, n)
        max_t = self.cfg.suspicion_max_timeout_mult * min_t
        k = cfgmod.suspicion_confirmations_needed(self.cfg, n)
        self._suspicions[s.node] = Suspicion(s.accuser, now, k, min_t, max_t)
        self._emit("suspect", m, s.accuser)
        self._queue.queue(s.node, s)

    def _on_dead(self, now: float, d: Dead) -> None:
        if d.node == self.name:
            if d.incarnation >= self.incarnation and not self.leaving:
                self.awareness.apply_delta(1)
                self._refute(d.incarnation)
            return
        m = self._members.get(d.node)
        if m is None or d.incarnation < m.incarnation or m.state in (DEAD, LEFT):
            return
        self._suspicions.pop(d.node, None)
        left = d.accuser == d.node
        m.state, m.incarnation, m.since = (LEFT if left else DEAD), d.incarnation, now
        self._not_dead -= 1  # it was alive or suspect (dead and left returned above)
        self._emit("left" if left else "dead", m, d.accuser)
        self._queue.queue(d.node, d)

    def _refute(self, accused_incarnation: int) -> None:
        self.incarnation = max(self.incarnation, accused_incarnation) + 1
        self._queue.queue(self.name, self._self_alive())

    def _expire_suspicions(self, now: float) -> None:
        for name, s in list(self._suspicions.items()):
            if now >= s.deadline:
                self._on_dead(now, Dead(self._members[name].incarnation, name, self.name))

    def _merge(self, now: float, pp: PushPull) -> None:
        for s in pp.states:
            if s.state == ALIVE:
                self._on_alive(now, Alive(s.incarnation, s.name, s.addr, s.meta))
            elif s.state == LEFT:
                self._on_dead(now, Dead(s.incarnation, s.name, s.name))
            elif s.state in (SUSPECT, DEAD):
                self._on_suspect(now, Suspect(s.incarnation, s.name, pp.source))

    def _reap(self, now: float) -> None:
        """Forget tombstones older than dead_reap_time (dead ones move to the graveyard)."""
        for name, m in list(self._members.items()):
            if m.state in (DEAD, LEFT) and m.since < now - self.cfg.dead_reap_time:
                del self._members[name]
                if m.state == DEAD:
                    self._graveyard[name] = (m.addr, now)
        for name, (_, since) in list(self._graveyard.items()):
            if since < now - self.cfg.reconnect_timeout:
                del self._graveyard[name]

    # -------------------------------------------------------------- helpers

    def _self_alive(self) -> Alive:
        return Alive(self.incarnation, self.name, self.addr, self.meta)

    def _rows(self) -> tuple[NodeState, ...]:
        """The table as a full push-pull carries it, ourselves first."""
        me = NodeState(self.name, self.addr, self.meta, self.incarnation, LEFT if self.leaving else ALIVE)
        return (me, *(NodeState(m.name, m.addr, m.meta, m.incarnation, m.state) for m in self._members.values()))

    def _digest(self) -> bytes:
        return table_digest(self._rows())

    def _push_pull(self, join: bool, reply: bool, full: bool) -> PushPull:
        """Our table (``full``) or only its digest; the digest rides along either way,
        which also tells the receiver we speak digests."""
        rows = self._rows()
        return PushPull(self.name, self.addr, join, reply, rows if full else (), table_digest(rows))

    def _emit(self, kind: str, m: Record, source: str = "") -> None:
        self._events.append(MemberEvent(kind, m.snapshot(), source))
