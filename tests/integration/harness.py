"""A real multi-process Orion cluster on loopback, for integration tests and benches.

Each node is a real ``orion agent`` process (gunicorn + pysyncobj over TCP)
with its own data dir and log file; every node talks to the same Docker engine
(``ORION_TEST_DOCKER_HOST``), its containers told apart by the node label.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import docker
import requests

ORION = [str(Path(sys.executable).parent / "orion")]


def free_ports(n: int) -> list[int]:
    """Ports the kernel says are free now (bound then released)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def http_get(port: int, deadline: float = 10.0) -> str:
    """GET / on loopback, retrying while httpd starts inside a fresh container."""
    end = time.monotonic() + deadline
    while True:
        try:
            return requests.get(f"http://127.0.0.1:{port}/", timeout=2).text
        except requests.RequestException:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


@dataclass
class Node:
    id: str
    port: int
    raft_port: int
    gossip_port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen | None = None
    # Per-node engine and loopback address (self-healing tests); default: the cluster's.
    docker_host: str = ""
    ip: str = "127.0.0.1"
    # https for a TLS cluster; ``client``: requests arguments every call carries (verify,
    # cert, headers), given per request because REQUESTS_CA_BUNDLE beats a Session's verify.
    scheme: str = "http"
    client: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.ip}:{self.port}"

    @property
    def raft_addr(self) -> str:
        return f"{self.ip}:{self.raft_port}"

    def _kw(self, kw: dict) -> dict:
        return {**self.client, **kw, "headers": {**self.client.get("headers", {}), **kw.get("headers", {})}}

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, timeout=kw.pop("timeout", 5), **self._kw(kw))

    def post(self, path: str, **kw) -> requests.Response:
        return requests.post(self.url + path, timeout=kw.pop("timeout", 10), **self._kw(kw))

    def put(self, path: str, **kw) -> requests.Response:
        return requests.put(self.url + path, timeout=kw.pop("timeout", 10), **self._kw(kw))

    def delete(self, path: str, **kw) -> requests.Response:
        return requests.delete(self.url + path, timeout=kw.pop("timeout", 10), **self._kw(kw))

    def healthy(self) -> bool:
        try:
            return self.get("/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False


@dataclass
class Cluster:
    root: Path
    docker_host: str
    size: int = 3
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    nodes: list[Node] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    # Node ids carry a per-cluster tag: containers are told apart by their node label, so
    # two clusters on one engine (a bench beside a test) must never share a node id.
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    # Optional, one per node: its own Docker engine / loopback address / labels.
    docker_hosts: list[str] | None = None
    ips: list[str] | None = None
    labels: list[dict[str, str]] | None = None
    # Optional, one per node: more arguments for that node's agent only (e.g. --host-volume).
    node_args: list[list[str]] | None = None
    # Added to every agent's command line (e.g. --tls-cert ...), and the nodes' scheme and
    # requests arguments (a TLS cluster: "https", {"verify": ca, "cert": (...), "headers": ...}).
    extra_args: list[str] = field(default_factory=list)
    # Optional, one per node: a command its agent runs under, e.g. ["ip", "netns", "exec", NS]
    # (tests/netlab/cluster_kit.py: each agent inside its lab host's namespace).
    prefixes: list[list[str]] | None = None
    scheme: str = "http"
    client: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        ports = free_ports(3 * self.size)
        for i in range(self.size):
            node_id = f"node{i + 1}-{self.tag}"
            self.nodes.append(Node(node_id, ports[3 * i], ports[3 * i + 1], ports[3 * i + 2],
                                   self.root / node_id, self.root / f"{node_id}.log",
                                   docker_host=self.docker_hosts[i] if self.docker_hosts else self.docker_host,
                                   ip=self.ips[i] if self.ips else "127.0.0.1",
                                   scheme=self.scheme, client=self.client))

    def start_node(self, node: Node, bootstrap: bool = False, join: Node | None = None,
                   join_addr: str | None = None) -> None:
        prefix = self.prefixes[self.nodes.index(node)] if self.prefixes else []
        args = prefix + ORION + ["agent", "--id", node.id, "--port", str(node.port), "--raft-port", str(node.raft_port),
                        "--gossip-port", str(node.gossip_port), "--data-dir", str(node.data_dir),
                        "--docker-host", node.docker_host, *self.extra_args]
        if node.ip != "127.0.0.1":
            args += ["--bind", node.ip]
        for key, value in (self.labels[self.nodes.index(node)] if self.labels else {}).items():
            args += ["--label", f"{key}={value}"]
        if self.node_args:
            args += self.node_args[self.nodes.index(node)]
        if bootstrap:
            args.append("--bootstrap")
        if join is not None:
            args += ["--join", f"{join.ip}:{join.gossip_port}"]  # gossip discovery (API address also works)
        if join_addr is not None:
            args += ["--join", join_addr]
        # The secret travels in the environment, never on argv (ps would show it). The overlay is
        # off unless a test turns it on: clusters sharing one engine and the root namespace would
        # share its network, DNS address and nft tables (tests/netlab gives each host its own).
        env = {**os.environ, "ORION_RECONCILE_INTERVAL": "1", "ORION_RAFT_SECRET": self.secret,
               "ORION_NETWORK": "0", **self.extra_env}
        log = open(node.log_path, "ab")  # noqa: SIM115 - handed to the child
        node.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()

    def start(self, timeout: float = 60.0) -> None:
        first = self.nodes[0]
        self.start_node(first, bootstrap=True)
        self.wait(lambda: first.healthy(), timeout, "first node healthy")
        for node in self.nodes[1:]:
            self.start_node(node, join=first)
        self.wait(lambda: all(n.healthy() for n in self.nodes), timeout, "all nodes healthy")
        self.wait(lambda: len(first.get("/nodes").json()) == self.size, timeout, "all nodes registered")

    def restart(self, node: Node, timeout: float = 60.0) -> None:
        self.start_node(node)
        self.wait(node.healthy, timeout, f"{node.id} healthy again")

    def kill(self, node: Node, sig: int = signal.SIGKILL) -> None:
        """Kill the node's whole process group (gunicorn master and worker)."""
        if node.proc is None:
            return
        try:
            os.killpg(node.proc.pid, sig)
        except ProcessLookupError:
            pass
        node.proc.wait(timeout=30)
        node.proc = None

    def leader(self) -> Node | None:
        for node in self.live():
            try:
                raft = node.get("/raft", timeout=1).json()
            except (requests.RequestException, ValueError):
                continue
            for candidate in self.nodes:
                if raft.get("leader") == candidate.raft_addr and candidate.proc is not None:
                    return candidate
        return None

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.proc is not None]

    def wait(self, predicate, timeout: float, what: str, step: float = 0.1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = predicate()
            except (requests.RequestException, ValueError, KeyError):
                value = None
            if value:
                return value
            time.sleep(step)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.logs()}")

    def logs(self, tail: int = 60) -> str:
        out = []
        for node in self.nodes:
            try:
                lines = node.log_path.read_text(errors="replace").splitlines()[-tail:]
            except FileNotFoundError:
                lines = ["(no log)"]
            out.append(f"----- {node.id} ({node.log_path}) -----\n" + "\n".join(lines))
        return "\n".join(out)

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None:
                self.kill(node, signal.SIGTERM)


def remove_containers(client: docker.DockerClient, cluster: Cluster) -> None:
    """Every container the cluster's nodes labelled as theirs, on ``client``'s engine."""
    for node in cluster.nodes:
        for c in client.containers.list(all=True, filters={"label": f"orion.node={node.id}"}):
            try:
                c.remove(force=True)
            except docker.errors.APIError:
                pass


@contextmanager
def running(cluster: Cluster, client: docker.DockerClient) -> Iterator[Cluster]:
    """``cluster`` started; stopped and its containers removed however the block ends."""
    remove_containers(client, cluster)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        remove_containers(client, cluster)


def wait_until(predicate, timeout: float, what: str, step: float = 0.02) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")
