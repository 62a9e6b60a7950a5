"""A deterministic in-process network for the gossip core, on a virtual clock.

Hundreds of :class:`Swim` cores exchange messages through an event heap; the
network adds latency, loss and partitions, and nodes can crash, restart, be
paused (a frozen process: no timers, no packets, all handled late at once) or be
*slow* (every inbound message waits in a FIFO queue before it is processed,
while timers still fire on time -- the CPU-starved member of the Lifeguard
paper). Everything random is drawn from generators seeded by the one ``seed``,
so a failing scenario replays exactly.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orion.gossip.codec import HEADER_SIZE, encoded_size
from orion.gossip.config import GossipConfig
from orion.gossip.member import ALIVE, Addr, Member, MemberEvent
from orion.gossip.messages import TCP, Message, Out
from orion.gossip.swim import Swim

PORT = 7946


@dataclass(frozen=True)
class SimEvent:
    time: float
    observer: str
    event: MemberEvent


@dataclass
class SimNode:
    name: str
    addr: Addr
    swim: Swim
    crashed: bool = False
    paused_until: float = 0.0
    slow_max_delay: float = 0.0  # extra per-message processing delay, uniform in [0, this]
    busy_until: float = 0.0  # FIFO: a slow node handles one message after another
    tick_at: float = math.inf
    stats: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Simulation:
    def __init__(
        self,
        config: GossipConfig,
        seed: int = 0,
        latency: float = 0.002,
        jitter: float = 0.002,
        loss: float = 0.0,
        measure_bytes: bool = False,
    ) -> None:
        self.config = config
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = 0.0
        self.latency = latency
        self.jitter = jitter
        self.loss = loss
        self.measure_bytes = measure_bytes
        self.nodes: dict[str, SimNode] = {}
        self._by_addr: dict[Addr, str] = {}
        self._heap: list[tuple[float, int, str, Any]] = []
        self._counter = 0
        self._groups: dict[str, int] | None = None
        self.log: list[SimEvent] = []
        self.listeners: list[Callable[[SimEvent], None]] = []

    # --------------------------------------------------------------- control

    def add_node(
        self, name: str, meta: dict[str, Any] | None = None, incarnation: int = 0,
        config: GossipConfig | None = None,
    ) -> SimNode:
        addr = (name, PORT)
        swim = Swim(config or self.config, Member(name, addr, meta or {}, incarnation),
                    random.Random(f"{self.seed}:{name}:{incarnation}"))
        node = SimNode(name, addr, swim)
        self.nodes[name] = node
        self._by_addr[addr] = name
        self._after_call(node, swim.tick(self.now))
        return node

    def join(self, name: str, seeds: list[str]) -> None:
        node = self.nodes[name]
        self._after_call(node, node.swim.join(self.now, [self.nodes[s].addr for s in seeds]))

    def start_cluster(self, n: int, prefix: str = "n", settle: float = 30.0) -> list[str]:
        """``n`` nodes that all join the first one; runs until everyone sees everyone."""
        names = [f"{prefix}{i}" for i in range(n)]
        for name in names:
            self.add_node(name)
        for name in names[1:]:
            self.join(name, [names[0]])
        self.run_until(self.converged, timeout=settle)
        return names

    def crash(self, name: str) -> None:
        self.nodes[name].crashed = True

    def restart(self, name: str, seeds: list[str], incarnation: int = 0,
                meta: dict[str, Any] | None = None) -> SimNode:
        """A new process under the same name and address, with empty state."""
        node = self.add_node(name, meta, incarnation)
        self.join(name, seeds)
        return node

    def leave(self, name: str) -> None:
        node = self.nodes[name]
        self._after_call(node, node.swim.leave(self.now))

    def update_meta(self, name: str, meta: dict[str, Any]) -> None:
        self.nodes[name].swim.update_meta(meta)

    def pause(self, name: str, duration: float) -> None:
        self.nodes[name].paused_until = self.now + duration

    def set_slow(self, name: str, max_delay: float) -> None:
        self.nodes[name].slow_max_delay = max_delay

    def partition(self, *groups: list[str]) -> None:
        """Only nodes in the same group can talk; nodes in no group are isolated."""
        self._groups = {n: i for i, g in enumerate(groups) for n in g}

    def heal(self) -> None:
        self._groups = None

    # ------------------------------------------------------------------ run

    def run_for(self, seconds: float) -> None:
        self.run_until(lambda: False, timeout=seconds)

    def run_until(self, pred: Callable[[], bool], timeout: float, step: float = 0.05) -> float | None:
        """Advance the clock until ``pred()`` holds (checked every ``step``); the time, or None."""
        end = self.now + timeout
        while True:
            if pred():
                return self.now
            if self.now >= end:
                return None
            self._advance(min(end, self.now + step))

    def _advance(self, until: float) -> None:
        while self._heap and self._heap[0][0] <= until:
            t, _, kind, data = heapq.heappop(self._heap)
            self.now = t
            if kind == "tick":
                self._on_tick(data, t)
            else:
                self._on_deliver(*data)
        self.now = until

    def _push(self, t: float, kind: str, data: Any) -> None:
        self._counter += 1
        heapq.heappush(self._heap, (t, self._counter, kind, data))

    def _on_tick(self, node: SimNode, t: float) -> None:
        if node.crashed or node.swim is not self.nodes[node.name].swim or t != node.tick_at:
            return
        node.tick_at = math.inf
        if self.now < node.paused_until:
            node.tick_at = node.paused_until
            self._push(node.paused_until, "tick", node)
            return
        self._after_call(node, node.swim.tick(self.now))

    def _on_deliver(self, node: SimNode, src: Addr, msg: Message, ready: bool) -> None:
        if node.crashed or node.swim is not self.nodes[node.name].swim:
            return
        if not ready:
            delay = self.rng.uniform(0, node.slow_max_delay) if node.slow_max_delay else 0.0
            start = max(self.now + delay, node.paused_until, node.busy_until)  # FIFO, not a backlog
            node.busy_until = start
            if start > self.now:
                self._push(start, "deliver", (node, src, msg, True))
                return
        node.stats["msgs_in"] += 1
        self._after_call(node, node.swim.handle(self.now, src, msg))

    def _after_call(self, node: SimNode, outs: list[Out]) -> None:
        for ev in node.swim.events():
            se = SimEvent(self.now, node.name, ev)
            self.log.append(se)
            for cb in self.listeners:
                cb(se)
        for out in outs:
            self._send(node, out)
        nd = node.swim.next_deadline()
        if nd < node.tick_at:
            node.tick_at = max(nd, self.now)
            self._push(node.tick_at, "tick", node)

    def _send(self, node: SimNode, out: Out) -> None:
        node.stats["msgs_out"] += 1
        node.stats["tcp_out" if out.via == TCP else "udp_out"] += 1
        if self.measure_bytes:
            size = encoded_size(out.msg) + HEADER_SIZE
            node.stats["bytes_out"] += size
            if out.via == TCP:
                node.stats["tcp_bytes_out"] += size
        dest_name = self._by_addr.get(tuple(out.dest))  # type: ignore[arg-type]
        if dest_name is None:
            return
        if self._groups is not None and self._groups.get(node.name, -1) != self._groups.get(dest_name, -2):
            return
        if out.via != TCP and self.loss and self.rng.random() < self.loss:
            return
        delay = self.latency + self.rng.random() * self.jitter
        self._push(self.now + delay, "deliver", (self.nodes[dest_name], node.addr, out.msg, False))

    # ---------------------------------------------------------------- views

    def live(self) -> list[str]:
        return [n for n, node in self.nodes.items() if not node.crashed]

    def view(self, observer: str) -> dict[str, str]:
        """Member name -> state, as ``observer`` sees it (itself included)."""
        return {m.name: m.state for m in self.nodes[observer].swim.members()}

    def incarnation_seen(self, observer: str, member: str) -> int | None:
        for m in self.nodes[observer].swim.members():
            if m.name == member:
                return m.incarnation
        return None

    def all_see(self, member: str, state: str, observers: list[str] | None = None) -> bool:
        obs = [o for o in (observers or self.live()) if o != member]
        return all(self.view(o).get(member) == state for o in obs)

    def converged(self, members: list[str] | None = None) -> bool:
        """Every live node sees every live node (or ``members``) alive."""
        live = members or self.live()
        return all(all(self.view(o).get(m) == ALIVE for m in live) for o in live)

    def events_of(self, kind: str, member: str | None = None) -> list[SimEvent]:
        return [e for e in self.log if e.event.kind == kind and (member is None or e.event.member.name == member)]
