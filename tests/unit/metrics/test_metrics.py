"""Each metric moves when its event happens, read back through the exposition a scrape sees.

The store is the in-process LocalStore over the real StateMachine and the real
scheduling loop, so "a placement" is a committed PlaceTasks, not a call we made
up; the text is parsed with prometheus_client's own parser and, where promtool
is installed, checked by it as Prometheus would.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest
from parts import api_deps, autopilot_config, drain_settings, restart_config
from prometheus_client.parser import text_string_to_metric_families
from result_kit import accepted

from orion.api.app import create_app
from orion.control.healing_loop import HealingLoop
from orion.control.placement_loop import PlacementLoop
from orion.domain.model import NODE_DEAD, NODE_LEFT, NODE_STATES, TASK_STATES, NodeInfo, NoFitKind, Resources, TaskSpec
from orion.metrics.collect import NO_FIT_CLASSES
from orion.metrics.registry import Metrics
from orion.state.commands import CreateTask, MarkUnschedulable, RegisterNode, SetNodeStatus
from orion.store.local import LocalStore
from orion.store.port import NoLeader

GiB = 1 << 30


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape, keyed by (name, sorted labels)."""
    body, _ = metrics.exposition()
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(metrics: Metrics, name: str, **labels: str) -> float:
    samples = scrape(metrics)
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"{name}{labels} not exposed"
    return samples[key]


def rid() -> str:
    return uuid.uuid4().hex


def register(store: LocalStore, node_id: str, mem_gib: int = 4, cpus: int = 2) -> None:
    node = NodeInfo(node_id, f"{node_id}:8000", f"{node_id}:7000",
                    capacity=Resources(mem_gib * GiB, cpus * 1000))
    store.submit(RegisterNode(request_id=rid(), node=node), 1)


def create(store: LocalStore, task_id: str, mem_gib: float = 1, cpus: float = 0.5) -> None:
    spec = TaskSpec("orion/busybox:latest", int(mem_gib * GiB), int(cpus * 1000))
    result = store.submit(CreateTask(request_id=rid(), task_id=task_id, spec=spec), 1)
    accepted(result)


@pytest.fixture
def store() -> LocalStore:
    return LocalStore(self_addr="127.0.0.1:7001")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics(store: LocalStore, clock: FakeClock) -> Metrics:
    return Metrics("node1", store, clock=clock)


# -- scheduling ---------------------------------------------------------------------------

def test_a_committed_placement_counts_and_times_the_pass(store, metrics):
    register(store, "node1")
    create(store, "t1")
    create(store, "t2")
    assert value(metrics, "orion_placements_total") == 0
    result = PlacementLoop(store, interval=1, write_timeout=1, observe=metrics.observe_placement).run_once()
    assert result.detail.placed == 2
    assert value(metrics, "orion_placements_total") == 2
    assert value(metrics, "orion_placement_latency_seconds_count") == 1
    assert value(metrics, "orion_tasks", state="assigned") == 2
    assert value(metrics, "orion_tasks", state="pending") == 0


def create_spec(store: LocalStore, task_id: str, spec: TaskSpec) -> None:
    accepted(store.submit(CreateTask(request_id=rid(), task_id=task_id, spec=spec), 1))


def test_no_fits_of_the_real_scheduler_count_by_kind(store, metrics):
    register(store, "node1", mem_gib=4, cpus=2)
    create_spec(store, "mem", TaskSpec("img", 8 * GiB, 100))
    create_spec(store, "mem2", TaskSpec("img", 6 * GiB, 100))
    create_spec(store, "cpu", TaskSpec("img", GiB, 4000))
    create_spec(store, "sel", TaskSpec("img", GiB, 100, node_selectors=(("zone", "b"),)))
    loop = PlacementLoop(store, interval=1, write_timeout=1, on_no_fit=metrics.no_fit)
    assert loop.run_once().detail.unschedulable == 4
    counted = {k: value(metrics, "orion_schedule_no_fit_total", reason=k) for k in NO_FIT_CLASSES}
    assert counted == {**dict.fromkeys(NO_FIT_CLASSES, 0), "memory": 2, "cpu": 1, "selector": 1}
    loop.run_once()  # counted each pass, even when nothing new is recorded
    assert value(metrics, "orion_schedule_no_fit_total", reason="memory") == 4
    assert metrics.no_fit("gpu") == "other"  # a kind from a newer node


def test_the_no_fit_labels_are_the_kinds_and_stay_the_strings_dashboards_use():
    assert NO_FIT_CLASSES == ("memory", "cpu", "memory_cpu", "ports", "selector", "volume", "device", "privileged",
                              "constraint", "max_per_node", "pinned", "no_nodes", "other")
    assert set(NO_FIT_CLASSES) == {str(k) for k in NoFitKind}


def test_unschedulable_pending_tasks_count_by_recorded_kind(store, metrics):
    register(store, "node1", mem_gib=4, cpus=2)
    for task_id in ("a", "b", "c", "d", "e"):
        create(store, task_id, mem_gib=64)
    marks = [("a", NoFitKind.MEMORY), ("b", NoFitKind.MEMORY), ("c", NoFitKind.PORTS)]
    for task_id, kind in marks:
        store.submit(MarkUnschedulable(request_id=rid(), task_id=task_id, reason="worded any way", kind=kind), 1)
    # An entry an older node wrote has no kind: it counts as "other".
    store.submit('{"type":"mark_unschedulable","v":1,"request_id":"old","task_id":"d",'  # type: ignore[arg-type]
                 '"reason":"no node has 64.0 GiB free memory"}', 1)
    counted = {k: value(metrics, "orion_tasks_unschedulable", reason=k) for k in NO_FIT_CLASSES}
    # "e" has not been looked at yet: pending, but not unschedulable.
    assert counted == {**dict.fromkeys(NO_FIT_CLASSES, 0), "memory": 2, "ports": 1, "other": 1}


def test_unschedulable_pending_tasks_show_by_class_and_age(store, metrics, clock):
    register(store, "node1", mem_gib=4)
    create(store, "big", mem_gib=64)
    assert value(metrics, "orion_tasks_pending_oldest_seconds") == 0  # first seen now
    PlacementLoop(store, interval=1, write_timeout=1).run_once()  # records the no-fit reason
    clock.now += 42
    assert value(metrics, "orion_tasks_unschedulable", reason="memory") == 1
    assert value(metrics, "orion_tasks_pending_oldest_seconds") == 42
    assert value(metrics, "orion_tasks", state="pending") == 1


# -- Raft and leadership -----------------------------------------------------------------

def test_leader_changes_count_only_a_different_leader(store, metrics):
    assert value(metrics, "orion_raft_leader_changes_total") == 1  # the scrape saw the first leader
    assert metrics.observe_leader(None) is False  # an election in progress is not a change
    assert metrics.observe_leader("127.0.0.1:7001") is False  # the same leader kept its seat
    assert metrics.observe_leader("127.0.0.1:7002") is True  # heard from the agent's watcher
    store.leader = False  # this node now sees no leader: the scrape adds nothing
    assert value(metrics, "orion_raft_leader_changes_total") == 2
    store.leader = True  # 7001 leads again: a change back is a change
    assert value(metrics, "orion_raft_leader_changes_total") == 3


def test_the_leader_watcher_hears_changes_between_scrapes(store, metrics):
    import threading

    stop = threading.Event()
    seen = []
    real = metrics.observe_leader

    def observe(addr):
        seen.append(addr)
        if len(seen) >= 3:
            stop.set()
        return real(addr)

    metrics.observe_leader = observe  # type: ignore[method-assign]
    metrics.watch_leader(stop, interval=0.001)
    assert seen[:3] == ["127.0.0.1:7001"] * 3
    assert value(metrics, "orion_raft_leader_changes_total") == 1


def test_raft_gauges_follow_the_store(store, metrics):
    assert value(metrics, "orion_raft_is_leader") == 1
    assert value(metrics, "orion_raft_has_leader") == 1
    register(store, "node1")
    assert value(metrics, "orion_raft_commit_index") == 1
    assert value(metrics, "orion_raft_applied_index") == 1
    assert value(metrics, "orion_raft_voters") == 1
    assert value(metrics, "orion_raft_peers") == 0
    store.leader = False
    assert value(metrics, "orion_raft_is_leader") == 0
    assert value(metrics, "orion_raft_has_leader") == 0


def test_timed_store_times_commits_and_counts_refusals(store, metrics):
    timed = metrics.timed(store)
    register(timed, "node1")
    assert value(metrics, "orion_raft_commit_duration_seconds_count") == 1
    assert timed.is_leader()  # everything else passes through
    store.leader = False
    with pytest.raises(NoLeader):
        register(timed, "node2")
    assert value(metrics, "orion_raft_write_failures_total", error="NoLeader") == 1
    assert value(metrics, "orion_raft_commit_duration_seconds_count") == 1


# -- nodes ---------------------------------------------------------------------------------

def test_a_node_marked_dead_shows_in_nodes_by_status(store, metrics):
    register(store, "node1")
    register(store, "node2")
    assert value(metrics, "orion_nodes", status="alive") == 2
    assert value(metrics, "orion_nodes", status="dead") == 0
    store.submit(SetNodeStatus(request_id=rid(), node_id="node2", status=NODE_DEAD), 1)
    assert value(metrics, "orion_nodes", status="alive") == 1
    assert value(metrics, "orion_nodes", status="dead") == 1
    assert value(metrics, "orion_node_status", node="node2", status="dead") == 1
    assert value(metrics, "orion_node_status", node="node2", status="alive") == 0


def test_capacity_and_reservations_per_node_in_base_units(store, metrics):
    register(store, "node1", mem_gib=4, cpus=2)
    create(store, "t1", mem_gib=1, cpus=0.5)
    assert value(metrics, "orion_node_capacity_memory_bytes", node="node1") == 4 * GiB
    assert value(metrics, "orion_node_capacity_cpu_cores", node="node1") == 2
    assert value(metrics, "orion_node_reserved_memory_bytes", node="node1") == 0
    PlacementLoop(store, interval=1, write_timeout=1).run_once()
    assert value(metrics, "orion_node_reserved_memory_bytes", node="node1") == GiB
    assert value(metrics, "orion_node_reserved_cpu_cores", node="node1") == 0.5


def test_every_state_and_status_is_exposed_even_at_zero(metrics):
    samples = scrape(metrics)
    for state in TASK_STATES:
        assert ("orion_tasks", (("state", state),)) in samples
    for status in NODE_STATES:
        assert ("orion_nodes", (("status", status),)) in samples


# -- containers, reschedules, gossip ---------------------------------------------------------

def test_container_events_and_reschedules_count(metrics):
    metrics.container_event("start")
    metrics.container_event("start")
    metrics.container_event("failure")
    metrics.container_event("restart")
    assert value(metrics, "orion_container_starts_total") == 2
    assert value(metrics, "orion_container_failures_total") == 1
    assert value(metrics, "orion_container_restarts_total") == 1
    with pytest.raises(ValueError):
        metrics.container_event("exploded")
    assert metrics.reschedule("node dead") == "node_dead"
    assert metrics.reschedule("task 3f2a lost on node9") == "other"  # free text never becomes a label
    assert value(metrics, "orion_reschedules_total", cause="node_dead") == 1
    assert value(metrics, "orion_reschedules_total", cause="other") == 1


class NoGossipNews:
    """A liveness source with nothing to report: the test sets node statuses itself."""

    def poll(self, now: float) -> list:
        return []


def test_the_healing_loop_counts_the_tasks_it_sends_back_by_cause(store, metrics):
    healer = HealingLoop(store, NoGossipNews(), restart_config(), autopilot_config(), interval=1, write_timeout=1,
                         drain_cfg=drain_settings(), on_reschedule=metrics.reschedule, probe=lambda nodes: set())
    place = PlacementLoop(store, interval=1, write_timeout=1)
    register(store, "node1")
    create(store, "a")
    place.run_once()
    register(store, "node2")
    store.submit(SetNodeStatus(request_id=rid(), node_id="node1", status=NODE_DEAD), 1)
    assert "marked lost a" in healer.run_once().sentence
    assert value(metrics, "orion_reschedules_total", cause="node_dead") == 1
    place.run_once()  # a moves to node2, which then leaves: a migrates to node3
    register(store, "node3")
    store.submit(SetNodeStatus(request_id=rid(), node_id="node2", status=NODE_LEFT), 1)
    healer.run_once()
    assert value(metrics, "orion_reschedules_total", cause="node_left") == 1
    assert value(metrics, "orion_reschedules_total", cause="node_dead") == 1
    assert healer.run_once().sentence == "nothing to heal"  # counted once, not on every pass
    assert value(metrics, "orion_reschedules_total", cause="node_left") == 1


def test_gossip_stats_are_read_at_scrape_time(store, clock):
    stats = {"members": {"alive": 3}, "health_score": 0, "probes": 10, "probe_failures": 1,
             "bytes_sent": 2048, "bytes_received": 1024, "messages_sent": 30, "messages_received": 29,
             "dropped": 0, "unauthenticated": 2}
    metrics = Metrics("node1", store, gossip_stats=lambda: stats, clock=clock)
    assert value(metrics, "orion_gossip_members", state="alive") == 3
    assert value(metrics, "orion_gossip_members", state="dead") == 0
    stats["members"] = {"alive": 2, "dead": 1}
    stats["health_score"] = 2
    stats["probes"] = 11
    assert value(metrics, "orion_gossip_members", state="dead") == 1
    assert value(metrics, "orion_gossip_health_score") == 2
    assert value(metrics, "orion_gossip_probes_total") == 11
    assert value(metrics, "orion_gossip_unauthenticated_packets_total") == 2
    assert value(metrics, "orion_gossip_sent_bytes_total") == 2048


def test_a_failing_source_is_counted_and_the_rest_still_scraped(store, clock):
    def broken() -> dict:
        raise RuntimeError("gossip engine stopped")

    metrics = Metrics("node1", store, gossip_stats=broken, clock=clock)
    assert value(metrics, "orion_raft_is_leader") == 1
    assert value(metrics, "orion_metrics_collect_errors_total", source="gossip") >= 1


# -- HTTP -----------------------------------------------------------------------------------

def test_requests_are_counted_by_route_pattern_never_the_raw_path(store, metrics):
    app = metrics.instrument(create_app(api_deps(store)))
    client = app.test_client()
    assert client.get("/tasks/abc123").status_code == 404
    assert client.get("/tasks/def456").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    assert value(metrics, "orion_http_requests_total", route="/tasks/<task_id>", method="GET",
                 status="404") == 2
    assert value(metrics, "orion_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert value(metrics, "orion_http_request_duration_seconds_count", route="/tasks/<task_id>") == 2
    assert not any("abc123" in str(k) for k in scrape(metrics))


def test_metrics_endpoint_serves_the_registry(store, metrics):
    app = metrics.instrument(create_app(api_deps(store)))
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert {"orion_raft_is_leader", "orion_build_info", "process_cpu_seconds", "orion_tasks"} <= names


def test_the_api_metrics_route_is_instrumented_and_keeps_its_token(store):
    metrics = Metrics("node1", store)
    app = create_app(api_deps(store, api_token="s3cret", metrics_wsgi=metrics.wsgi_app))
    metrics.instrument(app)  # the app already has /metrics: not registered twice
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and b"orion_raft_is_leader" in ok.data
    assert value(metrics, "orion_http_requests_total", route="/metrics", method="GET", status="401") == 1


def test_two_agents_in_one_process_do_not_share_series():
    a, b = Metrics("a", LocalStore()), Metrics("b", LocalStore())
    a.container_event("start")
    assert value(a, "orion_container_starts_total") == 1
    assert value(b, "orion_container_starts_total") == 0


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed "
                    "(scripts/ensure-prometheus.sh installs Debian's prometheus package)")
def test_exposition_passes_promtool_check_metrics(store, metrics):
    register(store, "node1")
    create(store, "t1")
    PlacementLoop(store, interval=1, write_timeout=1, observe=metrics.observe_placement).run_once()
    metrics.instrument(create_app(api_deps(store))).test_client().get("/tasks")
    body, _ = metrics.exposition()
    result = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


# -- dashboard and rules (the files Grafana and Prometheus load) -------------------------------

REPO = __import__("pathlib").Path(__file__).resolve().parents[3]
DASHBOARDS = REPO / "dashboards"


def _panels(panels: list[dict]) -> list[dict]:
    out = []
    for p in panels:
        out.append(p)
        out.extend(_panels(p.get("panels", [])))
    return out


def test_dashboard_is_a_provisionable_grafana_model():
    import json

    dash = json.loads((DASHBOARDS / "orion.json").read_text())
    assert dash["uid"] == "orion-overview" and dash["id"] is None
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert {"instance", "node", "job"} <= set(variables)
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    assert rows[:5] == ["Cluster health", "Scheduling", "Tasks", "Raft", "Per-node capacity"]
    exprs = []
    for panel in _panels(dash["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            exprs.append(target["expr"])
            assert 'instance=~"$instance"' in target["expr"], (panel["title"], target["expr"])
            if "rate(" in target["expr"] or "increase(" in target["expr"]:
                assert "[$__rate_interval]" in target["expr"], (panel["title"], target["expr"])
    # every metric the dashboard names is one this code exposes (or Prometheus's own `up`)
    store = LocalStore()
    register(store, "node1")
    gossip = {"members": {}, "health_score": 0, **dict.fromkeys(
        ["probes", "probe_failures", "bytes_sent", "bytes_received", "dropped", "unauthenticated"], 0)}
    metrics = Metrics("node1", store, gossip_stats=lambda: gossip)
    metrics.instrument(create_app(api_deps(store))).test_client().get("/health")
    exposed = {name for name, _ in scrape(metrics)}
    import re

    named = set(re.findall(r"\b((?:orion|process)_[a-z_]+)\b", " ".join(exprs)))
    assert named - exposed - {"orion_raft_peers_connected"} == set()  # that one only on RaftStore


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed "
                    "(scripts/ensure-prometheus.sh installs Debian's prometheus package)")
def test_rules_pass_promtool_check_and_their_unit_tests():
    check = subprocess.run(["promtool", "check", "rules", str(DASHBOARDS / "orion.rules.yml")],
                           capture_output=True, timeout=60)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    tests = subprocess.run(["promtool", "test", "rules", "orion.rules.test.yml"], cwd=DASHBOARDS,
                           capture_output=True, timeout=60)
    assert tests.returncode == 0, tests.stdout.decode() + tests.stderr.decode()
    config = subprocess.run(["promtool", "check", "config", "prometheus.example.yml"], cwd=DASHBOARDS,
                            capture_output=True, timeout=60)
    assert config.returncode == 0, config.stdout.decode() + config.stderr.decode()
