"""Prometheus metrics of one node: events counted as they happen, state read at scrape.

Every ``Metrics`` owns its own ``CollectorRegistry``; nothing touches
prometheus_client's global default registry, because several agents (and many
tests) live in one process. Two kinds of series:

* events — counters and histograms moved by hooks the agent wires in
  (``observe_placement``, ``no_fit``, ``container_event``, ``reschedule``,
  ``observe_leader``, ``instrument(app)`` for HTTP, ``timed(store)`` for commits);
* state — read at scrape time by :class:`~orion.metrics.collect.StateCollector`
  from the store and the gossip engine, so a gauge can never drift from the
  state it reports.

Names follow Prometheus conventions: ``orion_`` prefix, base units (seconds,
bytes, cores), ``_total`` on counters, ``_info`` for build metadata. Labels are
bounded: states, reason classes, route patterns, node ids; never a task id.
Every label value a counter can take is created at zero up front, so a rate()
over it is 0, not "no data", on a quiet cluster.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    make_wsgi_app,
)

from orion.control import healing
from orion.domain.model import NoFitKind
from orion.metrics.collect import NO_FIT_CLASSES, StateCollector
from orion.store.port import Store, StoreError

# A scheduling pass is plan (sub-ms for small batches) + one Raft commit (~1 ms on
# a LAN, seconds across an election): buckets from 1 ms to 10 s cover both ends.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Applying one entry is pure Python over dicts: microseconds, a big batch a few ms.
APPLY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)
CONTAINER_EVENTS = ("start", "failure", "restart", "orphan")
# Why a task was placed again: the healing loop's causes. Anything else folds into
# "other" so a typo or a new cause can never mint unbounded label values.
RESCHEDULE_CAUSES = (*healing.RESCHEDULE_CAUSES, "other")
# Requests that matched no route share one label value instead of their raw path.
UNMATCHED_ROUTE = "unmatched"
_STORE_ERRORS = ("NoLeader", "WriteTimeout", "StoreError")


def apply_histogram() -> Histogram:
    """The apply-duration histogram, made before the store that reports into it (the store
    is built first and Metrics reads it) and registered by :class:`Metrics`."""
    return Histogram("orion_raft_apply_duration_seconds", "Time the state machine took to apply one "
                     "log entry.", buckets=APPLY_BUCKETS, registry=None)


def orion_version() -> str:
    try:
        return metadata.version("orion")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "unknown"


class Metrics:
    """One node's instruments and its registry. Thread-safe: hooks are called from
    request threads, the scheduler, the reconciler and the scrape at once."""

    def __init__(self, node_id: str, store: Store,
                 gossip_stats: Callable[[], Mapping[str, Any]] | None = None,
                 version: str | None = None, clock: Callable[[], float] = time.monotonic,
                 process_metrics: bool = True, apply_seconds: Histogram | None = None) -> None:
        """``apply_seconds``: the histogram the store already reports into (``apply_histogram``)."""
        self.node_id = node_id
        self._store = store
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._leader_lock = threading.Lock()
        self._last_leader: str | None = None

        # Registered first: a scrape reads state (and notes the leader) before it
        # renders the counters, so a leader change seen by this scrape is in it.
        self.collector = StateCollector(store, gossip_stats, on_leader=self.observe_leader,
                                        on_error=self._collect_error, clock=clock)
        r.register(self.collector)
        Info("orion_build", "Version of the running agent; node is its id in the cluster.",
             registry=r).info({"version": version or orion_version(), "node": node_id})
        if process_metrics:
            ProcessCollector(registry=r)  # process_cpu_seconds_total, RSS, fds, start time
            PlatformCollector(registry=r)  # python_info

        self.leader_changes = Counter("orion_raft_leader_changes", "Times this node saw a different "
                                      "leader than the one before (the first election counts).", registry=r)
        self.commit_seconds = Histogram("orion_raft_commit_duration_seconds", "Time from submitting a "
                                        "command on this node to its commit and local apply.",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.write_failures = Counter("orion_raft_write_failures", "Writes this node could not commit, "
                                      "by error.", ["error"], registry=r)
        self.apply_seconds = apply_seconds or apply_histogram()
        r.register(self.apply_seconds)
        self.placements = Counter("orion_placements", "Tasks placed by this node's scheduler (leader only).",
                                  registry=r)
        self.placement_seconds = Histogram("orion_placement_latency_seconds", "Scheduling pass latency: "
                                           "from reading the pending tasks to the commit of their "
                                           "placements.", buckets=LATENCY_BUCKETS, registry=r)
        self.no_fits = Counter("orion_schedule_no_fit", "Scheduling results with no fitting node, by "
                               "reason class (one per task per pass).", ["reason"], registry=r)
        self.reschedules = Counter("orion_reschedules", "Tasks sent back for placement, by cause.",
                                   ["cause"], registry=r)
        self.containers = {
            "start": Counter("orion_container_starts", "Containers this node's reconciler started.",
                             registry=r),
            "failure": Counter("orion_container_failures", "Containers that failed to start or exited "
                               "with an error on this node.", registry=r),
            "restart": Counter("orion_container_restarts", "Containers restarted by their restart policy "
                               "on this node.", registry=r),
            "orphan": Counter("orion_orphans_removed", "Containers of tasks the replicated state no longer "
                              "knows, removed by this node after the orphan grace period.", registry=r),
        }
        self.http_requests = Counter("orion_http_requests", "HTTP requests served, by route pattern, "
                                     "method and status.", ["route", "method", "status"], registry=r)
        self.http_seconds = Histogram("orion_http_request_duration_seconds", "HTTP request latency by "
                                      "route pattern.", ["route"], registry=r)
        self.collect_errors = Counter("orion_metrics_collect_errors", "Scrapes where reading a state "
                                      "source failed, by source.", ["source"], registry=r)
        self.up_since = Gauge("orion_start_time_seconds", "Unix time the agent's metrics were created.",
                              registry=r)
        self.up_since.set(time.time())
        for cls in NO_FIT_CLASSES:
            self.no_fits.labels(cls)
        for cause in RESCHEDULE_CAUSES:
            self.reschedules.labels(cause)
        for err in _STORE_ERRORS:
            self.write_failures.labels(err)
        for source in ("raft", "state", "gossip"):
            self.collect_errors.labels(source)

        self.wsgi_app = make_wsgi_app(r)  # for ApiDeps.metrics_wsgi: gzip when the scraper asks

    def _collect_error(self, source: str) -> None:
        self.collect_errors.labels(source).inc()

    # -- event hooks ---------------------------------------------------------------------
    def observe_placement(self, seconds: float, placed: int) -> None:
        """The controller's ``observe`` callback: one pass that committed ``placed`` tasks."""
        self.placement_seconds.observe(seconds)
        if placed > 0:
            self.placements.inc(placed)

    def no_fit(self, kind: NoFitKind) -> str:
        """Count one NoFit result of ``kind``; returns the label it was counted under."""
        label = str(NoFitKind.parse(kind))
        self.no_fits.labels(label).inc()
        return label

    def container_event(self, kind: str) -> None:
        if kind not in self.containers:
            raise ValueError(f"container event {kind!r} is not one of {', '.join(CONTAINER_EVENTS)}")
        self.containers[kind].inc()

    def reschedule(self, cause: str, count: int = 1) -> str:
        """The healing loop's ``on_reschedule``: ``count`` tasks handed back to the scheduler."""
        label = re.sub(r"[^a-z0-9]+", "_", cause.strip().lower()).strip("_")
        label = label if label in RESCHEDULE_CAUSES else "other"
        if count > 0:
            self.reschedules.labels(label).inc(count)
        return label

    def observe_leader(self, leader: str | None) -> bool:
        """Note the leader seen now; returns True if that was a change.

        "No leader" between two terms is not a change by itself: A, none, A is
        one leader (it kept its seat), A, none, B is one change.
        """
        if leader is None:
            return False
        with self._leader_lock:
            if leader == self._last_leader:
                return False
            self._last_leader = leader
        self.leader_changes.inc()
        return True

    def watch_leader(self, stop: threading.Event, interval: float = 0.2) -> None:
        """Poll the store's leader until ``stop``; run in a thread of the agent.

        Scrapes also see the leader, but one scrape per 15 s would miss a flap.
        """
        while not stop.wait(interval):
            try:
                self.observe_leader(self._store.status().leader)
            except Exception:  # the store may be closing; the next tick retries
                continue

    def timed(self, store: Store) -> TimedStore:
        """Wrap ``store`` so every submit is timed and its failures counted."""
        return TimedStore(store, self)

    # -- HTTP ----------------------------------------------------------------------------
    def instrument(self, app: Flask) -> Flask:
        """Count and time every request of ``app`` by its route pattern.

        Serves ``GET /metrics`` unless the app already has it (the API serves
        ``ApiDeps.metrics_wsgi`` there, behind its token check).
        """
        def start() -> None:
            g.orion_metrics_start = time.perf_counter()

        def finish(response: Response) -> Response:
            rule = request.url_rule
            route = rule.rule if rule is not None else UNMATCHED_ROUTE
            self.http_requests.labels(route, request.method, str(response.status_code)).inc()
            started = g.get("orion_metrics_start")
            if started is not None:
                self.http_seconds.labels(route).observe(time.perf_counter() - started)
            return response

        # First, so the time includes other hooks (auth) and a 401 is still timed.
        app.before_request_funcs.setdefault(None, []).insert(0, start)
        app.after_request(finish)
        if not any(rule.rule == "/metrics" for rule in app.url_map.iter_rules()):
            app.add_url_rule("/metrics", "orion_metrics", self.serve, methods=["GET"])
        return app

    def serve(self) -> Response:
        body, content_type = self.exposition()
        return Response(body, status=200, content_type=content_type)

    def exposition(self) -> tuple[bytes, str]:
        """The text format of everything in the registry, as a scrape sees it."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class TimedStore:
    """A Store that times commits; everything else passes through unchanged."""

    def __init__(self, store: Store, metrics: Metrics) -> None:
        self._inner = store
        self._metrics = metrics

    def submit(self, command: Any, timeout: float) -> Any:
        started = time.perf_counter()
        try:
            result = self._inner.submit(command, timeout)
        except StoreError as exc:
            name = type(exc).__name__
            self._metrics.write_failures.labels(name if name in _STORE_ERRORS else "StoreError").inc()
            raise
        self._metrics.commit_seconds.observe(time.perf_counter() - started)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
