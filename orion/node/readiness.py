"""Engine health is node health: when is a node ready to run tasks?

Kubernetes marks a node NotReady when its container runtime is down; Orion
does the same. A node whose Docker engine has not answered for longer than
``grace`` reports itself not ready (``SetNodeReadiness``, submitted by the node:
only it can see its engine, see ``orion/state/commands/nodes.py``); the leader then
moves its tasks and places nothing there. It is ready again at the engine's
first answer: the tasks are gone by then, so being wrong costs at most one
more grace period, while a recovered node idles no longer than a probe.

The rule counts from the last answer, not from the first failure: short
blips (a ``systemctl restart docker``, a slow ping under load) that end
within the grace never trip it, however often they repeat, while an engine
that is down stays down for the whole grace whatever the probe timing.

Pure: the last answer's time, this probe's outcome and ``now`` in, the new
last answer and a decision out (:func:`step`). The runner is
``orion/node/readiness_loop.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str = ""  # why not, for the node's record and `orion nodes`


READY = Readiness(True)


def step(last_answer: float, answered: bool, now: float, grace: float) -> tuple[float, Readiness]:
    """One probe of the engine at ``now``: the updated time of its last answer, and whether the
    node is ready. Start with ``last_answer`` = when watching began, so an engine that never
    answered gets the same grace as one that just stopped."""
    if answered:
        return now, READY
    silent = now - last_answer
    if silent > grace:
        return last_answer, Readiness(False, f"docker engine has not answered for {silent:.0f}s")
    return last_answer, READY
