"""A real Prometheus scrapes a live 3-node cluster; every dashboard and rule query must see data.

Prometheus is Debian's package (scripts/ensure-prometheus.sh), run as our own
process on loopback with a 1 s scrape interval. After task traffic and the
leader's death, every PromQL expression of dashboards/orion.json is run as a
range query over the test's window and must return at least one real (finite)
point: the failure message lists every panel that would show nothing. Every
alerting rule must evaluate against real series (its comparison turned into a
``bool`` one, so a quiet alert still proves its inputs exist), and the alerts
a node kill should raise must actually fire.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from harness import Cluster, free_ports

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "dashboards" / "orion.json"
RULES = REPO / "dashboards" / "orion.rules.yml"
SCRAPE_INTERVAL = "1s"
# What Grafana would put in for its variables with "All" selected and a 1 s scrape
# interval ($__rate_interval = max(4 x scrape interval, $__interval + scrape interval)).
GRAFANA_VARIABLES = {"$__rate_interval": "5s", "$__interval": "1s", "$__range": "5m",
                     "$job": ".+", "$instance": ".+", "$node": ".+"}
MiB = 1024 * 1024


def grafana_expr(expr: str) -> str:
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace("${" + name[1:] + "}", value).replace(name, value)
    return expr


def dashboard_queries(path: Path = DASHBOARD) -> list[tuple[str, str, str]]:
    """(panel title, refId, expr) for every target of every panel, rows included."""
    out = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", ()):
                if target.get("expr"):
                    out.append((panel["title"], target.get("refId", "?"), target["expr"]))
            walk(panel.get("panels", ()))

    walk(json.loads(path.read_text())["panels"])
    return out


def alert_rules(prom: Prometheus) -> dict[str, str]:
    """Alert name -> expression, as Prometheus itself parsed dashboards/orion.rules.yml."""
    groups = prom.api("rules", type="alert")["groups"]
    return {r["name"]: r["query"] for g in groups for r in g["rules"]}


_COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)(?!\s*bool)")


def as_bool(expr: str) -> str:
    """``A > 1`` -> ``A > bool 1`` at the top level only (outside (), {}, [] and strings)."""
    depth, quote, last = 0, "", None
    for i, ch in enumerate(expr):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif depth == 0 and _COMPARISON.match(expr, i) and (i == 0 or expr[i - 1] not in "=!<>"):
            last = _COMPARISON.match(expr, i)
    if last is None:
        raise ValueError(f"alert expression has no top-level comparison: {expr}")
    return f"{expr[:last.end()]} bool{expr[last.end():]}"


@dataclass
class Prometheus:
    """Our own Prometheus process (not the distribution's service)."""

    root: Path
    targets: list[str]
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.copy(RULES, self.root / "orion.rules.yml")
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL,
                       "scrape_timeout": SCRAPE_INTERVAL},
            "rule_files": [str(self.root / "orion.rules.yml")],
            "scrape_configs": [{"job_name": "orion", "static_configs": [{"targets": self.targets}]}],
        }
        (self.root / "prometheus.yml").write_text(json.dumps(config, indent=2))  # JSON is YAML
        self.port = self.port or free_ports(1)[0]
        log = open(self.root / "prometheus.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={self.root / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.root / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--web.enable-lifecycle"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        path = self.root / "prometheus.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def api(self, path: str, **params: Any) -> Any:
        resp = requests.get(self.url + "/api/v1/" + path, params=params, timeout=10)
        body = resp.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("query", query=expr)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict[str, Any]]:
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def targets_up(self) -> int:
        active = self.api("targets")["activeTargets"]
        return sum(1 for t in active if t["health"] == "up")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None


def finite_points(result: list[dict[str, Any]]) -> int:
    n = 0
    for series in result:
        for _, v in series.get("values", [series.get("value", [0, "NaN"])]):
            n += 0 if math.isnan(float(v)) or math.isinf(float(v)) else 1
    return n


def run_traffic(cluster: Cluster, image: str, rounds: int = 1) -> None:
    """Tasks that run, one that fits nowhere (a no-fit), a stop, and reads."""
    node = cluster.leader() or cluster.live()[0]
    created = []
    for _ in range(rounds):
        for _ in range(3):
            resp = node.post("/tasks", json={"image": image, "memory": 16 * MiB, "cpu": 0.05}, timeout=30)
            assert resp.status_code in (200, 201), resp.text
            created.append(resp.json()["id"])
    resp = node.post("/tasks", json={"image": image, "memory": 100 * 1024**4}, timeout=30)
    assert resp.status_code in (200, 201), resp.text
    for n in cluster.live():
        n.get("/tasks")
        n.get(f"/tasks/{created[0]}")
    node.delete(f"/tasks/{created[-1]}")


def scenario(cluster: Cluster, prom: Prometheus, image: str) -> dict[str, float]:
    """Traffic, the leader killed, traffic again. Returns the moments that matter (unix time)."""
    marks = {"start": time.time()}
    cluster.wait(lambda: prom.targets_up() == len(cluster.nodes), 30, "prometheus scraping every node")
    run_traffic(cluster, image)
    cluster.wait(lambda: cluster.leader().get("/tasks?state=running").json(), 60, "a task running")
    time.sleep(6)  # a few rate windows of steady state
    leader = cluster.leader()
    assert leader is not None
    marks["kill"] = time.time()
    cluster.kill(leader)
    cluster.wait(lambda: cluster.leader() not in (None, leader), 30, "a new leader")
    marks["new_leader"] = time.time()
    run_traffic(cluster, image)
    time.sleep(8)  # the dead target's "up" is 0, rates cover the traffic after the election
    marks["end"] = time.time()
    return marks


@pytest.fixture
def prometheus(tmp_path, cluster):
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed: run scripts/ensure-prometheus.sh (Debian's package)")
    prom = Prometheus(tmp_path / "prometheus", [f"127.0.0.1:{n.port}" for n in cluster.nodes])
    prom.start()
    yield prom
    prom.stop()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed: "
                    "run scripts/ensure-prometheus.sh")
def test_a_live_nodes_metrics_pass_promtool(cluster):
    resp = cluster.nodes[0].get("/metrics")
    assert resp.status_code == 200, f"GET /metrics answered {resp.status_code}: {resp.text[:200]}"
    result = subprocess.run(["promtool", "check", "metrics"], input=resp.content, capture_output=True,
                            timeout=30)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert b"orion_raft_is_leader" in resp.content
    assert b"task_id" not in resp.content  # never a per-task series


def test_every_dashboard_and_rule_query_sees_data_through_a_node_kill(cluster, prometheus, test_image):
    served = cluster.nodes[0].get("/metrics")
    assert served.status_code == 200, f"the agent does not serve /metrics: {served.status_code} {served.text[:200]}"
    marks = scenario(cluster, prometheus, test_image)
    start, end = marks["start"], marks["end"]

    problems = []
    for title, ref, expr in dashboard_queries():
        query = grafana_expr(expr)
        if finite_points(prometheus.query_range(query, start, end)) == 0:
            problems.append(f"  panel {title!r} ({ref}) shows nothing: {query}")

    rules = alert_rules(prometheus)
    if len(rules) < 5:
        problems.append(f"  prometheus loaded only {sorted(rules)} from {RULES}")
    for name, expr in rules.items():
        if not prometheus.query(as_bool(expr)):
            problems.append(f"  alert {name} has no input series: {as_bool(expr)}")
    assert not problems, (f"{len(problems)} dashboard/rule queries return nothing after traffic and a "
                          "node kill:\n" + "\n".join(problems))

    # One voter of three is dead: scrapes fail and quorum has no margin left.
    for name in ("OrionAgentDown", "OrionQuorumAtRisk"):
        assert cluster.wait(lambda name=name: prometheus.query(rules[name]), 30, f"{name} to fire")

    # A second death leaves one node: no leader any more.
    cluster.kill(cluster.leader() or cluster.live()[0])
    assert cluster.wait(lambda: prometheus.query(rules["OrionNoLeader"]), 60, "OrionNoLeader to fire")


def test_as_bool_turns_only_the_top_level_comparison():
    assert as_bool('max by (job) (x{a="b"}) < 1') == 'max by (job) (x{a="b"}) < bool 1'
    assert as_bool("max(a + 1) <= max(floor(b / 2) + 1)") == "max(a + 1) <= bool max(floor(b / 2) + 1)"
    assert as_bool('up{job="orion"} < 1') == 'up{job="orion"} < bool 1'
    assert as_bool('sum(x{s!="dead"} == 1) > 0') == 'sum(x{s!="dead"} == 1) > bool 0'
