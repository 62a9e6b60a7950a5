"""Composition of the self-healing parts for one agent (the agent calls one function).

Kept beside ``orion/agent/compose.py``: the healing loop (fed by the gossip
liveness it is handed), the graceful stops (restart: announce and hand Raft
leadership over; leave: drain), the ops API blueprint and the placement loop's
down-ranking function are built here from the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from flask import Blueprint

from orion.api.ops import ops_blueprint
from orion.config import AgentConfig
from orion.control import drain, restart
from orion.control.healing_loop import HealingLoop, probe_api
from orion.domain.model import NODE_LEFT
from orion.membership import autopilot
from orion.membership.liveness import LivenessSource
from orion.node import leave
from orion.peer_http import PeerHttp
from orion.runtime import Runtime, RuntimeFailure
from orion.store.port import Store


@dataclass
class SelfHealing:
    """What the agent holds of self-healing."""

    healer: HealingLoop
    blueprint: Blueprint
    restart_cfg: restart.RestartConfig
    store: Store
    runtime: Runtime
    node_id: str
    drain_timeout: float
    write_timeout: float
    # Hands Raft leadership to a caught-up follower if this node leads; returns a sentence.
    hand_over: Callable[[], str]

    def avoid(self, failures: tuple[tuple[str, float], ...], now: float) -> frozenset[str]:
        """For the scheduler: nodes to keep a failing task away from (down-ranking)."""
        return restart.avoid_nodes(failures, now, self.restart_cfg)

    def _local_idle(self) -> bool:
        try:
            return not any(c.live for c in self.runtime.list_managed(self.node_id))
        except RuntimeFailure:  # an engine that is down holds nothing we can stop
            return True

    def step_away(self) -> str:
        """Graceful stop that keeps the containers (SIGTERM by default): announce
        ``restarting``, then hand leadership over so no election timeout is paid.

        A node drained beforehand (``orion node drain``: decommissioning) finishes its
        leave instead: it waits until its containers are stopped, as a drain on SIGTERM would.
        """
        node, _ = self.store.read(lambda m: m.node(self.node_id))
        if node is not None and node.status == NODE_LEFT:
            return f"{self.leave()}; {self.hand_over()}"
        announced = leave.announce_restart(self.store, self.node_id, self.write_timeout)
        return f"{announced}; {self.hand_over()}"

    def leave(self) -> str:
        """Graceful leave (SIGTERM): mark this node left, wait until its tasks moved."""
        return leave.drain(self.store, self.node_id, self.drain_timeout, self.write_timeout,
                           local_idle=self._local_idle)


def build_self_healing(cfg: AgentConfig, store: Store, runtime: Runtime, liveness: LivenessSource,
                       on_reschedule: Callable[[str, int], object], hand_over: Callable[[], str],
                       peer: PeerHttp) -> SelfHealing:
    """``store`` (maybe instrumented) for commands and Raft membership; ``liveness``
    (gossip) says who is alive; ``on_reschedule(cause, count)`` hears of tasks sent back
    to the scheduler (metrics); ``hand_over()`` passes Raft leadership on before a stop;
    ``peer`` is how the autopilot probes a peer's API (scheme, TLS, token)."""
    restart_cfg = restart.RestartConfig(**cfg.part("restart"))
    healer = HealingLoop(store, liveness, restart_cfg, autopilot.AutopilotConfig(**cfg.part("autopilot")),
                         **cfg.part("healing"), drain_cfg=drain.DrainSettings(**cfg.part("drain")),
                         on_reschedule=on_reschedule, probe=partial(probe_api, peer))
    blueprint = ops_blueprint(store, cfg.write_timeout)
    return SelfHealing(healer, blueprint, restart_cfg, store, runtime, cfg.id, cfg.drain_timeout,
                       cfg.write_timeout, hand_over=hand_over)
