"""Push-pull anti-entropy that costs O(1) bytes while views agree: digest first, tables on a mismatch.

memberlist's push-pull swaps the whole member table every round, so its cost
per node grows with n although in a quiet cluster it almost never changes
anything. Here the periodic and reconnect push-pulls send only a 16-byte
digest of the sender's view; the receiver compares it with its own and

* answers with its digest alone when they agree (~50 bytes each way), or
* answers with its full table as a *request* when they differ, which the
  initiator answers in kind: both sides merge the other's table, exactly the
  old full exchange (one extra message).

Joining still sends the full table at once: a joiner's view always differs.

Why equal digests may skip the exchange: the digest covers every field of every
row a full exchange carries that could change the receiver (name, address,
metadata, incarnation, state), so with equal digests merging the other table
would be a no-op. Tombstones (dead/left rows) are left out on purpose: a
"dead" or "left" row never changes a receiver that holds that member dead,
left or not at all, and nodes forget tombstones at different times (once per
probe round, ~n seconds), so counting them would force full exchanges for
minutes after every death in a large cluster. A receiver that still holds the
member alive or suspect has it in its own digest, so that difference shows.
The hash is 128-bit BLAKE2b over a canonical encoding: two different views
collide with probability ~2**-128, so no periodic full exchange is needed to
catch a collision -- it would only cost the bytes this saves.

Rolling upgrades: an old node sends full requests without a digest and expects
a full reply, which it gets. An old node answers our digest-only request with
its full table and never sees ours, so a full reply without a digest to a
non-join request makes us push our table back one way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

import msgpack

from orion.gossip.member import ALIVE, SUSPECT
from orion.gossip.messages import NodeState, PushPull

DIGEST_SIZE = 16


def table_digest(rows: Iterable[NodeState]) -> bytes:
    """A hash of the live rows (alive or suspect), independent of their order.

    Each row is encoded canonically (metadata keys sorted at every level) and
    the encodings are hashed in sorted order: msgpack items delimit themselves,
    so different sets of rows never feed the hash the same bytes.
    """
    encoded = sorted(
        msgpack.packb([r.name, [r.addr[0], r.addr[1]], _canonical(r.meta), r.incarnation, r.state],
                      use_bin_type=True)
        for r in rows if r.state in (ALIVE, SUSPECT)
    )
    h = hashlib.blake2b(digest_size=DIGEST_SIZE)
    for e in encoded:
        h.update(e)
    return h.digest()


def _canonical(v: Any) -> Any:
    """Dicts rebuilt with sorted keys (msgpack keeps insertion order); tuples as lists, as on the wire."""
    if isinstance(v, dict):
        return {k: _canonical(x) for k, x in sorted(v.items(), key=lambda kv: (type(kv[0]).__name__, kv[0]))}
    if isinstance(v, list | tuple):
        return [_canonical(x) for x in v]
    return v


class Answer(Enum):
    """What to send back for a push-pull we received."""

    NOTHING = "nothing"
    DIGEST = "digest"  # views agree: our digest alone, as a reply
    FULL_REQUEST = "full_request"  # views differ: our table, asking for theirs
    FULL_REPLY = "full_reply"  # someone sent their table and asked for ours
    FULL_PUSH = "full_push"  # an old node answered our digest in full: it still needs ours

    @property
    def full(self) -> bool:
        return self in (Answer.FULL_REQUEST, Answer.FULL_REPLY, Answer.FULL_PUSH)

    @property
    def reply(self) -> bool:
        """Whether what we send is a reply (not to be answered) rather than a request."""
        return self is not Answer.FULL_REQUEST


def answer(pp: PushPull, our_digest: Callable[[], bytes]) -> Answer:
    """The rule for every push-pull received (``our_digest`` is only computed when needed)."""
    if not pp.states:  # digest only
        if pp.reply:
            return Answer.NOTHING  # "we agree": a mismatch is answered with a full request instead
        return Answer.DIGEST if pp.digest == our_digest() else Answer.FULL_REQUEST
    if not pp.reply:
        return Answer.FULL_REPLY
    if not pp.digest and not pp.join:
        return Answer.FULL_PUSH
    return Answer.NOTHING
