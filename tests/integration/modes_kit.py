"""What the integration tests of a service's modes share (test_global_service.py, test_job_runs_docker.py,
test_spread_rebalance.py): a cluster started node by node, a service's replicas per node, waits."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import docker
from harness import Cluster, Node, remove_containers

MiB = 1024 * 1024
BUSYBOX = "orion/busybox:latest"


@contextmanager
def started(request, cluster: Cluster, client: docker.DockerClient, first: int | None = None) -> Iterator[Cluster]:
    """``cluster`` with its first ``first`` nodes started (all by default); the rest join when the
    test calls :func:`join`. Stopped and its containers removed however the test ends; its agents'
    logs printed if it fails."""
    request.node.orion_cluster = cluster
    remove_containers(client, cluster)
    count = first if first is not None else cluster.size
    try:
        head = cluster.nodes[0]
        cluster.start_node(head, bootstrap=True)
        cluster.wait(head.healthy, 60, "first node healthy")
        for n in cluster.nodes[1:count]:
            cluster.start_node(n, join=head)
        cluster.wait(lambda: all(n.healthy() for n in cluster.nodes[:count]), 60, "nodes healthy")
        cluster.wait(lambda: len(head.get("/nodes").json()) == count, 60, "nodes registered")
        yield cluster
    finally:
        cluster.stop()
        remove_containers(client, cluster)


def join(cluster: Cluster, node: Node) -> None:
    """Start ``node`` and wait until it is registered and alive."""
    cluster.start_node(node, join=cluster.nodes[0])
    cluster.wait(node.healthy, 60, f"{node.id} healthy")
    wait_node(cluster, node, "alive")


def restart(cluster: Cluster, node: Node) -> None:
    """Stop ``node``'s agent gracefully and start it again (it registers again: new labels, back from a drain)."""
    cluster.kill(node, signal.SIGTERM)
    cluster.start_node(node)
    cluster.wait(node.healthy, 60, f"{node.id} healthy again")


def wait_node(cluster: Cluster, node: Node, status: str, timeout: float = 60) -> None:
    def there() -> bool:
        found = [n for n in api(cluster).get("/nodes").json() if n["id"] == node.id]
        return bool(found) and found[0]["status"] == status
    cluster.wait(there, timeout, f"{node.id} {status}")


def api(cluster: Cluster) -> Node:
    for node in cluster.live():
        if node.healthy():
            return node
    return cluster.live()[0]


def tasks(cluster: Cluster, service: str) -> list[dict[str, Any]]:
    return api(cluster).get(f"/tasks?service={service}").json()


def per_node(cluster: Cluster, service: str, state: str = "running") -> dict[str, int]:
    """Wanted replicas of ``service`` in ``state``, counted per node."""
    counts: dict[str, int] = {}
    for t in tasks(cluster, service):
        if t["desired"] == "run" and t["state"] == state:
            counts[t["nodeId"]] = counts.get(t["nodeId"], 0) + 1
    return dict(sorted(counts.items()))


def wait_per_node(cluster: Cluster, service: str, want: dict[str, int], timeout: float = 90) -> None:
    cluster.wait(lambda: per_node(cluster, service) == want, timeout,
                 f"{service} running {want} (now {safe(lambda: per_node(cluster, service))})")


def safe(fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - only for a failure message
        return f"unreadable: {exc}"
