"""The overlay's replicated state on a real 3-agent cluster on loopback: gunicorn, pysyncobj over
TCP, real gossip declaring a SIGKILLed agent dead, and the leader's real lease reclaim loop.

What an agent itself will submit once wired (``InitNetwork`` from the bootstrapping node,
``AcquireLease`` after each registration: the agent's part, issue 19) is submitted here by a
Raft member the test runs in its own process, admitted like any joiner (``POST
/cluster/members`` with the join proof); everything else is the agents'. Each agent plays a
host of its own (its own host key), so each gets a subnet of its own.

Checked on every agent: the same settings, leases and VIPs (and equal state digests at equal
indexes); an agent killed and back within ``lease_dead_grace`` gets its old subnet; one that
stays dead past it loses its lease on every node, and that subnet is not handed out again
while a never-used one is left.
"""

from __future__ import annotations

import threading
import uuid

import pytest
import requests
from harness import Cluster, Node, free_ports, running
from parts import raft_settings

from orion.control.lease_reclaim_loop import LeaseReclaimLoop
from orion.domain.model import NodeInfo, Resources
from orion.domain.network import NetworkSettings
from orion.membership.join import join_proof
from orion.raft.store import RaftStore
from orion.state.commands import AcquireLease, InitNetwork, RegisterNode
from orion.state.entries import ReplicatedMachine
from orion.state.results import LeaseAcquired, Refused, Result

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

GRACE = 20.0  # lease_dead_grace for this cluster: long enough to restart an agent inside it
WEB = {"image": "orion/busybox:latest", "memory": "16M", "count": 1, "command": ["sleep", "3600"],
       "publish": [{"published": 18080, "target": 80}]}


class Driver:
    """A Raft member in the test's process: submits what the agents' network wiring will."""

    def __init__(self, cluster: Cluster, tmp_path) -> None:  # noqa: ANN001
        addr = f"127.0.0.1:{free_ports(1)[0]}"
        # The test never kills the leader, so this member has no election to win; should it lead,
        # its own reclaim loop below acts (statuses would then wait for an agent to lead again).
        settings = raft_settings(addr, str(tmp_path / "driver"), cluster.secret, joining=True)
        voters = cluster.nodes[0].get("/cluster/members").json()["members"]
        self.store = RaftStore(settings, voters, ReplicatedMachine())
        resp = cluster.nodes[0].post("/cluster/members", json={"nodeId": "driver", "raftAddr": addr,
                                                               "proof": join_proof(cluster.secret, addr)})
        assert resp.status_code == 200, resp.text
        self.store.join_as(resp.json()["role"], resp.json()["members"])
        self._stop = threading.Event()
        loop = LeaseReclaimLoop(self.store, GRACE, interval=0.5, write_timeout=5.0)
        self._thread = threading.Thread(target=loop.run_forever, args=(self._stop,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.store.close()

    def submit(self, command) -> Result:  # noqa: ANN001
        result = self.store.submit(command, 10.0)
        assert not isinstance(result, Refused), result
        return result

    def acquire(self, node: Node) -> str:
        """What the agent on ``node`` will ask after it registers: its host's lease."""
        lease = AcquireLease(request_id=uuid.uuid4().hex, node_id=node.id, host=f"host-{node.id}",
                             underlay_ip="127.0.0.1", underlay_mtu=65536)
        granted = self.submit(lease)
        assert isinstance(granted, LeaseAcquired), granted
        return granted.lease.subnet


def network(node: Node) -> dict:
    return node.get("/cluster/network").json()


def agreed(cluster: Cluster) -> dict | None:
    """The one network every live agent shows at one applied index, or None while they differ."""
    answers = []
    for node in cluster.live():
        resp = node.get("/cluster/network")
        raft = node.get("/raft").json()
        answers.append((int(resp.headers["X-Orion-Index"]), resp.json(), raft["applied_index"]))
    first = answers[0]
    same = all(a[0] == first[0] and a[1] == first[1] for a in answers)
    return first[1] if same else None


def subnet_of(view: dict, node: Node) -> str | None:
    return next((lease["subnet"] for lease in view["leases"] if node.id in lease["holders"]), None)


def status_of(cluster: Cluster, node: Node) -> str | None:
    leader = cluster.leader() or cluster.live()[0]
    return next((n["status"] for n in leader.get("/nodes").json() if n["id"] == node.id), None)


@pytest.fixture
def net_cluster(request, tmp_path, docker_host, docker_client):
    c = Cluster(root=tmp_path, docker_host=docker_host,
                extra_env={"ORION_LEASE_DEAD_GRACE": str(GRACE), "ORION_LEASE_RECLAIM_INTERVAL": "0.5"})
    request.node.orion_cluster = c  # the agents' logs are printed if the test fails
    with running(c, docker_client):
        yield c


def test_leases_and_vips_agree_on_every_node_and_a_host_back_within_the_grace_keeps_its_subnet(net_cluster,
                                                                                             tmp_path):
    cluster = net_cluster
    driver = Driver(cluster, tmp_path)
    try:
        driver.submit(InitNetwork(request_id=uuid.uuid4().hex, settings=NetworkSettings()))
        first = {node.id: driver.acquire(node) for node in cluster.nodes}
        assert sorted(first.values()) == ["10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24"]

        # Services declared through different agents: VIPs chosen in the apply, the same everywhere.
        a, b, c = cluster.nodes
        assert b.put("/services/web", json=WEB).status_code == 201
        assert c.put("/services/names", json={**WEB, "endpointMode": "dnsrr", "publish": []}).status_code == 201
        clash = a.put("/services/other", json={**WEB, "publish": [{"published": 18080, "target": 9000}]})
        assert clash.status_code == 409 and clash.json()["field"] == "publish"
        assert "already published by service web" in clash.json()["error"]
        own = a.put("/services/other", json={**WEB, "publish": [{"published": c.raft_port, "target": 80}]})
        assert own.status_code == 400 and own.json()["field"] == "publish[0].published"  # another agent's port

        view = cluster.wait(lambda: agreed(cluster), 10, "every agent showing one network")
        assert view["settings"]["cidr"] == "10.42.0.0/16" and view["vips"] == {"web": "10.43.0.1"}
        for node in cluster.nodes:
            assert node.get("/services/web").json()["vip"] == "10.43.0.1"
            me = next(n for n in node.get("/nodes").json() if n["id"] == node.id)
            assert me["subnet"] == first[node.id] and me["vtep"]["ip"] == "127.0.0.1"
        digests = {(r["digestIndex"], r["digest"]) for r in (n.get("/raft").json() for n in cluster.nodes)}
        cluster.wait(lambda: len({(r["digestIndex"], r["digest"]) for r in
                                  (n.get("/raft").json() for n in cluster.nodes)}) == 1, 10,
                     f"equal digests at one index (saw {digests})")

        # A host that dies and is back within the grace gets its old subnet.
        leader = cluster.wait(cluster.leader, 10, "a leader")
        victim = next(n for n in cluster.nodes if n is not leader)
        cluster.kill(victim)
        cluster.wait(lambda: status_of(cluster, victim) == "dead", 15, f"{victim.id} declared dead")
        cluster.restart(victim)
        cluster.wait(lambda: status_of(cluster, victim) == "alive", 15, f"{victim.id} registered again")
        assert driver.acquire(victim) == first[victim.id]

        # One that stays dead past the grace loses its lease on every node; its subnet waits
        # behind every never-used one.
        cluster.kill(victim)
        cluster.wait(lambda: status_of(cluster, victim) == "dead", 15, f"{victim.id} declared dead again")
        gone = cluster.wait(lambda: (v := agreed(cluster)) and subnet_of(v, victim) is None and v,
                            GRACE + 20, f"{victim.id}'s lease released on every node")
        assert sorted(lease["subnet"] for lease in gone["leases"]) == sorted(
            s for node_id, s in first.items() if node_id != victim.id)
        driver.submit(RegisterNode(request_id=uuid.uuid4().hex,
                                   node=NodeInfo("newcomer", "127.0.0.1:1", "", capacity=Resources(1 << 30, 1000))))
        newcomer = driver.submit(AcquireLease(request_id=uuid.uuid4().hex, node_id="newcomer", host="host-new",
                                              underlay_ip="127.0.0.2", underlay_mtu=1500))
        assert isinstance(newcomer, LeaseAcquired) and newcomer.lease.subnet == "10.42.3.0/24"  # never used first
        cluster.restart(victim)
        cluster.wait(lambda: status_of(cluster, victim) == "alive", 15, f"{victim.id} back for good")
        assert driver.acquire(victim) == "10.42.4.0/24"  # its old one stays quarantined behind the rest
        final = cluster.wait(lambda: agreed(cluster), 10, "every agent showing one network at the end")
        assert subnet_of(final, victim) == "10.42.4.0/24" and final["vips"] == {"web": "10.43.0.1"}
    except requests.RequestException as exc:
        raise AssertionError(f"{exc}\n{cluster.logs()}") from exc
    finally:
        driver.close()
