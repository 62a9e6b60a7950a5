"""The verdict on a whole history, and what a person needs when it is "no" (issue #20).

:func:`check` runs the search of ``linearizability.py`` on every key and, for a
key that is not linearizable, shrinks its history to a **witness**: a few
operations that already cannot be ordered. It starts from the first stale read's
proof (below) when there is one, else from the whole history, cutting chunks off
the end and the start; then single operations go, keeping each cut only when the search
still says "not linearizable" (so the witness is verified, whatever the shrinking
got wrong). A cut keeps every write whose value a kept operation saw, and keeps
the writes while a CAS that did not swap remains: then any linearization of the
whole history, restricted to the witness, would be a linearization of the
witness, so a witness proves the whole history is not linearizable.

**Stale reads** are measured apart from the search, from the times alone: a
value v is *superseded* once a write w' that began after v was certainly in
place (v's write answered, or a read saw v) was itself certainly in place (it
answered, or a read saw its value). A read that began after that instant and
still returned v is stale — each one a violation by itself — and ``behind`` is
how long after that instant it began. Reads of a value nobody wrote are named
apart.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from linearizability import (
    ABSENT,
    CAS,
    DEFAULT_BUDGET,
    READ,
    Op,
    Status,
    Verdict,
    by_key,
    relevant,
    search,
)

# Searches the shrinking may run per key: each is one full search of a smaller history.
SHRINK_SEARCHES = 300


@dataclass(frozen=True)
class StaleRead:
    read: Op
    newer: Op  # the first write certainly in place, and certainly after the value read, when the read began
    since: float  # when that write was certainly in place (its answer, or an answer that showed it)
    versions: int  # how many such newer writes were certainly in place when the read began
    proof: tuple[Op, ...] = ()  # operations that alone cannot be ordered: a witness

    @property
    def behind(self) -> float:
        """Seconds the read began after its value was certainly replaced."""
        return self.read.call - self.since


@dataclass(frozen=True)
class KeyReport:
    key: str
    verdict: Verdict
    ops: int  # operations that mattered (see ``linearizability.relevant``)
    steps: int
    witness: tuple[Op, ...] = ()
    never_written: tuple[Op, ...] = ()  # reads of a value no operation wrote
    stale: tuple[StaleRead, ...] = ()


@dataclass(frozen=True)
class Report:
    keys: dict[str, KeyReport]
    origin: float = 0.0  # times in the text are seconds after this instant
    notes: list[str] = field(default_factory=list)

    @property
    def linearizable(self) -> bool:
        return all(k.verdict is Verdict.LINEARIZABLE for k in self.keys.values())

    @property
    def violations(self) -> list[KeyReport]:
        return [k for k in self.keys.values() if k.verdict is Verdict.NOT_LINEARIZABLE]

    @property
    def stale(self) -> list[StaleRead]:
        return sorted((s for k in self.keys.values() for s in k.stale), key=lambda s: -s.behind)

    def text(self, max_lines: int = 12) -> str:
        return render(self, max_lines)


def effective_by(ops: Iterable[Op]) -> dict[Hashable, tuple[float, Op | None]]:
    """For each value written, the latest instant it was certainly in place — its write's answer
    or the first answer of an operation that saw it (inf: never certainly) — and that operation."""
    when: dict[Hashable, tuple[float, Op | None]] = {ABSENT: (-math.inf, None)}
    ops = list(ops)
    for op in ops:
        if op.may_write and op.ret < when.get(op.value, (math.inf, None))[0]:
            when[op.value] = (op.ret, op)
        elif op.may_write:
            when.setdefault(op.value, (math.inf, op))
    for op in ops:
        if op.observes and op.observed in when and op.ret < when[op.observed][0]:
            when[op.observed] = (op.ret, op)
    return when


def _writer(ops: list[Op], value: Hashable) -> list[Op]:
    return [op for op in ops if op.may_write and op.value == value]


def stale_reads(ops: list[Op]) -> list[StaleRead]:
    """Every read (of one key) that returned a value already superseded when it began."""
    when = effective_by(ops)
    writes = sorted((op for op in ops if op.may_write), key=lambda op: op.call)
    calls = [w.call for w in writes]
    # suffix[j]: the earliest instant any write from writes[j:] was certainly in place
    suffix = [math.inf] * (len(writes) + 1)
    for j in range(len(writes) - 1, -1, -1):
        suffix[j] = min(suffix[j + 1], when[writes[j].value][0])
    found = []
    for r in ops:
        if r.f != READ or r.status is not Status.OK or r.value not in when:
            continue
        j = bisect.bisect_right(calls, when[r.value][0])  # the writes that began after r's value was in place
        if suffix[j] >= r.call:
            continue
        newer = [w for w in writes[j:] if when[w.value][0] < r.call and w.value != r.value]
        if not newer:
            continue
        first = min(newer, key=lambda w: when[w.value][0])
        # The proof, as operations: the value read in place (its write, and what showed it),
        # a write begun after that, in place (and what showed it) before the read began.
        proof = {id(o): o for o in (*_writer(ops, r.value), when[r.value][1], first, when[first.value][1], r)
                 if o is not None}
        found.append(StaleRead(r, first, when[first.value][0], len(newer),
                               tuple(sorted(proof.values(), key=lambda o: o.call))))
    return found


def never_written(ops: list[Op]) -> list[Op]:
    written = {op.value for op in ops if op.may_write} | {ABSENT}
    return [op for op in ops if op.observes and op.observed not in written]


def _needs(op: Op) -> set:
    """The values whose writes must stay beside ``op`` in a witness: what it saw, what it swapped from."""
    if op.f == CAS and op.status is not Status.FAIL:
        return {op.expect}
    return {op.observed} if op.observes else set()


def _closed(chosen: list[Op], pool: list[Op]) -> list[Op]:
    """``chosen`` plus the writes of every value it needs (from ``pool``), by call time."""
    need = set().union(*(_needs(op) for op in chosen))
    ids = {id(op) for op in chosen}
    extra = [op for op in pool if op.may_write and op.value in need and id(op) not in ids]
    return sorted(chosen + extra, key=lambda op: (op.call, op.ret))


def _removable(op: Op, ops: list[Op]) -> bool:
    if not op.may_write:
        return True
    if any(o.f == CAS and not (o.status is Status.OK and o.swapped) for o in ops):
        return False  # a CAS that did not swap (or may not have) depends on every write before it
    return not any(op.value in _needs(o) for o in ops if o is not op)


def shrink(ops: list[Op], budget: int = DEFAULT_BUDGET, searches: int = SHRINK_SEARCHES) -> list[Op]:
    """A small subset of ``ops`` (not linearizable) that is still not linearizable."""
    spent = 0

    def bad(candidate: list[Op]) -> bool:
        nonlocal spent
        spent += 1
        return search(candidate, budget).verdict is Verdict.NOT_LINEARIZABLE

    current = ops
    lo, hi = 1, len(current)  # the shortest prefix (by call) that fails; hi always fails
    while lo < hi and spent < searches:
        mid = (lo + hi) // 2
        if bad(_closed(current[:mid], current)):
            hi = mid
        else:
            lo = mid + 1
    current = _closed(current[:hi], current)
    lo, hi = 0, len(current) - 1  # then the latest start that still fails; lo always fails
    while lo < hi and spent < searches:
        mid = (lo + hi + 1) // 2
        if bad(_closed(current[mid:], current)):
            lo = mid
        else:
            hi = mid - 1
    if lo:
        current = _closed(current[lo:], current)
    for op in sorted(current, key=lambda o: -o.call):
        if spent >= searches:
            break
        if not _removable(op, current):
            continue
        candidate = [o for o in current if o is not op]
        if bad(candidate):
            current = candidate
    return current


def check_key(key: str, ops: list[Op], budget: int = DEFAULT_BUDGET) -> KeyReport:
    ops = relevant(ops)
    stale = tuple(stale_reads(ops))
    ghosts = tuple(never_written(ops))
    if ghosts:  # no search needed: no order explains a value nobody wrote
        return KeyReport(key, Verdict.NOT_LINEARIZABLE, len(ops), 0, (ghosts[0],), ghosts, stale)
    result = search(ops, budget)
    witness: tuple[Op, ...] = ()
    if result.verdict is Verdict.NOT_LINEARIZABLE:
        # The first stale read's proof is a witness already (checked, then shrunk further);
        # without one (a flip-flop between concurrent writes), the whole history is shrunk.
        first = min(stale, key=lambda s: s.read.call, default=None)
        start = list(first.proof) if first else ops
        if first and search(start, budget).verdict is not Verdict.NOT_LINEARIZABLE:
            start = ops  # cannot happen if the proof is right; the search has the last word
        witness = tuple(shrink(start, budget))
    return KeyReport(key, result.verdict, len(ops), result.steps, witness, ghosts, stale)


def check(history: Iterable[Op], budget: int = DEFAULT_BUDGET) -> Report:
    """The verdict on every key of ``history`` (see the module docstring)."""
    history = list(history)
    keys = {key: check_key(key, ops, budget) for key, ops in sorted(by_key(history).items())}
    return Report(keys, origin=min((op.call for op in history), default=0.0))


def lost_writes(history: Iterable[Op], final: dict[str, Hashable]) -> list[Op]:
    """Acknowledged writes that the final state lost: writes that began after the final
    value of their key was certainly in place (so they must have replaced it), yet it is
    still there. ``final``: each key's value read once everything healed."""
    lost = []
    for key, ops in by_key(history).items():
        when = effective_by(ops)
        settled = when.get(final.get(key, ABSENT), (math.inf, None))[0]
        lost += [op for op in ops if op.may_write and op.status is Status.OK and op.call > settled
                 and op.value != final.get(key, ABSENT)]
    return lost


def _line(op: Op, origin: float) -> str:
    end = "?" if op.ret == math.inf else f"{op.ret - origin:8.3f}"
    return f"    [{op.call - origin:8.3f} .. {end:>8}] {op.describe()}"


def render(report: Report, max_lines: int = 12) -> str:
    """The report a person reads: one line per key, then each violation's witness and its stalest reads."""
    o = report.origin
    lines = []
    for k in report.keys.values():
        stale = f", {len(k.stale)} stale reads (worst {max(s.behind for s in k.stale):.3f} s)" if k.stale else ""
        lines.append(f"key {k.key}: {k.verdict.value} ({k.ops} operations, {k.steps} search steps{stale})")
    for k in report.violations:
        lines.append(f"key {k.key} cannot be linearized; these {len(k.witness)} operations cannot be ordered "
                     f"(times in s after the history began):")
        lines += [_line(op, o) for op in k.witness[:max_lines]]
        for ghost in k.never_written[:max_lines]:
            lines.append(f"  read a value no operation wrote: {ghost.describe()} at {ghost.call - o:.3f}")
        for s in sorted(k.stale, key=lambda s: -s.behind)[:3]:
            lines.append(f"  stale read {s.behind:.3f} s behind ({s.versions} newer writes in place): "
                         f"{s.read.describe()} at {s.read.call - o:.3f}, though {s.newer.describe()} "
                         f"was in place by {s.since - o:.3f}")
    return "\n".join(lines + report.notes)
