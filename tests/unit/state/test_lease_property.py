"""Subnet leases and VIPs as properties: 100 random joins, leaves, deaths, re-registrations,
engine changes, service declarations and leader passes, applied to the state machine and
the leader's reclaim planner as the cluster would.

After every step: exactly one lease per host that has a live agent, that agent among its
holders; no two leases share an index or overlap; no lease without a holder; a host whose
agents are all dead keeps its subnet for the grace, so one coming back within it gets the
same subnet; past the grace (seen by the leader's pass) it is released. VIPs are unique and
every vip-mode service has one. A replica restored from a snapshot taken half-way agrees
at the end.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st

from orion.control import lease_reclaim
from orion.domain.model import NODE_ALIVE, NODE_DEAD, NodeInfo, Resources, TaskSpec
from orion.domain.network import NetworkSettings
from orion.domain.service import ServiceSpec
from orion.state.commands import AcquireLease, DeleteService, InitNetwork, PutService, RegisterNode, SetNodeStatus
from orion.state.machine import StateMachine
from orion.state.results import LeaseAcquired, LeaseReleased, Result

GRACE = 100.0
# 16 subnets for up to 12 host keys: released subnets are reused (the quarantine order matters)
# while a live host is never refused for want of one. 14 VIPs for 6 service names.
SETTINGS = NetworkSettings(cidr="10.42.0.0/20", host_prefix=24, service_cidr="10.43.0.0/28")
NODES = [f"n{i}" for i in range(10)]
# Two agents per engine on e0 and e1 (the loopback demo); the others alone. A node may move
# to a spare engine (a reinstalled Docker gets a new ID).
HOME = {"n0": "e0", "n1": "e0", "n2": "e1", "n3": "e1", **{f"n{i}": f"e{i}" for i in range(4, 10)}}
SPARE = ["x0", "x1", "x2"]
SERVICES = ["a", "b", "c", "d", "e", "f"]

ops = st.one_of(
    st.tuples(st.just("join"), st.sampled_from(NODES)),
    st.tuples(st.just("leave"), st.sampled_from(NODES)),
    st.tuples(st.just("die"), st.sampled_from(NODES)),
    st.tuples(st.just("move"), st.sampled_from(NODES), st.sampled_from(SPARE)),
    st.tuples(st.just("tick"), st.floats(1.0, 60.0)),
    st.tuples(st.just("reclaim")),
    st.tuples(st.just("service"), st.sampled_from(SERVICES), st.sampled_from(["vip", "dnsrr"])),
    st.tuples(st.just("delete"), st.sampled_from(SERVICES)),
)


class Cluster:
    """The machine, the leader's reclaim clocks, and what the test remembers to check against."""

    def __init__(self) -> None:
        self.m = StateMachine()
        self.log: list = []
        self.now = 0.0
        self.gone_since: dict[str, lease_reclaim.Clock] = {}
        self.engine = dict(HOME)
        # host -> (subnet, when its last live agent died): a rejoin within GRACE must get it back.
        self.died: dict[str, tuple[str, float]] = {}
        self.apply(InitNetwork(settings=SETTINGS))

    def apply(self, command) -> Result:  # noqa: ANN001
        self.log.append(command)
        return self.m.apply(command, len(self.log))

    def status(self, node_id: str) -> str | None:
        node = self.m.node(node_id)
        return None if node is None else node.status

    def join(self, node_id: str) -> None:
        self.apply(RegisterNode(node=NodeInfo(node_id, "a", "r", capacity=Resources(1 << 30, 1000))))
        host = self.engine[node_id]
        result = self.apply(AcquireLease(node_id=node_id, host=host, underlay_ip="192.0.2.1", underlay_mtu=1500))
        assert isinstance(result, LeaseAcquired), result
        remembered = self.died.pop(host, None)
        if remembered is not None and self.now - remembered[1] < GRACE:
            assert result.lease.subnet == remembered[0], "a host back within the grace gets its old subnet"

    def die(self, node_id: str) -> None:
        if self.status(node_id) == NODE_ALIVE:
            self.apply(SetNodeStatus(node_id=node_id, status=NODE_DEAD))

    def note_deaths(self) -> None:
        """When a host's last live agent went (died, or left or moved away from dead ones)."""
        for lease in self.m.leases():
            if all(self.status(h) == NODE_DEAD for h in lease.holders):
                self.died.setdefault(lease.host, (lease.subnet, self.now))
            else:
                self.died.pop(lease.host, None)

    def forget_released(self) -> None:
        """A leave or a move gave a dead host's last share up: its subnet is free, no longer its own."""
        self.died = {h: d for h, d in self.died.items() if self.m.lease_of_host(h) is not None}

    def reclaim(self) -> None:
        leases = self.m.leases()
        nodes = {n.id: n for n in self.m.nodes()}
        decided = lease_reclaim.plan(leases, nodes, set(), self.now, self.gone_since, GRACE)
        for release in decided.releases:
            assert isinstance(self.apply(release.command()), LeaseReleased)
            if release.kind == lease_reclaim.ReleaseKind.DEAD:
                assert self.now - self.died[release.host][1] >= GRACE, "released within the grace"
        self.gone_since = decided.gone_since

    def step(self, op: tuple) -> None:
        kind = op[0]
        if kind == "join":
            self.join(op[1])
        elif kind == "leave" and self.status(op[1]) is not None:
            self.apply(SetNodeStatus(node_id=op[1], status="left"))
            self.forget_released()
        elif kind == "die":
            self.die(op[1])
        elif kind == "move" and self.status(op[1]) == NODE_ALIVE:
            self.engine[op[1]] = op[2]
            self.join(op[1])
            self.forget_released()
        elif kind == "tick":
            self.now += op[1]
        elif kind == "reclaim":
            self.reclaim()
        elif kind == "service":
            spec = ServiceSpec(op[1], TaskSpec("img", 64 << 20), count=0, endpoint_mode=op[2])
            self.apply(PutService(spec=spec, at=self.now))
        elif kind == "delete":
            self.apply(DeleteService(name=op[1]))
        self.note_deaths()

    def check(self) -> None:
        leases = self.m.leases()
        indexes = [lease.index for lease in leases]
        assert len(set(indexes)) == len(indexes) and all(0 <= i < SETTINGS.subnets for i in indexes)
        nets = [IPv4Network(lease.subnet) for lease in leases]
        assert all(n.subnet_of(SETTINGS.network) for n in nets)
        assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:]), "leases overlap"
        hosts = [lease.host for lease in leases]
        assert len(set(hosts)) == len(hosts), "one lease per host"
        for lease in leases:
            assert lease.holders, "a lease without holders"
            assert all(self.status(h) in (NODE_ALIVE, NODE_DEAD, "suspect", "restarting") for h in lease.holders)
        for node_id in NODES:
            if self.status(node_id) == NODE_ALIVE and self.m.lease_of_node(node_id) is not None:
                assert self.m.lease_of_node(node_id).host == self.engine[node_id]
        for host, (subnet, since) in self.died.items():
            if self.now - since < GRACE:
                lease = self.m.lease_of_host(host)
                assert lease is not None and lease.subnet == subnet, "a dead host keeps its subnet for the grace"
        vips = {r.name: self.m.vip(r.name) for r in self.m.services.all()}
        assigned = [v for v in vips.values() if v is not None]
        assert len(set(assigned)) == len(assigned), "VIPs are unique"
        for record in self.m.services.all():
            assert (vips[record.name] is not None) == (record.spec.endpoint_mode == "vip")


@settings(max_examples=100, deadline=None)
@given(st.lists(ops, min_size=50, max_size=100))
def test_leases_and_vips_stay_sound_through_any_history(history):
    cluster = Cluster()
    for node_id in NODES[:4]:
        cluster.join(node_id)
    cluster.note_deaths()
    half = (json.loads(json.dumps(cluster.m.snapshot())), len(cluster.log))
    for i, op in enumerate(history):
        cluster.step(op)
        cluster.check()
        for node_id in NODES:  # every live agent holds its host's lease (it asks at every start)
            if cluster.status(node_id) == NODE_ALIVE and op[0] == "join" and op[1] == node_id:
                assert cluster.m.lease_of_node(node_id) is not None
        if i == len(history) // 2:
            half = (json.loads(json.dumps(cluster.m.snapshot())), len(cluster.log))
    snapshot, applied = half
    replica = StateMachine.restore(snapshot)
    for index, command in enumerate(cluster.log[applied:], start=applied + 1):
        replica.apply(command, index)
    assert replica.snapshot() == cluster.m.snapshot(), "a replica restored half-way agrees at the end"


def test_a_dead_host_past_the_grace_is_released_and_within_it_is_not():
    cluster = Cluster()
    for op in (("join", "n4"), ("die", "n4"), ("reclaim",), ("tick", GRACE - 1), ("reclaim",)):
        cluster.step(op)
    assert cluster.m.lease_of_host("e4") is not None
    cluster.step(("tick", 1.0))
    cluster.step(("reclaim",))
    assert cluster.m.lease_of_host("e4") is None
