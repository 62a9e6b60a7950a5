"""A linearizability checker for histories of registers, one register per key (issue #20).

A history is what clients saw: each :class:`Op` was called at ``call`` and
answered at ``ret`` (one ``time.monotonic`` clock, one process). It is
*linearizable* when every operation can be given one instant between its call
and its answer such that, taken in the order of those instants, the operations
are a legal run of a register: a read returns the last value written, a
compare-and-set swaps only when the register holds what it expects.

The search is Wing & Gong's, with Lowe's improvements as Porcupine uses them:

* **per key**: registers are independent, so each key's sub-history is checked
  alone (linearizability is compositional); a failure names its key.
* **a doubly linked list of call and return events** in time order; the search
  takes the first call whose operation may go next, lifts it (and its return)
  out of the list, and backtracks when it meets a return it has not placed.
* **a cache of (operations placed, register state)**: two paths that placed the
  same set and reached the same state have the same future, so the second is cut.
* **reads go when they can**: an operation that leaves the state as it is and
  may go now is placed now and never tried elsewhere (see ``search``), so a
  crowd of concurrent reads of one value costs a step each, not 2^n subsets.
* **unknown outcomes**: an operation whose answer never came (a timeout, a lost
  connection, a 5xx after the request was sent) may have taken effect at any
  instant after its call, or never. Its return is at +inf: it can be placed
  last, which is the same as never. A read with an unknown answer says nothing
  and is dropped; an unknown write whose value nobody ever saw is dropped too
  (placing it last is always possible, so it changes no verdict); an unknown
  compare-and-set may have swapped or not (the register state is the *set* of
  values it may hold, Porcupine's power-set model in one line).
* **a budget**: the search counts its steps and answers UNKNOWN past the budget,
  never hangs.

Written values must be unique per key (each write a fresh value): that is what
lets the witness and the staleness report (``linearizability_report.py``) say
which write a read saw.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from enum import Enum

READ, WRITE, CAS = "read", "write", "cas"
# The value of a key nobody has written yet (GET answers 404).
ABSENT = None
# Steps one key's search may take before it answers UNKNOWN: a few seconds of Python.
DEFAULT_BUDGET = 2_000_000


class Status(Enum):
    OK = "ok"  # answered: it took effect (a write), this is what it saw (a read)
    FAIL = "fail"  # refused for sure (a 4xx, a connection refused before sending): it never happened
    UNKNOWN = "unknown"  # no answer: it may have taken effect, at any time after its call, or never


class Verdict(Enum):
    LINEARIZABLE = "linearizable"
    NOT_LINEARIZABLE = "not linearizable"
    UNKNOWN = "unknown (search budget spent)"


@dataclass(frozen=True)
class Op:
    """One client operation on one key: what was asked, when, and what came back."""

    process: str  # the client that ran it (a client runs one operation at a time)
    key: str
    f: str  # READ | WRITE | CAS
    value: Hashable = ABSENT  # WRITE: the value written; READ: the value seen; CAS: the new value
    call: float = 0.0
    ret: float = math.inf  # math.inf when the outcome is unknown
    status: Status = Status.OK
    expect: Hashable = ABSENT  # CAS: the value it swaps from
    swapped: bool = True  # CAS with Status.OK: whether it swapped
    node: str = ""  # which server it was sent to (the report names it)

    def __post_init__(self) -> None:
        if self.f not in (READ, WRITE, CAS):
            raise ValueError(f"op kind {self.f!r} is not one of read, write, cas")
        if self.status is not Status.UNKNOWN and not self.ret >= self.call:
            raise ValueError(f"{self.describe()}: answered at {self.ret} before its call at {self.call}")

    @property
    def may_write(self) -> bool:
        """Whether this operation may have changed the register (a write, a CAS that may have swapped)."""
        if self.status is Status.FAIL:
            return False
        return self.f == WRITE or (self.f == CAS and (self.status is Status.UNKNOWN or self.swapped))

    @property
    def observed(self) -> Hashable | None:
        """The value this operation proves the register held (a read's answer, a swap's expectation)."""
        if self.status is not Status.OK:
            return None
        if self.f == READ:
            return self.value
        if self.f == CAS and self.swapped:
            return self.expect
        return None

    @property
    def observes(self) -> bool:
        return self.status is Status.OK and (self.f == READ or (self.f == CAS and self.swapped))

    def describe(self) -> str:
        outcome = {Status.OK: "", Status.FAIL: " (failed)", Status.UNKNOWN: " (unknown outcome)"}[self.status]
        if self.f == READ:
            what = f"read -> {self.value!r}"
        elif self.f == WRITE:
            what = f"write {self.value!r}"
        else:
            swap = "" if self.status is not Status.OK else (" -> swapped" if self.swapped else " -> not swapped")
            what = f"cas {self.expect!r} -> {self.value!r}{swap}"
        return f"{self.process}{'@' + self.node if self.node else ''} {what}{outcome}"


def step(state: frozenset, op: Op) -> frozenset | None:
    """The register's specification: the state after ``op`` (the values it may hold), or None if
    ``op`` cannot happen in ``state``. A state holds more than one value only after an unknown CAS."""
    if op.f == READ:
        return frozenset((op.value,)) if op.value in state else None
    if op.f == WRITE:
        return frozenset((op.value,))
    if op.status is Status.UNKNOWN:  # swapped (if it could) or not (if it could)
        after = (frozenset((op.value,)) if op.expect in state else frozenset()) | (state - {op.expect})
        return after or None
    if op.swapped:
        return frozenset((op.value,)) if op.expect in state else None
    return (state - {op.expect}) or None


INITIAL = frozenset((ABSENT,))


def by_key(history: Iterable[Op]) -> dict[str, list[Op]]:
    keys: dict[str, list[Op]] = {}
    for op in history:
        keys.setdefault(op.key, []).append(op)
    return keys


def relevant(ops: Iterable[Op]) -> list[Op]:
    """The operations that can matter to the verdict, by call time.

    Dropped: what failed for sure (it never happened), reads without an answer (they
    say nothing), and unknown writes whose value no operation ever observed or expected
    (they can always be placed last, i.e. never) — unless a CAS may have failed: "not
    what it expected" is a sight of every other value. Unknown operations return at +inf."""
    ops = [op for op in ops if op.status is not Status.FAIL and not (op.f == READ and op.status is Status.UNKNOWN)]
    seen = {op.observed for op in ops if op.observes} | {op.expect for op in ops if op.f == CAS}
    if any(op.f == CAS and not (op.status is Status.OK and op.swapped) for op in ops):
        seen = None  # a CAS that may have failed saw "not its expectation", which any write may explain
    kept = [op for op in ops
            if not (op.f == WRITE and op.status is Status.UNKNOWN and seen is not None and op.value not in seen)]
    return sorted(kept, key=lambda op: (op.call, op.ret))


@dataclass(frozen=True)
class Search:
    verdict: Verdict
    steps: int
    order: tuple[Op, ...] = ()  # a linearization, when one was found


def search(ops: list[Op], budget: int = DEFAULT_BUDGET, initial: frozenset = INITIAL) -> Search:
    """Wing & Gong's search with Lowe's cache over one key's operations (see the module docstring).

    Events live in arrays as a doubly linked list: event 2i is op i's call, 2i+1 its
    return, ``head`` a sentinel before the first; -1 ends the list. At equal times a
    call sorts before a return, so touching operations count as concurrent (the
    permissive reading: a clock tie never makes a false alarm)."""
    n = len(ops)
    head = 2 * n
    events = sorted(range(2 * n), key=lambda e: (ops[e >> 1].ret if e & 1 else ops[e >> 1].call, e & 1))
    nxt = [-1] * (2 * n + 1)
    prv = [-1] * (2 * n + 1)
    last = head
    for e in events:
        nxt[last], prv[e] = e, last
        last = e

    def lift(i: int) -> None:
        for e in (2 * i, 2 * i + 1):
            nxt[prv[e]] = nxt[e]
            if nxt[e] != -1:
                prv[nxt[e]] = prv[e]

    def unlift(i: int) -> None:
        for e in (2 * i + 1, 2 * i):  # the reverse of lift: its links are still in place
            nxt[prv[e]] = e
            if nxt[e] != -1:
                prv[nxt[e]] = e

    state, placed, steps = initial, 0, 0
    cache: set[tuple[int, frozenset]] = set()
    stack: list[tuple[int, frozenset, bool]] = []  # (op placed, the state before it, placed for free)
    e = nxt[head]
    while nxt[head] != -1:
        steps += 1
        if steps > budget:
            return Search(Verdict.UNKNOWN, steps)
        if e & 1 == 0:  # a call: may its operation go next?
            i = e >> 1
            after = step(state, ops[i])
            if after is None:
                e = nxt[e]
                continue
            # An answered operation that never writes and leaves the state as it is (a read
            # that may go now, a CAS that did not swap) is best placed now: any completion
            # that places it later still works with it moved here (it changes nothing, and
            # every operation that must precede it is placed). So a failure after it is a
            # failure of this configuration: no alternative is tried.
            free = after == state and ops[i].status is Status.OK and not ops[i].may_write
            if (placed | (1 << i), after) not in cache:
                cache.add((placed | (1 << i), after))
                stack.append((i, state, free))
                state, placed = after, placed | (1 << i)
                lift(i)
                e = nxt[head]
                continue
            if not free:
                e = nxt[e]
                continue
        # a return whose operation is not placed (or a free step that failed before): undo
        while True:
            if not stack:
                return Search(Verdict.NOT_LINEARIZABLE, steps)
            i, state, free = stack.pop()
            placed &= ~(1 << i)
            unlift(i)
            if not free:
                break
        e = nxt[2 * i]
    return Search(Verdict.LINEARIZABLE, steps, tuple(ops[i] for i, _, _ in stack))


def is_legal_order(order: Iterable[Op], initial: frozenset = INITIAL) -> bool:
    """Whether ``order`` is a legal sequential run of the register (a test oracle)."""
    state: frozenset | None = initial
    for op in order:
        state = step(state, op)
        if state is None:
            return False
    return True
