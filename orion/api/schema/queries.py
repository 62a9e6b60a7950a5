"""Query strings, parsed like bodies: one pydantic model per operation that takes any.

Each parameter is a field whose type is its parser and its OpenAPI schema
(``fields.typed``, as in a body), and its description is the document's: the
OpenAPI table (``openapi.py``) names the model, and the document's query
parameters and the app's check for unknown names are generated from it. A
misspelt parameter is a 400 naming it ("unknown query parameter; did you mean
'state'?"), never silently ignored, and a bad value a 400 naming the parameter.

Reads of the replicated state are linearizable unless ``?stale`` is given
(:class:`ReadQuery`; ``orion/api/http.py`` makes the read point). Blocking
queries (``?index=N&wait=D``, Consul/Nomad style) hold a read until
this node applied an index beyond N (``orion/api/http.py`` waits);
``?since=10m`` on a log is resolved against the time the request arrived,
given as ``context={"now": ...}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import pydantic
from pydantic import Field, ValidationInfo

from orion.api.schema import fields as f
from orion.api.schema.problems import Body, Problem, ValidationError, refusal, unknown
from orion.domain.model import TASK_STATES
from orion.runtime import LogQuery

# Longest a request may be held (and the wait when only ``index`` is given): Consul's
# and Nomad's 5 minutes. Long enough that an idle watcher costs about nothing, short
# enough that a proxy or NAT table between the watcher and the node keeps the connection.
MAX_WAIT = 300.0
# Bare seconds ("2.5"), ASCII digits only: str.isdigit() also takes '²', which float() refuses.
BARE_SECONDS = re.compile(r"^[0-9]+(\.[0-9]*)?$", re.ASCII)
_TRUE, _FALSE = ("1", "true", "yes"), ("", "0", "false", "no")
_FLAG_SCHEMA = {"type": "string", "enum": ["", "0", "1", "true", "false", "yes", "no"]}

Q = TypeVar("Q", bound="Query")


class Query(Body):
    """A query string: every parameter a string, given once (the first counts, as Flask's
    ``args.get``); an unknown name is refused, naming the likely one."""

    WHAT: ClassVar[str] = "query parameter"

    @classmethod
    def check_names(cls, args: Mapping[str, str]) -> None:
        """Refuse the first name this query does not have (its values are the route's to parse)."""
        for name in args:
            if name not in cls._KNOWN_SET:
                raise ValidationError(name, unknown(name, cls.KNOWN, cls.ALIASES, cls.WHAT))


def parse_query(model: type[Q], args: Mapping[str, str], **context: Any) -> Q:
    """``args`` (``request.args``) as ``model``, or the 400 naming the parameter."""
    try:
        return model.model_validate(dict(args.items()), context=context)
    except pydantic.ValidationError as exc:
        raise refusal(exc) from None


# -- consistency ----------------------------------------------------------------------------


def _stale(value: Any) -> bool:
    """``?stale`` alone (Consul's spelling) or ``?stale=1|true|yes`` asks for it; ``0|false|no`` does not."""
    text = str(value).strip().lower()
    if text in ("", "1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    raise Problem(f"{value!r} is not a flag; give ?stale alone (or stale=1), or leave it out")


class ReadQuery(Query):
    """A read of the replicated state: linearizable by default, ``?stale`` for this replica as it is."""

    stale: f.typed(bool, _stale, {"type": "string", "enum": ["", "1", "true", "yes", "0", "false", "no"],
                                  "default": "0"}) = Field(
        False, description="answer from this node's replica at once, without confirming it is current "
                           "(Consul's and Nomad's ?stale); X-Orion-Last-Contact says how long since it "
                           "heard from the leader. Default: linearizable (Raft's ReadIndex)")

    @classmethod
    def stale_of(cls, args: Mapping[str, str]) -> bool:
        """Only ``stale`` parsed (a 400 naming it): the read point is made before the route runs."""
        if "stale" not in args:
            return False
        return f.refuse_as("stale", _stale, args["stale"])


# -- blocking reads -----------------------------------------------------------------------


def _index(value: Any) -> int:
    raw = str(value)
    if not raw.isascii() or not raw.isdigit() or len(raw) > 20:
        raise Problem(f"{raw!r} must be a non-negative integer (an X-Orion-Index)")
    return int(raw)


def wait_seconds(value: Any) -> float:
    """``30s``, ``500ms``, ``5m`` (``fields.parse_duration``) or bare seconds (``2.5``), capped at MAX_WAIT."""
    bare = str(value).strip(f.SPACE)
    seconds = float(bare) if BARE_SECONDS.match(bare) else f.parse_duration(bare)
    return min(seconds, MAX_WAIT)


def parse_wait(text: str) -> float:
    """A ``wait`` on its own (a 400 naming ``wait``)."""
    return f.refuse_as("wait", wait_seconds, text)


class BlockingQuery(Query):
    """``?index=N&wait=D``: answer once this node applied beyond N, or after D."""

    index: f.typed(int | None, _index, {"type": "integer", "minimum": 0}) = Field(
        None, description="answer once this node has applied beyond this X-Orion-Index")
    wait: f.typed(float | None, wait_seconds, {"anyOf": [
        f.DURATION_SCHEMA, {"type": "string", "pattern": rf"^[{f.SPACE}]*[0-9]+(\.[0-9]*)?[{f.SPACE}]*$"}]}) = Field(
        None, description="longest to hold the read (ms, s, m, h, or bare seconds; at most 5m, the default)")

    @property
    def asked(self) -> tuple[int, float] | None:
        """(index, wait) when the read should block, else None: ``wait`` alone is checked
        but does not block, there is nothing to wait beyond."""
        if self.index is None:
            return None
        return self.index, MAX_WAIT if self.wait is None else self.wait


def parse_blocking(args: Mapping[str, str]) -> tuple[int, float] | None:
    return parse_query(BlockingQuery, args).asked


class BlockingReadQuery(BlockingQuery, ReadQuery):
    """A read of the replicated state that may block: the read point first, then the wait."""


class _TaskFilter(Query):
    state: f.one_of(TASK_STATES) = Field(None, description="only tasks in this state")
    service: f.typed(str, str, {"type": "string"}) = Field(None, description="only this service's replicas")


class TaskListQuery(BlockingReadQuery, _TaskFilter):
    """``GET /tasks``: filters, then the blocking read (in that order in the document)."""


# -- logs ---------------------------------------------------------------------------------


def _tail(value: Any) -> int | None:
    raw = str(value).strip().lower()
    if raw in ("", "all"):
        return None
    if raw.isascii() and raw.isdigit() and len(raw) <= 9:
        return int(raw)
    raise Problem(f"{value!r} must be a number of lines (or all)")


def since_seconds(value: Any, now: float) -> float | None:
    """Unix seconds from ``1700000000``, ``2024-05-01T12:00:00Z`` or ``10m`` (before ``now``)."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if math.isfinite(seconds) and seconds >= 0:
        return seconds
    try:
        return max(0.0, now - f.parse_duration(text))
    except Problem:
        pass  # not a duration: a timestamp, below
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise Problem(f"{value!r} is not a time; use Unix seconds, RFC 3339 "
                      "(2024-05-01T12:00:00Z) or a duration back from now (10m, 1h30m)") from None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def parse_since(value: str | None, now: float) -> float | None:
    """A ``since`` on its own (a 400 naming ``since``)."""
    return f.refuse_as("since", lambda v: since_seconds(v, now), value)


def _since(value: Any, info: ValidationInfo) -> float | None:
    return since_seconds(value, (info.context or {})["now"])


def _flag(value: Any) -> bool:
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise Problem(f"{value!r} is not a flag; use 1 or 0")


class LogsQuery(ReadQuery):
    """``GET /tasks/<id>/logs``: which of the output, and whether to keep streaming (the task is
    looked up linearizably unless ``stale``; the output is the engine's)."""

    tail: f.typed(int | None, _tail, {"type": "string", "pattern": r"^\s*([0-9]+|all)\s*$"}) = Field(
        None, description="the last N lines (or all)")
    since: f.typed(float | None, _since, {"type": "string"}) = Field(
        None, description="Unix seconds, RFC 3339, or a duration back from now (10m)")
    follow: f.typed(bool, _flag, _FLAG_SCHEMA) = Field(False, description="keep streaming new lines")
    timestamps: f.typed(bool, _flag, _FLAG_SCHEMA) = Field(False, description="prefix each line with its time")

    def log_query(self) -> LogQuery:
        return LogQuery(tail=self.tail, since=self.since, follow=self.follow, timestamps=self.timestamps)


def parse_log_query(args: Mapping[str, str], now: float) -> LogQuery:
    """The query string of ``GET /tasks/<id>/logs`` as a LogQuery, or a 400 naming the parameter."""
    return parse_query(LogsQuery, args, now=now).log_query()


# -- the rest -----------------------------------------------------------------------------


def _version(value: Any, info: ValidationInfo) -> int:
    raw = str(value)
    if raw and (not raw.isascii() or not raw.isdigit() or int(raw) < 1):
        name = (info.context or {}).get("name", "<name>")
        raise Problem(f"{raw!r} must be a version number (GET /services/{name}/versions)")
    return int(raw or 0)


class RollbackQuery(Query):
    """``POST /services/<name>/rollback[?version=N]``; 0: the last stable version
    (give ``context={"name": ...}`` for the refusal's hint)."""

    version: f.typed(int, _version, {"type": "string", "pattern": "^[0-9]*$"}) = Field(
        0, description="the version to return to (GET /services/{name}/versions); default: the last stable one")


class MetricsQuery(Query):
    """``GET /metrics[?name[]=...]``: prometheus_client reads the filter itself."""

    names: f.typed(list[str], lambda v: v, {"type": "array", "items": {"type": "string"}}) = Field(
        None, alias="name[]", description="only these metric families (prometheus_client's filter)",
        json_schema_extra={"style": "form", "explode": True})



# -- snapshots (orion/api/operator.py) -----------------------------------------------------


class SnapshotQuery(Query):
    """``GET /operator/snapshot``: this node's replica as it is, or only once caught up."""

    stale: f.typed(bool, _flag, _FLAG_SCHEMA) = Field(
        False, description="save this node's replica as it is, even without a leader (a cluster that lost its "
                           "majority); by default the node must reach a leader and have applied its commit index")


class RestoreQuery(Query):
    """``PUT /operator/snapshot``: whether another cluster's state may replace this one's."""

    force: f.typed(bool, _flag, _FLAG_SCHEMA) = Field(
        False, description="restore a snapshot of another cluster (another cluster id); this cluster takes its id")
