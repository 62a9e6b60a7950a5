"""API latency over TLS (HTTPS + client certificates + token) against plain HTTP (issue #11).

    .venv/bin/python bench/tls_latency.py [--gets 1000] [--posts 300] [--out bench/results/tls_latency.json]

Starts two 1-node clusters side by side in one run: one plain, one locked down as
README "TLS and client certificates" says (``--tls-cert/--tls-key/--tls-client-ca``
and an API token). A single node is the strict case: no Raft round trip to hide the
TLS cost behind. Requests alternate between the two, so both see the same machine
load. Measured with a keep-alive client (a ``requests.Session``, as the CLI and any
tool would use), p50/p99 in ms:

* ``GET /tasks`` (the list holds the same few tasks on both);
* ``POST /tasks`` with a task no node can fit (pending with a reason: the answer
  comes after the Raft commit and the leader's placement pass, no container starts);
* ``GET /health`` on a new connection each time (what the TLS handshake costs a
  client that does not keep its connection).

Goal: keep-alive p50 and p99 over TLS at most 1.5x plain. Needs a Docker engine
(DOCKER_HOST or ORION_TEST_DOCKER_HOST) and the ``openssl`` tool.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests"))
from harness import Cluster  # noqa: E402
from tls_kit import make_tls  # noqa: E402

TOKEN = "bench-token"
UNPLACEABLE = {"image": "orion/busybox:latest", "memory": 1 << 50}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": round(pct(values, 50) * 1000, 3), "p99": round(pct(values, 99) * 1000, 3)}


def timed(session: requests.Session, method: str, url: str, kw: dict, expect: int) -> float:
    started = time.perf_counter()
    resp = session.request(method, url, timeout=30, **kw)
    elapsed = time.perf_counter() - started
    assert resp.status_code == expect, (url, resp.status_code, resp.text[:200])
    return elapsed


def alternate(clusters: dict[str, Cluster], trials: int, method: str, path: str, expect: int,
              body: dict | None = None, fresh: bool = False) -> dict[str, list[float]]:
    """``trials`` requests to each cluster, interleaved one by one."""
    sessions = {name: requests.Session() for name in clusters}
    times: dict[str, list[float]] = {name: [] for name in clusters}
    for _ in range(trials):
        for name, cluster in clusters.items():
            node = cluster.nodes[0]
            kw = {**node.client, "json": body} if body is not None else dict(node.client)
            session = requests.Session() if fresh else sessions[name]
            times[name].append(timed(session, method, node.url + path, kw, expect))
            if fresh:
                session.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gets", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--fresh", type=int, default=200)
    parser.add_argument("--out", default="bench/results/tls_latency.json")
    args = parser.parse_args()
    docker_host = os.environ.get("ORION_TEST_DOCKER_HOST") or os.environ.get("DOCKER_HOST")
    if not docker_host:
        sys.exit("tls_latency: set DOCKER_HOST (scripts/ensure-dockerd.sh starts an engine)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tls = make_tls(root / "tls")
        (root / "token").write_text(TOKEN + "\n")
        clusters = {
            "plain": Cluster(root=root / "plain", docker_host=docker_host, size=1),
            "tls": Cluster(root=root / "tls-cluster", docker_host=docker_host, size=1, scheme="https",
                           extra_args=["--tls-cert", str(tls.agent_cert), "--tls-key", str(tls.agent_key),
                                       "--tls-client-ca", str(tls.ca), "--api-token-file", str(root / "token")],
                           client={"verify": str(tls.ca), "cert": (str(tls.client_cert), str(tls.client_key)),
                                   "headers": {"Authorization": f"Bearer {TOKEN}"}}),
        }
        try:
            for cluster in clusters.values():
                cluster.root.mkdir(parents=True, exist_ok=True)
                cluster.start()
            for _ in range(5):  # the same few tasks in both lists
                alternate(clusters, 1, "POST", "/tasks", 201, body=UNPLACEABLE)
            alternate(clusters, 50, "GET", "/tasks", 200)  # warm-up
            runs = {
                "get_tasks_keepalive": alternate(clusters, args.gets, "GET", "/tasks", 200),
                "post_tasks_keepalive": alternate(clusters, args.posts, "POST", "/tasks", 201, body=UNPLACEABLE),
                "get_health_new_connection": alternate(clusters, args.fresh, "GET", "/health", 200, fresh=True),
            }
        finally:
            for cluster in clusters.values():
                cluster.stop()
    results: dict[str, object] = {
        "setup": "two 1-node clusters in one run, requests alternating; tls = HTTPS (TLS 1.3, EC P-256) "
                 "+ client certificate required + bearer token; plain = HTTP, no token",
        "host": f"{platform.node()} {os.cpu_count()} cpu, Python {platform.python_version()}",
    }
    for name, times in runs.items():
        plain, tls_ = summary(times["plain"]), summary(times["tls"])
        results[name] = {"plain_ms": plain, "tls_ms": tls_,
                         "ratio_p50": round(tls_["p50"] / plain["p50"], 2),
                         "ratio_p99": round(tls_["p99"] / plain["p99"], 2)}
    text = json.dumps(results, indent=2)
    print(text)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
