"""Is a replica healthy? The rule, as a pure function of check results over time.

A node runs a service's health check against each of its replicas (the
runner is ``orion/node/health_loop.py``; one probe is
``orion/node/health_checks.py``) and feeds every result to :func:`observe`,
which returns the replica's new :class:`HealthState` and, only when the status
changed, a :class:`HealthChange` to report. Reporting on change only keeps the
Raft log quiet: a replica checked every 10 s for a month is two or three
entries, not 260,000.

The rule is Docker's HEALTHCHECK, which users already know:

* A replica starts ``starting``. The first check runs at once, then one every
  ``interval`` (:func:`next_check_at`).
* One success makes it ``healthy`` (from starting or unhealthy) and clears
  the failure count.
* ``failures`` consecutive failures make it ``unhealthy``. Failures within
  ``start_period`` of its start do not count while it is still starting
  (a slow boot is not a sick replica); a success in that period counts.
* The last check's output is kept short (:data:`OUTPUT_LIMIT`): it is shown in
  ``orion service status`` and travels in the report, not a log.

No clock and no I/O: times come in as values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from orion.domain.service import HEALTHY, STARTING, UNHEALTHY, HealthCheck

# Enough for "HTTP 503: upstream db unreachable" or an exec's last error line; a report is one
# Raft entry, so not Docker's 4 KiB.
OUTPUT_LIMIT = 200


@dataclass(frozen=True)
class CheckResult:
    """One probe's outcome: passed or not, and what it said."""

    ok: bool
    output: str = ""


@dataclass(frozen=True)
class HealthState:
    """What a node remembers about one replica's health between checks."""

    status: str = STARTING
    failures: int = 0  # consecutive failures that counted
    since: float | None = None  # when ``status`` began (None: since the start)
    last_check: float | None = None
    output: str = ""


@dataclass(frozen=True)
class HealthChange:
    """A status change to report: the replica is now ``status``, since ``at``."""

    status: str
    previous: str
    at: float
    output: str


def shorten(output: str, limit: int = OUTPUT_LIMIT) -> str:
    """One line of at most ``limit`` characters: whitespace collapsed, the head kept."""
    text = " ".join(output.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def next_check_at(state: HealthState, started_at: float, check: HealthCheck) -> float:
    """When the next check is due: at the start, then every ``interval`` after the last."""
    return started_at if state.last_check is None else state.last_check + check.interval


def observe(state: HealthState, result: CheckResult, at: float, started_at: float,
            check: HealthCheck) -> tuple[HealthState, HealthChange | None]:
    """Fold one check result (taken at ``at``) into ``state``; the change to report, if any."""
    output = shorten(result.output)
    if result.ok:
        status, failures = HEALTHY, 0
    elif state.status == STARTING and at < started_at + check.start_period:
        status, failures = STARTING, 0  # still booting: not counted
    else:
        failures = state.failures + 1
        status = UNHEALTHY if failures >= check.failures else state.status
    changed = status != state.status
    new = replace(state, status=status, failures=failures, last_check=at, output=output,
                  since=at if changed else state.since)
    return new, (HealthChange(status, state.status, at, output) if changed else None)
