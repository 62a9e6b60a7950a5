"""Lifeguard's dynamic suspicion timeout, for one suspected member.

A suspicion starts with the long ``max`` timeout: one accuser alone (perhaps a
slow one) must wait, giving the accused time to refute. Each *independent*
confirmation -- a different member also suspecting it -- is evidence the
accused really is gone, so the timeout shrinks logarithmically towards ``min``
once ``k`` confirmations are in:

    timeout(C) = max(min, max - (max - min) * log(C + 1) / log(k + 1))
"""

from __future__ import annotations

import math


def suspicion_timeout(confirmations: int, k: int, min_t: float, max_t: float) -> float:
    if k < 1:
        return min_t
    frac = math.log(confirmations + 1) / math.log(k + 1)
    return max(min_t, max_t - (max_t - min_t) * frac)


class Suspicion:
    """Timer state for one suspect. Pure: callers ask for :attr:`deadline`."""

    def __init__(self, accuser: str, start: float, k: int, min_t: float, max_t: float) -> None:
        self.start = start
        self.k = k
        self.min_t = min_t
        self.max_t = max_t if k >= 1 else min_t
        # The original accuser does not count as a confirmation of itself.
        self._seen = {accuser}
        self.confirmations = 0
        self.deadline = start + suspicion_timeout(0, k, min_t, self.max_t)

    def confirm(self, accuser: str) -> bool:
        """Record an accusation; True if it was new and independent (worth re-gossiping)."""
        if self.confirmations >= self.k or accuser in self._seen:
            return False
        self._seen.add(accuser)
        self.confirmations += 1
        self.deadline = self.start + suspicion_timeout(self.confirmations, self.k, self.min_t, self.max_t)
        return True
