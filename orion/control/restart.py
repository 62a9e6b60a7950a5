"""Restart policy for crashed containers, as pure functions.

A node reports its container ``failed`` (or ``completed``); the leader decides
what happens next and commits it as one ``RestartTask``. Deciding on the leader
rather than in the node's reconciler keeps the counters replicated: a restart
limit or a down-ranking survives an agent restart and a leader change, and
"restart elsewhere" needs the scheduler anyway.

The rules (Nomad's restart stanza and Swarm's restart policy, combined):

* ``never``: a finished container stays finished.
* ``on-failure``: restart after a non-zero exit; ``always``: after any exit.
* Each restart waits ``delay * 2**recent_failures``, capped at ``max_delay``.
* ``limit`` failures inside ``window`` seconds: give up, the task stays failed.
* The first ``local_attempts`` restarts in a row on one node happen there
  (the image is cached, its ports are known); after that the task goes back to
  pending and the scheduler places it elsewhere.
* A node with ``DOWNRANK_FAILURES`` failures of a task within
  ``DOWNRANK_WINDOW`` seconds is avoided for that task while another node fits
  (Swarm's rule: 5 failures in 5 minutes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orion.domain.model import FAILED, Task, wants_restart

# Swarm's numbers for "this node keeps failing this task".
DOWNRANK_FAILURES = 5
DOWNRANK_WINDOW = 300.0

Failure = tuple[str, float]  # (node id, leader wall time)


@dataclass(frozen=True)
class RestartConfig:
    """The agent's ``restart_*`` settings (declared ``restart.*``, with values and reasons, in
    ``orion/config/healing.py``)."""

    delay: float
    max_delay: float
    limit: int
    window: float
    local_attempts: int


@dataclass(frozen=True)
class NoRestart:
    reason: str


@dataclass(frozen=True)
class Wait:
    until: float


@dataclass(frozen=True)
class RestartHere:
    node_id: str
    reason: str


@dataclass(frozen=True)
class Reschedule:
    reason: str


@dataclass(frozen=True)
class GiveUp:
    reason: str


RestartDecision = NoRestart | Wait | RestartHere | Reschedule | GiveUp


def backoff(attempt: int, cfg: RestartConfig) -> float:
    """Seconds before restart number ``attempt`` (0-based): doubling, capped."""
    return min(cfg.max_delay, cfg.delay * (2 ** min(attempt, 30)))


def recent(failures: Sequence[Failure], now: float, window: float) -> list[Failure]:
    return [f for f in failures if now - f[1] < window]


def local_streak(failures: Sequence[Failure], node_id: str) -> int:
    """How many of the latest failures, in a row, happened on ``node_id``."""
    streak = 0
    for node, _at in reversed(failures):
        if node != node_id:
            break
        streak += 1
    return streak


def decide(task: Task, failures: Sequence[Failure], ended_at: float, now: float,
           cfg: RestartConfig) -> RestartDecision:
    """What to do with a failed/finished ``task`` at ``now``.

    ``failures`` are the task's recorded failures before this one; ``ended_at``
    is when the leader first saw this one (its own clock).
    """
    if not wants_restart(task.spec.restart_policy, task.state):
        return NoRestart(f"restart policy {task.spec.restart_policy} does not restart a {task.state} task")
    node = task.node_id or ""
    window = recent(failures, now, cfg.window)
    if len(window) + 1 > cfg.limit:
        return GiveUp(f"restart limit reached: {len(window) + 1} failures within {cfg.window:g}s")
    until = ended_at + backoff(len(window), cfg)
    if now < until:
        return Wait(until)
    streak = local_streak(failures, node) + 1  # this failure counts too
    what = "failed" if task.state == FAILED else "exited"
    if node and streak <= cfg.local_attempts:
        return RestartHere(node, f"restarting after it {what} ({streak} in a row on {node})")
    return Reschedule(f"rescheduling after it {what} {streak} times in a row on {node or 'its node'}")


def down_ranked(failures: Sequence[Failure], now: float, threshold: int = DOWNRANK_FAILURES,
                window: float = DOWNRANK_WINDOW) -> frozenset[str]:
    """Nodes that failed this task ``threshold`` times within ``window`` seconds."""
    counts: dict[str, int] = {}
    for node, _at in recent(failures, now, window):
        counts[node] = counts.get(node, 0) + 1
    return frozenset(n for n, c in counts.items() if c >= threshold)


def avoid_nodes(failures: Sequence[Failure], now: float, cfg: RestartConfig) -> frozenset[str]:
    """Nodes the scheduler should place this task elsewhere than, if it can.

    The down-ranked ones, and the node it just failed on too often in a row (the
    restart policy sent it away from there: putting it straight back would undo that).
    """
    avoid = set(down_ranked(failures, now))
    if failures:
        last = failures[-1][0]
        if local_streak(failures, last) > cfg.local_attempts:
            avoid.add(last)
    return frozenset(avoid)
