"""A cluster whose nodes can really die: one agent + one Docker engine per node,
each node on its own loopback address so a partition can cut exactly it off.

* ``kill_node``: SIGKILL the agent's process group and its engine (the
  node's containers die with it).
* ``partition``: iptables DROP between the minority's address and the others'
  (both directions, only between those loopback addresses); the rules are
  always removed on exit, whatever happens inside.
* ``running``: every running container of a task, across every engine.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
import requests
from engines import Engines
from harness import Cluster, Node

IPS = ["127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14", "127.0.0.15"]
# A comment on every rule we add, so cleanup can find exactly ours.
RULE_TAG = "orion-selfheal-test"


def _rules(node: Node) -> list[list[str]]:
    """Drop what arrives at the node's Raft and gossip ports and what those ports send."""
    tail = ["-j", "DROP", "-m", "comment", "--comment", RULE_TAG]
    rules = []
    for proto, port in (("tcp", node.raft_port), ("tcp", node.gossip_port), ("udp", node.gossip_port)):
        rules.append(["INPUT", "-i", "lo", "-d", node.ip, "-p", proto, "--dport", str(port), *tail])
        rules.append(["INPUT", "-i", "lo", "-s", node.ip, "-p", proto, "--sport", str(port), *tail])
    return rules


def drop_all_test_rules() -> None:
    """Remove every rule this kit added (crash-safe cleanup)."""
    out = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if RULE_TAG in line and line.startswith("-A "):
            subprocess.run(["iptables", "-D", *shlex.split(line[3:])], capture_output=True)


@dataclass
class HealCluster:
    cluster: Cluster
    engines: Engines

    @property
    def nodes(self) -> list[Node]:
        return self.cluster.nodes

    def engine_of(self, node: Node):  # noqa: ANN201
        return self.engines[self.nodes.index(node)]

    def kill_node(self, node: Node) -> None:
        self.cluster.kill(node)
        self.engine_of(node).kill()

    def stop_fast(self) -> None:
        """Teardown: SIGKILL every agent (no drains), then clear every engine's containers."""
        for node in self.nodes:
            self.cluster.kill(node)
        for engine in self.engines.items:
            if not engine.alive():
                engine.start()
            engine.remove_containers()

    def restart_node(self, node: Node, timeout: float = 60.0) -> None:
        engine = self.engine_of(node)
        if not engine.alive():
            engine.start()
        self.cluster.restart(node, timeout)

    @contextlib.contextmanager
    def partition(self, minority: Sequence[Node]) -> Iterator[None]:
        """Cut ``minority`` off from the others' Raft traffic, both ways, until the block exits.

        pysyncobj dials only from the higher address to the lower one, so when the
        minority holds the lowest addresses every connection it has is one the others
        dialed to its Raft port: dropping what arrives there, and what that port sends
        back, cuts it off completely, while its API (another port) still answers. Gossip
        is cut the same way (its UDP socket is bound to the node's own address); only a
        TCP push-pull the minority itself opens leaves from 127.0.0.1 and is not cut. Loopback source addresses are all
        127.0.0.1, so this is the one precise cut that needs no network namespaces.
        """
        lowest = sorted(self.nodes, key=lambda n: n.raft_addr)[: len(minority)]
        assert {n.id for n in minority} == {n.id for n in lowest}, "partition the lowest-addressed nodes"
        added: list[list[str]] = []
        try:
            for node in minority:
                for rule in _rules(node):
                    subprocess.run(["iptables", "-I", *rule], check=True, capture_output=True)
                    added.append(rule)
            yield
        finally:
            for rule in added:
                subprocess.run(["iptables", "-D", *rule], capture_output=True)
            drop_all_test_rules()

    def running(self, task_id: str) -> list[tuple[int, str]]:
        """(engine index, container id) of every running container of ``task_id``."""
        found = []
        for i, engine in enumerate(self.engines.items):
            if not engine.alive():
                continue
            client = docker.DockerClient(base_url=engine.host, timeout=10)
            try:
                for c in client.containers.list(filters={"label": f"orion.task={task_id}"}):
                    found.append((i, c.id))
            finally:
                client.close()
        return found

    def api(self) -> Node:
        """A node whose API answers (any live one)."""
        for node in self.cluster.live():
            if node.healthy():
                return node
        return self.cluster.live()[0]

    def task(self, task_id: str) -> dict:
        return self.api().get(f"/tasks/{task_id}").json()

    def answers(self, port: int) -> bool:
        try:
            return "hello from orion" in requests.get(f"http://127.0.0.1:{port}/", timeout=1).text
        except requests.RequestException:
            return False


def make_heal_cluster(root: Path, engines: Engines, size: int = 3, env: dict[str, str] | None = None,
                      label_names: bool = False) -> HealCluster:
    """A cluster over ``engines``; ``label_names`` gives each node the label name=<its id>
    (so a task can be pinned to one node with a selector)."""
    for engine in engines.items:
        engine.remove_containers()
    cluster = Cluster(root=root, docker_host=engines[0].host, size=size,
                      docker_hosts=[e.host for e in engines.items[:size]], ips=IPS[:size], extra_env=env or {})
    if label_names:
        cluster.labels = [{"name": n.id} for n in cluster.nodes]
    return HealCluster(cluster, engines)


@contextlib.contextmanager
def engine_pool(n: int, publish_ips: list[str] | None = None) -> Iterator[Engines]:
    """``n`` private engines, started; destroyed, and every rule this kit added dropped, on exit
    (and before: a crashed run may have left some)."""
    drop_all_test_rules()
    pool = Engines(n, publish_ips=publish_ips)
    try:
        pool.start()
        yield pool
    finally:
        drop_all_test_rules()
        pool.destroy()


@contextlib.contextmanager
def running_heal(request, hc: HealCluster) -> Iterator[HealCluster]:
    """``hc`` started for this test (whose failure prints its agents' logs), stopped fast after."""
    request.node.orion_cluster = hc.cluster
    try:
        hc.cluster.start()
        yield hc
    finally:
        hc.stop_fast()
