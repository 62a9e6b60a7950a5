"""Who a joining node becomes: a Raft voter or a non-voting replica, decided by the leader.

The decision used to be the joiner's, made from a member list it had read
earlier: a hundred agents started together all read "fewer than five voters",
all asked to vote, and all but a few were refused and left outside the
cluster. Now the joiner only asks to be admitted; the leader decides from its
own configuration, under the lock that serializes every membership change
(``RaftStore.admit``), so two decisions never read the same voter count.

:func:`decide` is that decision, pure: the current voters, the cap, the
joiner. It is idempotent for a voter (one already in the configuration is told
"voter" again, so a joiner whose answer was lost can ask again) and has no side
effect for a replica (nothing is recorded: a replica is simply not added).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

# A voter takes part in elections and counts for quorum; a replica (pysyncobj's
# readonly node) receives the log and forwards writes, and does neither.
Role = Literal["voter", "replica"]
VOTER: Role = "voter"
REPLICA: Role = "replica"


@dataclass(frozen=True)
class Admission:
    """The leader's answer to "admit me": the role, and why (for the logs of both sides)."""

    role: Role
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "reason": self.reason}


def decide(voters: Collection[str], voter_cap: int, joiner: str) -> Admission:
    """``voters``: the Raft addresses in the leader's configuration (committed or
    being committed); ``joiner``: the Raft address asking to be admitted."""
    if joiner in voters:
        return Admission(VOTER, f"already one of the {len(voters)} voters")
    if len(voters) < voter_cap:
        return Admission(VOTER, f"voter {len(voters) + 1} of at most {voter_cap}")
    return Admission(REPLICA, f"{len(voters)} voters already (voter_cap {voter_cap}): a non-voting replica")
