"""Composition of the self-healing parts for one agent (the agent calls one function).

Kept beside ``orion/agent/compose.py``: the healing loop (fed by the gossip
liveness it is handed), the leave (drain) path, the ops API blueprint and the
placement loop's down-ranking function are built here from the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from flask import Blueprint

from orion.api.ops import ops_blueprint
from orion.config import AgentConfig
from orion.control import autopilot, restart
from orion.control.healing_loop import HealingLoop, probe_api
from orion.control.liveness import LivenessSource
from orion.node import leave
from orion.peer_http import PeerHttp
from orion.runtime import Runtime
from orion.state.raft import RaftStore
from orion.state.store import Store


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

    def avoid(self, failures: tuple[tuple[str, float], ...], now: float) -> frozenset[str]:
        """For the scheduler: nodes to keep a failing task away from (down-ranking)."""
        return restart.avoid_nodes(failures, now, self.restart_cfg)

    def _local_idle(self) -> bool:
        try:
            return not any(c.live for c in self.runtime.list_managed(self.node_id))
        except Exception:  # noqa: BLE001 - an engine that is down holds nothing we can stop
            return True

    def leave(self) -> str:
        """Graceful leave (SIGTERM): mark this node left, wait until its tasks moved."""
        return leave.drain(self.store, self.node_id, self.drain_timeout, self.write_timeout,
                           local_idle=self._local_idle)


def build_self_healing(cfg: AgentConfig, raft: RaftStore, store: Store, runtime: Runtime,
                       liveness: LivenessSource, peer: PeerHttp) -> SelfHealing:
    """``raft`` for membership and Raft status; ``store`` (maybe instrumented) for commands;
    ``liveness`` (gossip) says who is alive; ``peer`` is how the autopilot probes a peer's API."""
    restart_cfg = restart.RestartConfig(delay=cfg.restart_delay, max_delay=cfg.restart_max_delay,
                                        limit=cfg.restart_limit, window=cfg.restart_window,
                                        local_attempts=cfg.restart_local_attempts)
    healer = HealingLoop(store, liveness, restart_cfg,
                         autopilot.AutopilotConfig(cfg.voter_cap, cfg.dead_voter_cleanup),
                         interval=cfg.heal_interval, write_timeout=cfg.write_timeout,
                         membership=raft.change_membership, members=raft.members,
                         probe=partial(probe_api, peer))
    blueprint = ops_blueprint(store, cfg.write_timeout)
    return SelfHealing(healer, blueprint, restart_cfg, store, runtime, cfg.id, cfg.drain_timeout,
                       cfg.write_timeout)
