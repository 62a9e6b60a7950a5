"""What the service tests (and bench/rolling_update.py) share: a spec, two probes, waits.

The replicas run the busybox test image's httpd, serving ``version $V``: an
update of ``V`` (an env change: new containers) is visible in every answer.

Two probes, two questions:

* :class:`BalancerProbe` is a client behind a load balancer fed by Orion's view
  of the service (the replicas running and healthy, refreshed every 100 ms), as
  a Consul-template'd nginx or an ingress would be: every 50 ms one request goes
  to the next replica, and on a refused connection it tries the others
  (``proxy_next_upstream``). A probe fails when no replica answers: that is
  downtime of the service. First-try misses (a replica stopped between two
  refreshes of the view) are counted apart, as the balancer's retries.
* :class:`NodeProbe` hits a static host port on every node's address every
  50 ms: how many replicas are down at one moment (stop-first's cost).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from harness import Cluster, Node

MiB = 1024 * 1024
PERIOD = 0.05
SERVE = 'echo "version $V" > /www/index.html && exec httpd -f -p 80 -h /www'


def web_spec(version: str = "1", count: int = 3, port: str = "", **update: Any) -> dict[str, Any]:
    return {"name": "web", "image": "orion/busybox:latest", "memory": "16M", "count": count,
            "command": ["sh", "-c", SERVE], "env": {"V": version}, "portBindings": {"80/tcp": port},
            "healthCheck": {"http": "/", "port": "80/tcp", "interval": "1s", "timeout": "1s", "failures": 2},
            "update": {"maxParallel": 1, "minHealthyTime": "2s", "healthyDeadline": "30s", **update}}


def api(cluster: Cluster) -> Node:
    for node in cluster.live():
        if node.healthy():
            return node
    return cluster.live()[0]


def service(cluster: Cluster, name: str = "web") -> dict[str, Any]:
    return api(cluster).get(f"/services/{name}").json()


def replicas(cluster: Cluster, name: str = "web") -> list[dict[str, Any]]:
    return api(cluster).get(f"/tasks?service={name}").json()


def serving(cluster: Cluster, name: str = "web") -> list[dict[str, Any]]:
    """Replicas wanted, running and healthy: what a balancer sends traffic to."""
    return [t for t in replicas(cluster, name)
            if t["desired"] == "run" and t["state"] == "running" and t["health"] == "healthy"]


def deployment_state(cluster: Cluster, version: int, states: tuple[str, ...], timeout: float) -> dict[str, Any]:
    """Wait until the service is at ``version`` with its deployment in one of ``states``."""
    def reached() -> dict[str, Any] | None:
        s = service(cluster)
        return s if s["version"] == version and s["deployment"]["state"] in states else None
    return cluster.wait(reached, timeout, f"version {version} deployment in {states}")


def answer(host: str, port: int, timeout: float = 0.5) -> str | None:
    try:
        resp = requests.get(f"http://{host}:{port}/", timeout=timeout)
    except requests.RequestException:
        return None
    return resp.text.strip() if resp.status_code == 200 else None


@dataclass
class BalancerProbe:
    cluster: Cluster
    name: str = "web"
    sent: int = 0
    failed: list[float] = field(default_factory=list)
    retried: int = 0
    seen: dict[str, int] = field(default_factory=dict)  # answer -> count
    _backends: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                ports = [t["ports"]["80/tcp"] for t in serving(self.cluster, self.name)]
                self._backends = [p for p in ports if p]
            except (requests.RequestException, ValueError, KeyError):
                pass  # an agent between two lives: keep the last view
            self._stop.wait(0.1)

    def _probe(self) -> None:
        turn = 0
        while not self._stop.is_set():
            backends = list(self._backends)
            if backends:
                self.sent += 1
                order = backends[turn % len(backends):] + backends[:turn % len(backends)]
                turn += 1
                for i, port in enumerate(order):
                    got = answer("127.0.0.1", port)
                    if got is not None:
                        self.seen[got] = self.seen.get(got, 0) + 1
                        self.retried += i > 0
                        break
                else:
                    self.failed.append(time.monotonic())
            self._stop.wait(PERIOD)

    def __enter__(self) -> BalancerProbe:
        self._backends = [t["ports"]["80/tcp"] for t in serving(self.cluster, self.name)]
        for target in (self._watch, self._probe):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)


@dataclass
class NodeProbe:
    """Every 50 ms, GET / on ``port`` at every address; one row per round: addresses down."""

    hosts: list[str]
    port: int
    rounds: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            down = []
            for host in self.hosts:
                got = answer(host, self.port, timeout=0.3)
                if got is None:
                    down.append(host)
                else:
                    self.seen[got] = self.seen.get(got, 0) + 1
            self.rounds.append((time.monotonic(), tuple(down)))
            self._stop.wait(PERIOD)

    @property
    def most_down(self) -> int:
        return max((len(down) for _, down in self.rounds), default=0)

    def __enter__(self) -> NodeProbe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
