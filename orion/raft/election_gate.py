"""Rule 6 of ``patches.py``: the election gate — pysyncobj's configuration, whose election
timeout is "never" for a joiner not admitted yet and "now" for a voter alone.

pysyncobj draws each election timeout from its configuration when it arms it
(``syncobj.py:1108-1111``), so the gate is the configuration itself: no method
of pysyncobj is replaced. Rule 10 (pre-vote, ``patches.py``) reads its
configured minimum as the time a leader's contact keeps a voter from granting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pysyncobj import SyncObjConf

# An election deadline no process lives to see (seconds).
NEVER = 1e9


class ElectionGate(SyncObjConf):
    """pysyncobj's configuration, whose election timeout is "never" while the gate is closed,
    and "now" while this voter is alone in its configuration (``alone``).

    Closed: the joiner's configuration answers "never" until the leader's answer says it
    is admitted; then the leader's next heartbeat, which by then reaches it, re-arms an
    ordinary timeout. A node outside the configuration never campaigns and never raises a
    term; it still follows a leader and votes, as Raft's non-voting catch-up phase would.
    Starting the joiner only after admission would deadlock the 1 -> 2 step (the second
    voter's entry commits only with its acknowledgement); starting it read-only cannot
    acknowledge as the new voter, and pysyncobj cannot promote a read-only node in place.

    Alone: the timeout's value never decides Raft's safety — terms and votes do;
    randomizing it only keeps candidates from splitting the vote, and a voter alone has no
    rival. Once a voter is added, the very next draw is an ordinary randomized one again.
    """

    def __init__(self, closed: bool, alone: Callable[[], bool] | None = None, **kwargs: Any) -> None:
        self._closed = False
        self._alone: Callable[[], bool] = lambda: False
        super().__init__(**kwargs)
        self._closed = closed
        if alone is not None:
            self._alone = alone

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def election_min(self) -> float:
        """The configured minimal election timeout, whatever the gate answers (rule 10's lease)."""
        return self._min_timeout

    def open(self) -> None:
        """Admitted: the next timeout pysyncobj arms is an ordinary one."""
        self._closed = False

    def watch_alone(self, alone: Callable[[], bool]) -> None:
        """From now on ask ``alone`` (read on the tick thread, at each draw) whether this
        voter is the only one in its configuration."""
        self._alone = alone

    def _override(self) -> float | None:
        if self._closed:
            return NEVER
        if self._alone():
            return 0.0
        return None

    @property
    def raftMinTimeout(self) -> float:  # noqa: N802 - pysyncobj's name
        override = self._override()
        return self._min_timeout if override is None else override

    @raftMinTimeout.setter
    def raftMinTimeout(self, value: float) -> None:  # noqa: N802
        self._min_timeout = value

    @property
    def raftMaxTimeout(self) -> float:  # noqa: N802
        override = self._override()
        return self._max_timeout if override is None else override

    @raftMaxTimeout.setter
    def raftMaxTimeout(self, value: float) -> None:  # noqa: N802
        self._max_timeout = value

    def validate(self) -> None:
        """pysyncobj's own checks, against the ordinary timeouts."""
        closed, alone = self._closed, self._alone
        self._closed, self._alone = False, lambda: False
        try:
            super().validate()
        finally:
            self._closed, self._alone = closed, alone
