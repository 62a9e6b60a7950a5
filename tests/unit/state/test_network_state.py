"""The overlay's replicated state, command by command: settings, subnet leases, VIPs, task addresses.

Each example reads as a small log (the commands applied, in order) and what the state
must be afterwards (docs/network-leases.md).
"""

from __future__ import annotations

import json

import pytest

from orion.domain.model import NodeInfo, PortBinding, Resources, TaskSpec
from orion.domain.network import NetworkSettings, Publish, service_ports, vtep_mac
from orion.domain.service import ServiceSpec
from orion.network.overlay import lease_of
from orion.state.commands import (
    AcquireLease,
    Command,
    CreateTask,
    DeleteService,
    InitNetwork,
    Placement,
    PlaceTasks,
    PutService,
    RegisterNode,
    ReleaseLease,
    ReportTaskState,
    RollbackService,
    SetNodeStatus,
)
from orion.state.machine import StateMachine
from orion.state.results import LeaseAcquired, LeaseReleased, NetworkSet, RefusalKind, Refused, Result, result_from_dict


class Log:
    """A machine plus a running Raft index, so examples read as a log."""

    def __init__(self, machine: StateMachine | None = None) -> None:
        self.m = machine or StateMachine()
        self.index = 0

    def __call__(self, command: Command) -> Result:
        self.index += 1
        return self.m.apply(command, self.index)


def refused(result: Result, kind: RefusalKind) -> str:
    """The sentence of ``result``, which must be a refusal of ``kind``."""
    assert isinstance(result, Refused) and result.kind == kind, result
    return result.detail


def granted(result: Result) -> LeaseAcquired:
    assert isinstance(result, LeaseAcquired), result
    return result


def node(node_id: str, log_version: int | None = None) -> RegisterNode:
    info = NodeInfo(node_id, f"{node_id}:8000", f"{node_id}:9000", capacity=Resources(8 << 30, 4000))
    return RegisterNode(node=info if log_version is None else NodeInfo.from_dict({**info.to_dict(),
                                                                                  "log_version": log_version}))


def create(task_id: str) -> CreateTask:
    return CreateTask(task_id=task_id, spec=TaskSpec("orion/busybox:latest", 64 << 20))


def place(*triples: tuple[str, str, int]) -> PlaceTasks:
    return PlaceTasks(placements=tuple(Placement(*t) for t in triples))


SMALL = NetworkSettings(cidr="10.42.0.0/22", host_prefix=24, service_cidr="10.43.0.0/29")  # 4 subnets, 6 VIPs


def acquire(node_id: str, host: str, ip: str = "192.0.2.1", mtu: int = 1500) -> AcquireLease:
    return AcquireLease(node_id=node_id, host=host, underlay_ip=ip, underlay_mtu=mtu)


def service(name: str, mode: str = "vip", publish: tuple[Publish, ...] = (), overlay: bool = True,
            image: str = "web:1") -> PutService:
    spec = ServiceSpec(name, TaskSpec(image, 64 << 20), count=1, endpoint_mode=mode, publish=publish, overlay=overlay)
    return PutService(spec=spec, at=1.0)


@pytest.fixture
def log() -> Log:
    log = Log()
    for n in ("n1", "n2", "n3", "n4", "n5"):
        log(node(n))
    return log


@pytest.fixture
def net(log: Log) -> Log:
    assert log(InitNetwork(settings=SMALL)) == NetworkSet(SMALL, changed=True)
    return log


def subnets(m: StateMachine) -> dict[str, str]:
    return {lease.host: lease.subnet for lease in m.leases()}


# -- settings ---------------------------------------------------------------------------------------

def test_the_first_settings_win_and_the_same_again_changes_nothing(log):
    assert log.m.network() is None
    assert log(InitNetwork(settings=NetworkSettings())) == NetworkSet(NetworkSettings(), changed=True)
    assert log(InitNetwork(settings=NetworkSettings())) == NetworkSet(NetworkSettings(), changed=False)
    assert "mtu 1450 (asked 1400)" in refused(log(InitNetwork(settings=NetworkSettings(mtu=1400))), RefusalKind.EXISTS)
    assert log.m.network() == NetworkSettings()


@pytest.mark.parametrize("settings, words", [
    (NetworkSettings(host_prefix=16), "host_prefix /16 must be longer"),
    (NetworkSettings(host_prefix=31), "at most /30"),
    (NetworkSettings(service_cidr="10.42.128.0/17"), "overlaps the cluster CIDR"),
    (NetworkSettings(cidr="10.42.0.300/16"), "not an IPv4 network"),
    (NetworkSettings(vni=0), "vni 0"),
    (NetworkSettings(mtu=100), "mtu 100"),
])
def test_unsound_settings_are_refused_and_nothing_is_set(log, settings, words):
    assert words in refused(log(InitNetwork(settings=settings)), RefusalKind.INVALID)
    assert log.m.network() is None


# -- leases -----------------------------------------------------------------------------------------

def test_no_lease_before_the_network_is_set(log):
    assert "not set yet" in refused(log(acquire("n1", "hostA")), RefusalKind.WRONG_STATE)


def test_a_host_gets_the_lowest_never_used_subnet_with_its_vtep_mac(net):
    a = granted(net(acquire("n1", "hostA", "192.0.2.1")))
    b = granted(net(acquire("n2", "hostB", "192.0.2.2")))
    assert (a.lease.subnet, b.lease.subnet) == ("10.42.0.0/24", "10.42.1.0/24")
    assert a.created and b.created
    lease = net.m.lease_of_host("hostB")
    assert lease.vtep_mac == "0e:42:0a:2a:01:00"
    assert lease.vtep_mac == lease_of("n2", lease.subnet, lease.underlay_ip).vtep_mac  # one rule, both layers
    assert net.m.lease_of_node("n2") == lease


def test_agents_sharing_one_engine_share_one_lease(net):
    net(acquire("n1", "engine", "127.0.0.1"))
    assert granted(net(acquire("n2", "engine", "127.0.0.1"))).created is False
    (lease,) = net.m.leases()
    assert lease.holders == ("n1", "n2") and lease.subnet == "10.42.0.0/24"


def test_asking_again_gives_the_same_lease_with_the_new_underlay_address(net):
    net(acquire("n1", "hostA", "192.0.2.1"))
    net(acquire("n1", "hostA", "192.0.2.99"))
    (lease,) = net.m.leases()
    assert (lease.subnet, lease.underlay_ip, lease.holders) == ("10.42.0.0/24", "192.0.2.99", ("n1",))


def test_an_underlay_that_cannot_carry_the_overlay_is_refused_naming_both_mtus(net):
    why = refused(net(acquire("n1", "hostA", mtu=1450)), RefusalKind.MTU)
    assert "underlay MTU 1450" in why and "MTU 1450 plus 50" in why and "at least 1500" in why
    assert net.m.leases() == ()


@pytest.mark.parametrize("command, kind", [
    (acquire("ghost", "hostA"), RefusalKind.NOT_FOUND),
    (acquire("n1", ""), RefusalKind.INVALID),
    (acquire("n1", "hostA", ip="not-an-ip"), RefusalKind.INVALID),
])
def test_unsound_requests_are_refused(net, command, kind):
    refused(net(command), kind)
    assert net.m.leases() == ()


def test_a_full_pool_is_refused(net):
    for i, n in enumerate(("n1", "n2", "n3", "n4")):
        granted(net(acquire(n, f"host{i}")))
    why = refused(net(acquire("n5", "host9")), RefusalKind.EXHAUSTED)
    assert "every subnet of 10.42.0.0/22 in /24 is leased (4)" in why


def test_the_last_holder_leaving_cleanly_releases_the_lease(net):
    net(acquire("n1", "engine"))
    net(acquire("n2", "engine"))
    net(SetNodeStatus(node_id="n1", status="left"))
    assert net.m.lease_of_host("engine").holders == ("n2",)
    net(SetNodeStatus(node_id="n2", status="left"))
    assert net.m.leases() == ()


def test_a_leaving_node_that_still_runs_tasks_keeps_its_share(net):
    net(acquire("n1", "hostA"))
    net(create("t1"))
    net(place(("t1", "n1", 0)))
    net(SetNodeStatus(node_id="n1", status="left"))  # a drain: the original runs until its replacement does
    assert net.m.lease_of_host("hostA").holders == ("n1",)


def test_a_dead_host_keeps_its_lease_and_gets_it_back(net):
    net(acquire("n1", "hostA"))
    net(acquire("n2", "hostB"))
    net(SetNodeStatus(node_id="n1", status="dead"))
    assert subnets(net.m)["hostA"] == "10.42.0.0/24"
    net(node("n1"))  # rebooted: registers again, alive
    assert granted(net(acquire("n1", "hostA"))).lease.subnet == "10.42.0.0/24"


def test_a_release_is_refused_while_a_holder_may_still_use_the_lease(net):
    net(acquire("n1", "hostA"))
    for status in ("alive", "suspect", "restarting"):
        net(SetNodeStatus(node_id="n1", status=status))
        why = refused(net(ReleaseLease(host="hostA", reason="dead too long")), RefusalKind.WRONG_STATE)
        assert f"node n1, which is {status}" in why
    net(SetNodeStatus(node_id="n1", status="dead"))
    released = net(ReleaseLease(host="hostA", reason="dead too long"))
    assert isinstance(released, LeaseReleased) and released.reason == "dead too long"
    assert net.m.leases() == ()
    assert refused(net(ReleaseLease(host="hostA")), RefusalKind.NOT_FOUND) == "host 'hostA' holds no lease"


def test_a_released_subnet_is_reused_only_after_every_never_used_one_oldest_release_first(net):
    for n, host in (("n1", "A"), ("n2", "B")):
        net(acquire(n, host))
    for n in ("n1", "n2"):
        net(SetNodeStatus(node_id=n, status="dead"))
    net(ReleaseLease(host="B"))  # 10.42.1.0 released first,
    net(ReleaseLease(host="A"))  # then 10.42.0.0
    order = [granted(net(acquire(n, f"new{n}"))).lease.subnet for n in ("n3", "n4", "n5")]
    assert order == ["10.42.2.0/24", "10.42.3.0/24", "10.42.1.0/24"]
    net(node("n1"))
    assert granted(net(acquire("n1", "A"))).lease.subnet == "10.42.0.0/24"  # the last one left, released last


def test_a_node_on_another_engine_gives_up_its_old_hosts_lease(net):
    net(acquire("n1", "old-engine"))
    net(acquire("n1", "new-engine"))
    assert subnets(net.m) == {"new-engine": "10.42.1.0/24"}


def test_a_node_moving_out_of_a_full_pool_takes_the_subnet_it_frees(net):
    for i, n in enumerate(("n1", "n2", "n3", "n4")):
        net(acquire(n, f"host{i}"))
    assert granted(net(acquire("n1", "reinstalled"))).lease.subnet == "10.42.0.0/24"


# -- VIPs -------------------------------------------------------------------------------------------

def test_a_vip_service_gets_the_next_vip_and_keeps_it_across_updates(net):
    net(service("web"))
    net(service("api"))
    assert (net.m.vip("web"), net.m.vip("api")) == ("10.43.0.1", "10.43.0.2")
    assert net(service("web", image="web:2")).changed
    assert net.m.vip("web") == "10.43.0.1"


def test_dnsrr_and_opted_out_services_get_none_and_switching_gives_it_back(net):
    net(service("dns", mode="dnsrr"))
    net(service("host", overlay=False))
    assert (net.m.vip("dns"), net.m.vip("host")) == (None, None)
    net(service("web"))
    net(service("web", mode="dnsrr"))
    assert net.m.vip("web") is None
    net(service("other"))
    assert net.m.vip("other") == "10.43.0.2"  # 10.43.0.1 was released: never-used ones first


def test_a_deleted_services_vip_is_reused_last(net):
    for name in ("a", "b", "c", "d", "e", "f"):
        net(service(name))
    net(DeleteService(name="b"))
    net(DeleteService(name="a"))
    net(service("g"))
    assert net.m.vip("g") == "10.43.0.2"  # b's, released before a's
    full = net(service("h"))
    assert net.m.vip("h") == "10.43.0.1" and not isinstance(full, Refused)
    assert "every VIP of 10.43.0.0/29 is taken" in refused(net(service("i")), RefusalKind.EXHAUSTED)
    assert net.m.services.get("i") is None
    assert not isinstance(net(service("i", mode="dnsrr")), Refused)


def test_services_declared_before_the_network_get_their_vips_when_it_is_set(log):
    log(service("web"))
    log(service("api"))
    assert log.m.vip("web") is None
    log(InitNetwork(settings=SMALL))
    assert (log.m.vip("api"), log.m.vip("web")) == ("10.43.0.1", "10.43.0.2")  # in name order


def test_two_services_cannot_publish_one_port(net):
    net(service("web", publish=(Publish(8080, 80),)))
    taken = refused(net(service("api", publish=(Publish(8080, 9000),))), RefusalKind.PORT_TAKEN)
    assert "8080/tcp is already published by service web" in taken
    assert net.m.services.get("api") is None
    udp = net(service("api", publish=(Publish(8080, 9000, "udp"),)))  # another protocol is another port
    assert not isinstance(udp, Refused)
    assert not isinstance(net(service("web", publish=(Publish(8080, 81),))), Refused)  # a service may change its own


def test_a_rollback_to_a_port_another_service_took_is_refused(net):
    net(service("web", publish=(Publish(8080, 80),)))
    net(service("web", publish=(Publish(8081, 80),)))
    net(service("api", publish=(Publish(8080, 80),)))
    taken = refused(net(RollbackService(name="web", version=1, at=2.0)), RefusalKind.PORT_TAKEN)
    assert "8080/tcp is already published by service api" in taken
    assert net.m.services.get("web").current.version == 2


# -- task addresses ---------------------------------------------------------------------------------

def running(net: Log, ip: str | None) -> Result:
    return net(ReportTaskState(task_id="t1", node_id="n1", generation=1, state="running", container_id="c1", ip=ip))


def test_a_task_keeps_the_address_its_node_reported_until_it_is_placed_again(net):
    net(create("t1"))
    net(place(("t1", "n1", 0)))
    running(net, "10.42.0.2")
    assert net.m.task("t1").ip == "10.42.0.2"
    running(net, None)
    assert net.m.task("t1").ip == "10.42.0.2"
    net(SetNodeStatus(node_id="n1", status="dead"))
    net(ReportTaskState(task_id="t1", node_id="n1", generation=1, state="lost"))
    net(place(("t1", "n2", 1)))
    assert net.m.task("t1").ip is None


def test_an_address_is_recorded_only_once_the_network_is_set_and_only_if_it_is_one(log):
    log(create("t1"))
    log(place(("t1", "n1", 0)))
    running(log, "10.42.0.2")
    assert log.m.task("t1").ip is None
    log(InitNetwork(settings=SMALL))
    running(log, "banana")
    assert log.m.task("t1").ip is None
    running(log, "10.42.0.2")
    assert log.m.task("t1").ip == "10.42.0.2"


# -- the log-version gate ---------------------------------------------------------------------------

def test_while_a_node_reads_only_the_old_format_nothing_of_the_network_is_written(log):
    log(node("old", log_version=1))
    assert "finish the upgrade" in refused(log(InitNetwork(settings=SMALL)), RefusalKind.LOG_VERSION)
    assert log.m.network() is None
    log(SetNodeStatus(node_id="old", status="left"))  # upgraded away: left nodes never read the log again
    assert log(InitNetwork(settings=SMALL)) == NetworkSet(SMALL, changed=True)


def test_an_old_node_joining_later_stops_acquisitions_and_addresses(net):
    net(create("t1"))
    net(place(("t1", "n1", 0)))
    net(node("old", log_version=1))
    refused(net(acquire("n1", "hostA")), RefusalKind.LOG_VERSION)
    running(net, "10.42.0.2")
    assert net.m.task("t1").ip is None


# -- snapshots --------------------------------------------------------------------------------------

def test_a_snapshot_carries_settings_leases_reuse_order_and_vips(net):
    for n, host in (("n1", "A"), ("n2", "B"), ("n3", "C")):
        net(acquire(n, host))
    net(SetNodeStatus(node_id="n2", status="dead"))
    net(ReleaseLease(host="B"))
    net(service("web", publish=(Publish(8080, 80),)))
    net(service("gone"))
    net(DeleteService(name="gone"))
    restored = StateMachine.restore(json.loads(json.dumps(net.m.snapshot())))
    assert restored.snapshot() == net.m.snapshot()
    assert restored.network() == SMALL and restored.leases() == net.m.leases()
    later = Log(restored)
    later.index = net.index
    for m in (net, later):  # both replicas choose the same next subnet and VIP
        assert granted(m(acquire("n4", "D"))).lease.subnet == "10.42.3.0/24"
        assert granted(m(acquire("n5", "E"))).lease.subnet == "10.42.1.0/24"
        m(service("next"))
        assert m.m.vip("next") == "10.43.0.3"
    assert later.m.snapshot() == net.m.snapshot()


def test_a_snapshot_from_before_the_network_restores_without_one():
    """A machine without the network writes no "network" key (its digest is as before the
    overlay existed), and such a snapshot restores with the network unset."""
    old = StateMachine().snapshot()
    assert "network" not in old
    assert StateMachine.restore(old).network() is None


def test_a_services_ports_for_discovery_are_its_bindings_and_published_targets():
    ports = (PortBinding(80, "tcp", None), PortBinding(53, "udp", 53))
    spec = ServiceSpec("web", TaskSpec("web:1", 64 << 20, ports=ports),
                       publish=(Publish(8080, 80), Publish(9090, 9000)))
    assert service_ports(spec.publish, spec.task.ports) == ((53, "udp", None), (80, "tcp", 8080), (9000, "tcp", 9090))
    assert vtep_mac(SMALL.subnet(3)) == "0e:42:0a:2a:03:00"


def test_services_declared_while_an_old_node_read_the_log_get_vips_once_it_is_upgraded(net):
    net(node("n5", log_version=1))
    net(service("web"))
    assert net.m.vip("web") is None
    refused(net(ReleaseLease(host="any")), RefusalKind.LOG_VERSION)
    net(node("n5"))  # upgraded: registers with this release's format, then asks for its lease
    net(acquire("n5", "hostE"))
    assert net.m.vip("web") == "10.43.0.1"


# -- results ----------------------------------------------------------------------------------------

def test_the_networks_answers_survive_their_plain_form_as_history_keeps_them(net):
    """The machine remembers each request's answer in its snapshot (history.py)."""
    answers = [net(InitNetwork(settings=SMALL)), net(acquire("n1", "A")), net(acquire("n2", "B", mtu=1000)),
               net(SetNodeStatus(node_id="n1", status="dead")), net(ReleaseLease(host="A", reason="dead")),
               net(service("web", publish=(Publish(8080, 80),))), net(service("api", publish=(Publish(8080, 80),)))]
    assert [type(a).__name__ for a in answers] == ["NetworkSet", "LeaseAcquired", "Refused", "NodeChanged",
                                                   "LeaseReleased", "ServiceDeclared", "Refused"]
    for answer in answers:
        assert result_from_dict(json.loads(json.dumps(answer.to_dict()))) == answer


def test_the_network_follows_other_commands_without_wrapping_their_handlers(net):
    """Their handlers are their own registries' (the machine calls the network around them)."""
    handlers = net.m._handlers
    assert handlers[SetNodeStatus.TYPE] == net.m._registry.set_status
    assert handlers[PutService.TYPE].__self__ is net.m.services
    assert handlers[AcquireLease.TYPE] == net.m.networking.acquire
