"""``orion operator raft recover``: the surviving host's data dir made a one-voter cluster.

The agent's side of the command (the CLI may not import the Raft backend): which data dir and
Raft address, from the same settings the agent itself starts with. The surgery and its safety
checks are ``orion/raft/recover.py``; the runbook is docs/operations.md.
"""

from __future__ import annotations

from orion.config import AgentConfig
from orion.raft.recover import Recovered, RecoverRefused, recover

__all__ = ["RecoverRefused", "Recovered", "recover_node"]


def recover_node(cfg: AgentConfig) -> Recovered:
    """Recover ``cfg``'s data dir as the node at ``cfg.raft_addr``, the only voter."""
    return recover(cfg.data_dir, cfg.raft_addr)
