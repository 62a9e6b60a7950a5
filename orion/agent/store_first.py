"""The Raft replica first: started before the rest of the agent is even imported.

Half a second of an agent's start is Python importing and building its parts
(Flask, the docker SDK, prometheus, every loop; bench/start_ready.py). The
replica needs none of it: only ``orion.raft``, ``orion.state``, pysyncobj and cryptography. So
the worker starts it first, and the rest is imported and built while pysyncobj
binds its port, dials its peers, hears the leader and catches up (a restarted
node) or elects itself at once (a fresh one, ``orion/raft/patches.py``, rule 6):
that wait, ~0.2 s on loopback, overlaps the imports instead of following them.

A node joining for the first time cannot: its Raft partners come from gossip
discovery, which needs the gossip agent (``compose.build_agent`` does it in
order). Keep this module's imports light: that is its point.
"""

from __future__ import annotations

from orion.config import AgentConfig
from orion.raft.store import RaftSettings, RaftStore
from orion.state.entries import ReplicatedMachine


def joining(cfg: AgentConfig) -> bool:
    """A first join (``--join`` and no state of an admitted node): partners come from discovery."""
    return bool(cfg.join) and not RaftStore.has_state(cfg.data_dir)


def raft_settings(cfg: AgentConfig) -> RaftSettings:
    return RaftSettings(self_addr=cfg.raft_addr, bind_addr=f"{cfg.bind}:{cfg.raft_port}", data_dir=cfg.data_dir,
                        secret=cfg.raft_secret or None, **cfg.part("raft"), joining=joining(cfg))


def replica(settings: RaftSettings, partners: list[str]) -> RaftStore:
    """The node's replica of Orion's state machine: the backend is handed the machine."""
    return RaftStore(settings, partners, ReplicatedMachine())


def start_store(cfg: AgentConfig) -> RaftStore | None:
    """The node's replica, running; None for a first join (built after discovery)."""
    if joining(cfg):
        return None
    return replica(raft_settings(cfg), [])
