"""The SWIM + Lifeguard core: probing, dissemination and the caller-facing API.

Pure: no sockets, clocks or sleeps. Time comes in as ``now`` (seconds, any
epoch), randomness from the injected ``random.Random``; every call returns the
messages to send as :class:`Out` values, and membership changes queue up for
:meth:`Swim.events`. The same core runs under the real transport and under the
simulator, where 500 nodes fit in one process on a virtual clock.
(The incarnation rules -- what news overrides what -- live in membership.py.)

* Probing: every health-scaled probe interval, ping the next member of a
  shuffled round-robin list (a suspect one gets the suspicion with the ping:
  the buddy system). No ack within the (scaled) probe timeout: ask
  ``indirect_checks`` others to ping it; they nack if it stays silent too. No
  ack by the end of the interval: suspect it, and raise our health score by the
  nacks that never came.
* Dissemination: news piggybacks on every probe datagram and on gossip rounds
  to ``gossip_nodes`` random members, each item ``retransmit_limit`` times.
* Anti-entropy: a periodic TCP push-pull with one random live member compares
  digests of the two views and exchanges full state only when they differ
  (push_pull.py); joining is a full push-pull with the seeds; reconnecting is a
  push-pull with a random dead member.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orion.gossip import config as cfgmod
from orion.gossip.codec import PACKET_OVERHEAD, encoded_size
from orion.gossip.config import GossipConfig
from orion.gossip.member import ALIVE, DEAD, LEFT, SUSPECT, Addr, Member, MemberEvent, MemberState
from orion.gossip.member_table import MemberTable, Record
from orion.gossip.messages import (
    TCP,
    UDP,
    Ack,
    Alive,
    Compound,
    Dead,
    IndirectPing,
    Message,
    Nack,
    Out,
    Ping,
    PushPull,
    Suspect,
)
from orion.gossip.push_pull import Answer, answer

COMPOUND_OVERHEAD = 8  # msgpack list headers around the parts of a Compound


@dataclass
class _Probe:
    seq: int
    target: str
    ack_deadline: float
    deadline: float
    indirect_sent: bool = False
    expected_nacks: int = 0
    nacks: int = 0
    acked: bool = False


@dataclass
class _Relay:
    requester: Addr
    orig_seq: int
    deadline: float
    nack: bool


class Swim(MemberTable):
    def __init__(self, config: GossipConfig, self_member: Member, rng: random.Random) -> None:
        super().__init__(config, self_member, rng)
        self._order_idx = 0
        self._probe: _Probe | None = None
        # Plain counts for metrics (no clock, no I/O): probes started, probes that failed,
        # digest push-pulls we answered finding the views equal / different.
        self.stats: dict[str, int] = {"probes": 0, "probe_failures": 0, "push_pull_in_sync": 0,
                                      "push_pull_out_of_sync": 0}
        self._relays: dict[int, _Relay] = {}
        self._seq = 0
        self._outs: list[Out] = []
        self._next_probe: float | None = None  # None until the first call tells us what "now" is
        self._next_gossip = 0.0
        self._next_push_pull = 0.0
        self._next_reconnect = 0.0

    # ------------------------------------------------------------------ API

    @property
    def health_score(self) -> int:
        return self.awareness.score

    def events(self) -> list[MemberEvent]:
        ev, self._events = self._events, []
        return ev

    def members(self) -> list[MemberState]:
        state = LEFT if self.leaving else ALIVE
        me = MemberState(self.name, self.addr, self.meta, self.incarnation, state, 0.0)
        return [me, *(m.snapshot() for m in self._members.values())]

    def join(self, now: float, seeds: list[Addr]) -> list[Out]:
        self._init_timers(now)
        for seed in seeds:
            if tuple(seed) != self.addr:
                self._send(tuple(seed), self._push_pull(join=True, reply=False, full=True), TCP)  # type: ignore[arg-type]
        return self._flush()

    def leave(self, now: float) -> list[Out]:
        """Announce a graceful leave; keep calling tick() briefly so it spreads."""
        self.leaving = True
        self._queue.queue(self.name, Dead(self.incarnation, self.name, self.name))
        self._gossip(now)
        return self._flush()

    def update_meta(self, meta: dict[str, Any]) -> None:
        """New metadata, gossiped at a new incarnation so it wins everywhere."""
        if encoded_size(Alive(0, "", ("", 0), meta)) > self.cfg.meta_max_bytes:
            raise ValueError(f"metadata exceeds {self.cfg.meta_max_bytes} bytes")
        self.meta = dict(meta)
        self.incarnation += 1
        self._queue.queue(self.name, self._self_alive())

    def next_deadline(self) -> float:
        """When tick() next has work: callers sleep (or schedule a tick) until then."""
        times = [self._next_gossip, self._next_push_pull, self._next_reconnect]
        if self._next_probe is not None:
            times.append(self._next_probe)
        p = self._probe
        if p is not None and not p.acked:
            times.append(p.deadline if p.indirect_sent else p.ack_deadline)
        times.extend(r.deadline for r in self._relays.values())
        times.extend(s.deadline for s in self._suspicions.values())
        return min(times)

    # ----------------------------------------------------------------- tick

    def tick(self, now: float) -> list[Out]:
        self._init_timers(now)
        self._check_probe(now)
        if now >= self._next_probe:  # type: ignore[operator]
            self._start_probe(now)
        for seq, r in list(self._relays.items()):
            if now >= r.deadline:
                del self._relays[seq]
                if r.nack:
                    self._send(r.requester, Nack(r.orig_seq))
        self._expire_suspicions(now)
        if now >= self._next_gossip:
            self._next_gossip = now + self.cfg.gossip_interval
            self._gossip(now)
        if now >= self._next_push_pull:
            self._next_push_pull = now + cfgmod.push_pull_scale(self.cfg.push_pull_interval, self.num_alive())
            peers = self._pick(1, lambda m: m.state == ALIVE)
            if peers and not self.leaving:
                self._send(peers[0].addr, self._push_pull(join=False, reply=False, full=False), TCP)
        if now >= self._next_reconnect:
            self._next_reconnect = now + self.cfg.reconnect_interval
            self._reconnect()
        return self._flush()

    def _init_timers(self, now: float) -> None:
        if self._next_probe is None:  # stagger, so nodes started together do not beat in phase
            self._next_probe = now + self.rng.random() * self.cfg.probe_interval
            self._next_gossip = now + self.rng.random() * self.cfg.gossip_interval
            self._next_push_pull = now + self.rng.random() * self.cfg.push_pull_interval
            self._next_reconnect = now + self.rng.random() * self.cfg.reconnect_interval

    def _start_probe(self, now: float) -> None:
        interval = self.awareness.scale(self.cfg.probe_interval)
        self._next_probe = now + interval
        target = None if self.leaving else self._next_target(now)
        if target is None:
            return
        self.stats["probes"] += 1
        timeout = self.cfg.probe_timeout
        if self.cfg.scale_probe_timeout:
            timeout = self.awareness.scale(timeout)
        self._seq += 1
        self._probe = _Probe(self._seq, target.name, now + timeout, now + interval)
        first: list[Message] = []
        if target.state == SUSPECT and self.cfg.buddy_system:
            first.append(Suspect(target.incarnation, target.name, self.name))  # tell the accused first
        self._send_gossiping(target.addr, Ping(self._seq, target.name, self.name), first)

    def _check_probe(self, now: float) -> None:
        p = self._probe
        if p is None or p.acked:
            return
        target = self._members.get(p.target)
        if target is None or target.state not in (ALIVE, SUSPECT):
            self._probe = None
            return
        if not p.indirect_sent and now >= p.ack_deadline:
            p.indirect_sent = True
            relays = self._pick(self.cfg.indirect_checks, lambda m: m.state == ALIVE and m.name != p.target)
            p.expected_nacks = len(relays) if self.cfg.nacks else 0
            for r in relays:
                ind = IndirectPing(p.seq, target.name, target.addr, self.cfg.nacks, self.name)
                self._send_gossiping(r.addr, ind)
        if now >= p.deadline:
            self._probe = None
            self.stats["probe_failures"] += 1
            # Lifeguard: relays that did not even nack suggest the fault is ours.
            missed = p.expected_nacks - p.nacks if p.expected_nacks else 1
            self.awareness.apply_delta(missed)
            # Already suspect: our failed probe is one more independent confirmation.
            self._on_suspect(now, Suspect(target.incarnation, target.name, self.name))

    def _next_target(self, now: float) -> Record | None:
        for _ in range(len(self._order) + 1):
            if self._order_idx >= len(self._order):
                self._reap(now)  # once per round-robin cycle
                self._order = list(self._members)
                self.rng.shuffle(self._order)
                self._order_idx = 0
                if not self._order:
                    return None
            m = self._members.get(self._order[self._order_idx])
            self._order_idx += 1
            if m is not None and m.state in (ALIVE, SUSPECT):
                return m
        return None

    def _gossip(self, now: float) -> None:
        def reachable(m: Record) -> bool:
            return m.state in (ALIVE, SUSPECT) or now - m.since < self.cfg.gossip_to_the_dead_time

        limit = cfgmod.retransmit_limit(self.cfg, self.num_alive())
        budget = self.cfg.udp_buffer_size - PACKET_OVERHEAD - COMPOUND_OVERHEAD
        for peer in self._pick(self.cfg.gossip_nodes, reachable):
            msgs = self._queue.take(budget, 0, limit)
            if not msgs:
                return
            self._send(peer.addr, msgs[0] if len(msgs) == 1 else Compound(tuple(msgs)))

    def _reconnect(self) -> None:
        candidates = [m.addr for m in self._members.values() if m.state == DEAD]
        candidates += [addr for addr, _ in self._graveyard.values()]
        if candidates and not self.leaving:
            self._send(self.rng.choice(candidates), self._push_pull(join=False, reply=False, full=False), TCP)

    # --------------------------------------------------------------- handle

    def handle(self, now: float, src: Addr, msg: Message) -> list[Out]:
        self._init_timers(now)
        self._dispatch(now, tuple(src), msg)  # type: ignore[arg-type]
        return self._flush()

    def _dispatch(self, now: float, src: Addr, msg: Message) -> None:
        if isinstance(msg, Compound):
            for part in msg.parts:
                self._dispatch(now, src, part)
        elif isinstance(msg, Ping):
            if msg.target == self.name:  # else: a new process on an old member's address
                self._send_gossiping(src, Ack(msg.seq))
        elif isinstance(msg, Ack):
            self._on_ack(msg.seq)
        elif isinstance(msg, Nack):
            if self._probe is not None and self._probe.seq == msg.seq:
                self._probe.nacks += 1
        elif isinstance(msg, IndirectPing):
            self._seq += 1
            deadline = now + self.cfg.probe_timeout * self.cfg.nack_timeout_fraction
            self._relays[self._seq] = _Relay(src, msg.seq, deadline, msg.nack)
            self._send_gossiping(msg.target_addr, Ping(self._seq, msg.target, self.name))
        elif isinstance(msg, Alive):
            self._on_alive(now, msg)
        elif isinstance(msg, Suspect):
            self._on_suspect(now, msg)
        elif isinstance(msg, Dead):
            self._on_dead(now, msg)
        elif isinstance(msg, PushPull) and msg.source != self.name:
            self._on_push_pull(now, msg)

    def _on_push_pull(self, now: float, pp: PushPull) -> None:
        todo = answer(pp, self._digest)
        self._merge(now, pp)
        if todo is Answer.DIGEST:
            self.stats["push_pull_in_sync"] += 1
        elif todo is Answer.FULL_REQUEST:
            self.stats["push_pull_out_of_sync"] += 1
        if todo is not Answer.NOTHING:
            self._send(pp.source_addr, self._push_pull(join=pp.join, reply=todo.reply, full=todo.full), TCP)

    def _on_ack(self, seq: int) -> None:
        p = self._probe
        if p is not None and p.seq == seq and not p.acked:
            p.acked = True
            self.awareness.apply_delta(-1)
            return
        relay = self._relays.pop(seq, None)
        if relay is not None:
            self._send_gossiping(relay.requester, Ack(relay.orig_seq))

    # -------------------------------------------------------------- helpers

    def _pick(self, k: int, ok: Callable[[Record], bool]) -> list[Record]:
        candidates = [m for m in self._members.values() if ok(m)]
        return self.rng.sample(candidates, min(k, len(candidates)))

    def _send(self, dest: Addr, msg: Message, via: str = UDP) -> None:
        self._outs.append(Out(dest, msg, via))

    def _send_gossiping(self, dest: Addr, msg: Message, first: list[Message] | None = None) -> None:
        """Send ``msg`` with as much queued news piggybacked as fits in a datagram."""
        head = [*(first or []), msg]  # buddy news first, so a refutation can ride the ack
        used = sum(encoded_size(m) for m in head)
        budget = self.cfg.udp_buffer_size - PACKET_OVERHEAD - COMPOUND_OVERHEAD - used
        extra = self._queue.take(budget, 0, cfgmod.retransmit_limit(self.cfg, self.num_alive()))
        parts = head + extra
        self._send(dest, parts[0] if len(parts) == 1 else Compound(tuple(parts)))

    def _flush(self) -> list[Out]:
        outs, self._outs = self._outs, []
        return outs
