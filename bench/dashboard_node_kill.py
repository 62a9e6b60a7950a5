"""Plot the dashboard's key series from a real Prometheus while the Raft leader is killed.

Starts a 3-node cluster (tests/integration/harness.py) and our own Prometheus
(1 s scrapes), runs the integration test's scenario (traffic, kill the leader,
traffic again), then asks Prometheus's query_range API for the same PromQL the
dashboard uses and draws it: bench/results/dashboard_node_kill.png.

    ORION_TEST_DOCKER_HOST=unix:///run/orion-test/docker.sock .venv/bin/python bench/dashboard_node_kill.py
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
from harness import Cluster  # noqa: E402
from test_prometheus import Prometheus, grafana_expr, scenario  # noqa: E402

RESULTS = REPO / "bench" / "results"
SEL = '{job=~"$job", instance=~"$instance"}'
# (title, [(legend label template, dashboard expression)], unit)
PANELS = [
    ("Raft role (1 = leader)", [("{node}", f"max by (node) (orion_raft_is_leader{SEL} * on (instance) "
                                           f"group_left (node) orion_build_info{SEL})")], ""),
    ("Agents up / seeing a leader", [("up", f"sum(up{SEL})"),
                                     ("has leader", f"sum(orion_raft_has_leader{SEL})")], ""),
    ("Raft term and leader changes", [("term", f"max(orion_raft_term{SEL})"),
                                      ("changes (sum of counters)",
                                       f"sum(orion_raft_leader_changes_total{SEL})")], ""),
    ("Commit index", [("{instance}", f"orion_raft_commit_index{SEL}")], "entries"),
    ("Tasks by state", [("{state}", f"max by (state) (orion_tasks{SEL})")], "tasks"),
    ("Placements/s and no-fits/s", [("placements/s", f"sum(rate(orion_placements_total{SEL}[$__rate_interval]))"),
                                    ("no-fits/s", f"sum(rate(orion_schedule_no_fit_total{SEL}[$__rate_interval]))")],
     "1/s"),
    ("Placement latency", [("p50", "histogram_quantile(0.5, sum by (le) (rate(orion_placement_latency_seconds_bucket"
                                   f"{SEL}[$__rate_interval])))"),
                           ("p99", "histogram_quantile(0.99, sum by (le) (rate(orion_placement_latency_seconds_bucket"
                                   f"{SEL}[$__rate_interval])))")], "s"),
    ("Registry nodes by status", [("{status}", f"max by (status) (orion_nodes{SEL})")], "nodes"),
    ("HTTP requests/s", [("{status}", f"sum by (status) (rate(orion_http_requests_total{SEL}[$__rate_interval]))")],
     "1/s"),
]


def main() -> None:
    docker_host = os.environ.get("ORION_TEST_DOCKER_HOST")
    if not docker_host or shutil.which("prometheus") is None:
        sys.exit("needs ORION_TEST_DOCKER_HOST and prometheus (scripts/ensure-prometheus.sh)")
    root = Path(tempfile.mkdtemp(prefix="orion-dash-"))
    cluster = Cluster(root=root, docker_host=docker_host)
    prom = None
    try:
        cluster.start()
        prom = Prometheus(root / "prometheus", [f"127.0.0.1:{n.port}" for n in cluster.nodes])
        prom.start()
        marks = scenario(cluster, prom, os.environ.get("ORION_TEST_IMAGE", "orion/busybox:latest"))
        start, end = marks["start"], marks["end"]
        raw = {}
        fig, axes = plt.subplots(3, 3, figsize=(16, 11), sharex=True)
        for ax, (title, queries, unit) in zip(axes.flat, PANELS, strict=True):
            for label, expr in queries:
                result = prom.query_range(grafana_expr(expr), start, end, step=1)
                raw[f"{title} / {label}"] = result
                for series in result:
                    xs = [float(t) - marks["kill"] for t, _ in series["values"]]
                    ys = [float(v) for _, v in series["values"]]
                    ax.step(xs, ys, where="post", label=label.format(**series["metric"]) if "{" in label else label)
            ax.axvline(0, color="red", linestyle="--", linewidth=1)
            ax.axvline(marks["new_leader"] - marks["kill"], color="green", linestyle=":", linewidth=1)
            ax.set_title(title, fontsize=10)
            ax.set_ylabel(unit)
            ax.legend(fontsize=7, loc="best")
            ax.grid(alpha=0.3)
        for ax in axes[-1]:
            ax.set_xlabel("seconds from leader kill (red); green = new leader seen")
        fig.suptitle("Orion dashboard series from Prometheus (1 s scrapes), 3 nodes, Raft leader killed")
        fig.tight_layout()
        RESULTS.mkdir(exist_ok=True)
        fig.savefig(RESULTS / "dashboard_node_kill.png", dpi=90)
        (RESULTS / "dashboard_node_kill.raw.json").write_text(json.dumps({"marks": marks, "series": raw}))
        print(f"wrote {RESULTS / 'dashboard_node_kill.png'}; leader killed at +{marks['kill'] - start:.1f}s, "
              f"new leader after {marks['new_leader'] - marks['kill']:.1f}s")
    finally:
        if prom is not None:
            prom.stop()
        cluster.stop()


if __name__ == "__main__":
    main()
