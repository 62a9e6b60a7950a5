"""Lifeguard's Local Health Multiplier: how much this node should distrust itself.

A node that is CPU-starved or whose network is sick sees *everyone else* as
slow, and plain SWIM turns that into false accusations. The score rises on
evidence that the fault is local (probes where the indirect probers did not
even nack, having to refute suspicions about ourselves) and falls with every
successful probe. Timeouts are stretched by ``score + 1``.
"""

from __future__ import annotations


class Awareness:
    """Score in ``0 .. max_multiplier - 1``; multiplier ``score + 1`` in ``1 .. max``."""

    def __init__(self, max_multiplier: int) -> None:
        self.max_multiplier = max(1, max_multiplier)
        self.score = 0

    def apply_delta(self, delta: int) -> None:
        self.score = min(max(self.score + delta, 0), self.max_multiplier - 1)

    def scale(self, timeout: float) -> float:
        return timeout * (self.score + 1)
