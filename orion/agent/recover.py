"""``orion operator raft recover``: the surviving host's data dir made a one-voter cluster.

The agent's side of the command: the CLI may not import the Raft backend, so it hands the data
dir and the Raft address (from the agent's own settings, or given) over here. The surgery and
its safety checks are ``orion/raft/recover.py``; the runbook is docs/operations.md.
"""

from __future__ import annotations

from orion.raft.recover import Recovered, RecoverRefused, recover

__all__ = ["RecoverRefused", "Recovered", "recover_node"]


def recover_node(data_dir: str, raft_addr: str) -> Recovered:
    """Recover ``data_dir`` as the node at ``raft_addr``, the only voter."""
    return recover(data_dir, raft_addr)
