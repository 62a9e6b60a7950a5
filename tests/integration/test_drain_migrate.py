"""Drain migrates, it does not cut: real agents, one real Docker engine per node.

Each node's engine publishes ports on its node's own address (dockerd --ip), as
separate machines would, so a replacement can hold a static host port on its
new node while the original still holds it on the old one. A client probe that
knows the fleet's addresses (a load balancer's view) hits every task every
50 ms during the drain: not one probe may fail.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests
from harness import free_ports
from selfheal_kit import IPS

pytestmark = [pytest.mark.docker, pytest.mark.cluster]
# Each node's engine publishes on its own address (tests/integration/conftest.py, engines).
PUBLISH_ON_NODE_IPS = True

MiB = 1024 * 1024


def answers_somewhere(port: int) -> bool:
    """A client that knows every node's address: does any of them serve the task?"""
    for ip in IPS[:3]:
        try:
            if "hello from orion" in requests.get(f"http://{ip}:{port}/", timeout=0.5).text:
                return True
        except requests.RequestException:
            pass
    return False


class Probe:
    """Hits every port every 50 ms in a thread; counts the probes no node answered."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.sent = 0
        self.failed: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for port in self.ports:
                self.sent += 1
                if not answers_somewhere(port):
                    self.failed.append((time.monotonic(), port))
            self._stop.wait(0.05)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_a_drained_nodes_tasks_with_static_ports_move_without_one_failed_probe(heal):
    node2 = heal.nodes[1]
    api = heal.api()
    filler = api.post("/tasks", json={"image": "orion/busybox:latest", "memory": 8 * MiB,
                                      "nodeSelectors": {"name": node2.id}})
    assert filler.status_code == 201, filler.text
    ports = free_ports(2)
    ids = []
    for port in ports:  # BestFit puts both on node2, the fullest node
        resp = api.post("/tasks", json={"image": "orion/busybox:latest", "memory": 16 * MiB,
                                        "portBindings": {"80/tcp": str(port)}})
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    for tid in ids:
        t = heal.cluster.wait(lambda tid=tid: (t := heal.task(tid))["state"] == "running" and t, 30, "task running")
        assert t["nodeId"] == node2.id
    for port in ports:
        heal.cluster.wait(lambda port=port: answers_somewhere(port), 15, "the task to answer")

    with Probe(ports) as probe:
        time.sleep(0.5)
        started = time.monotonic()
        resp = api.post(f"/nodes/{node2.id}/drain")
        assert resp.status_code == 202, resp.text
        assert sorted(resp.json()["tasksToMove"]) == sorted([*ids, filler.json()["id"]])

        def moved() -> bool:
            tasks = [heal.task(tid) for tid in ids]
            return all(t["state"] == "running" and t["nodeId"] != node2.id and t["migratingFrom"] is None
                       for t in tasks) and all(len(heal.running(tid)) == 1 for tid in ids)

        heal.cluster.wait(moved, 60, "both tasks running elsewhere and their originals stopped")
        took = time.monotonic() - started
        time.sleep(1.0)
    assert probe.sent > 40
    assert probe.failed == [], f"{len(probe.failed)} of {probe.sent} probes failed"
    engine2 = heal.engines[1]
    assert not any(i == 1 for tid in ids for i, _ in heal.running(tid)), engine2.host
    print(f"drained 2 static-port tasks in {took:.1f}s, {probe.sent} probes, 0 failed")
    # The filler (pinned to node2 by its selector) cannot move: it stays until the deadline.
    assert heal.task(filler.json()["id"])["nodeId"] == node2.id
