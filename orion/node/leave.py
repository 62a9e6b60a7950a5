"""Graceful stops: a restart that keeps the node's containers, and a leave that moves them.

Restart (the agent's SIGTERM, by default): the agent commits ``restarting`` for
its node before it goes. Its containers belong to dockerd and keep running; the
leader moves none of its tasks while the node is away for up to
``restart_grace`` (``orion/membership/liveness.py``), and the agent adopts them when
it starts again (same container, same task and generation labels). Whoever
announces nothing (SIGKILL, a crash) is dead after gossip detection.

Leave (``orion node drain NODE``, ``POST /nodes/<id>/drain``, and SIGTERM with
``leave_on_terminate``, for decommissioning) marks the node ``left``. From then on the scheduler places nothing
there, and the leader migrates every task it holds (``orion/control/drain.py``):
a replacement is placed elsewhere (a new generation) and runs before the
leaving node's reconciler, once the migration is finished, stops the original.
The agent waits for its node to hold nothing (bounded by ``drain_timeout``)
before it stops its loops and exits.

A drained node that is started again registers afresh, which makes it
``alive`` (``RegisterNode`` carries its status).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from orion.domain.model import NODE_LEFT, NODE_RESTARTING
from orion.state.commands import SetNodeStatus
from orion.state.results import Refused
from orion.store.port import Store, StoreError


def drain_command(node_id: str) -> SetNodeStatus:
    return SetNodeStatus(request_id=uuid.uuid4().hex, node_id=node_id, status=NODE_LEFT)


def announce_restart(store: Store, node_id: str, timeout: float) -> str:
    """Commit ``restarting`` for ``node_id`` (its own agent, stopping); say what happened.

    Without a leader nobody could move the tasks anyway, so nothing is lost by skipping it.
    """
    if not store.has_leader():
        return f"restart of {node_id} not announced: no leader"
    command = SetNodeStatus(request_id=uuid.uuid4().hex, node_id=node_id, status=NODE_RESTARTING)
    try:
        result = store.submit(command, timeout)
    except StoreError as exc:
        return f"restart of {node_id} not announced: {exc}"
    if isinstance(result, Refused):
        return f"restart of {node_id} not announced: {result.detail}"
    return f"announced the restart of {node_id}: its containers keep running"


def holds_nothing(store: Store, node_id: str) -> bool:
    """True once no task holds this node (all moved, or none there)."""
    held, _ = store.read(lambda m: m.tasks_on(node_id))
    return not held


def drain(store: Store, node_id: str, timeout: float, write_timeout: float,
          local_idle: Callable[[], bool] | None = None,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> str:
    """Mark ``node_id`` left and wait until its tasks moved; return what happened.

    ``local_idle`` (the agent's own drain): also wait until this node's
    reconciler has stopped its containers, so none outlives the agent.
    """
    if not store.has_leader():
        return f"drain of {node_id} skipped: no leader (the cluster cannot move tasks now)"
    deadline = clock() + timeout
    try:
        result = store.submit(drain_command(node_id), min(write_timeout, timeout))
    except StoreError as exc:
        return f"drain of {node_id} not committed: {exc}"
    if isinstance(result, Refused):
        return f"drain of {node_id} refused: {result.detail}"
    while clock() < deadline:
        if holds_nothing(store, node_id) and (local_idle is None or local_idle()):
            return f"drained {node_id}: its tasks were moved"
        sleep(0.1)
    held, _ = store.read(lambda m: [t.id for t in m.tasks_on(node_id)])
    return f"drain of {node_id} timed out after {timeout:g}s with {len(held)} task(s) still there"
