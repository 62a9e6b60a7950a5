"""What the node's network parts are handed, read from a real state machine (orion/node/network_views.py):
the datapath's leases, the discovery view DNS and the load balancer share, a task's attachment."""

from __future__ import annotations

from orion.defaults import DNS_SEARCH
from orion.domain.model import NodeInfo, PortBinding, Resources, TaskSpec
from orion.domain.network import NetworkSettings, Publish
from orion.domain.service import HealthCheck, ServiceSpec, SlotProgress, StartReplica, StopReplica
from orion.node.network_views import (
    ViewCache,
    attachment_for,
    datapath_inputs,
    discovery_view,
    gateway,
    read_network,
    serving_counts,
)
from orion.runtime import NetworkAttachment
from orion.state.commands import (
    AcquireLease,
    ApplyDeploymentPlan,
    Command,
    InitNetwork,
    Placement,
    PlaceTasks,
    PutService,
    RegisterNode,
    ReportTaskHealth,
    ReportTaskState,
    SetNodeStatus,
)
from orion.state.machine import StateMachine
from orion.state.results import Refused, Result


class Log:
    def __init__(self) -> None:
        self.m = StateMachine()
        self.index = 0

    def __call__(self, command: Command) -> Result:
        self.index += 1
        result = self.m.apply(command, self.index)
        assert not isinstance(result, Refused), result
        return result

    def read(self):
        return read_network(self.m)


def cluster(*engines: tuple[str, str]) -> Log:
    """Nodes (node id, engine id) registered, the network set, each holding its engine's lease."""
    log = Log()
    for node_id, _ in engines:
        log(RegisterNode(node=NodeInfo(node_id, f"{node_id}:8000", f"{node_id}:9000",
                                       capacity=Resources(8 << 30, 4000))))
    log(InitNetwork(settings=NetworkSettings()))
    for i, (node_id, engine) in enumerate(engines):
        log(AcquireLease(node_id=node_id, host=engine, underlay_ip=f"10.77.0.{i + 1}", underlay_mtu=1500))
    return log


def web(log: Log, mode: str = "vip", count: int = 2, **extra) -> list[str]:
    """The service declared and its replicas created (the leader's first deployment plan)."""
    task = TaskSpec("web:1", 64 << 20, ports=(PortBinding(80, "tcp", 0),))
    log(PutService(spec=ServiceSpec("web", task, count=count, endpoint_mode=mode, **extra), at=1.0))
    ids = [f"web.{slot}.d1" for slot in range(count)]
    log(ApplyDeploymentPlan(service="web", seq=1, step=0, state="running",
                            start=tuple(StartReplica(i, slot, 1) for slot, i in enumerate(ids)),
                            progress=(SlotProgress(0, "updating", "x"),), at=1.0))
    return ids


def run(log: Log, task_id: str, node_id: str, ip: str, health: str | None = "healthy") -> None:
    log(PlaceTasks(placements=(Placement(task_id, node_id, 0),)))
    log(ReportTaskState(task_id=task_id, node_id=node_id, generation=1, state="running", container_id=task_id,
                        ip=ip))
    if health:
        log(ReportTaskHealth(task_id=task_id, node_id=node_id, generation=1, status=health, since=1.0))


def test_the_datapath_gets_its_own_lease_and_every_other_hosts():
    log = cluster(("n1", "E1"), ("n2", "E2"), ("n3", "E3"))
    inputs = datapath_inputs(log.read(), "E2")
    assert str(inputs.own.subnet) == "10.42.1.0/24" and str(inputs.own.underlay_ip) == "10.77.0.2"
    assert sorted(str(p.subnet) for p in inputs.peers) == ["10.42.0.0/24", "10.42.2.0/24"]
    assert inputs.settings.vxlan == "orion.1" and inputs.settings.bridge == "orion0" and inputs.settings.mtu == 1450
    assert datapath_inputs(log.read(), "E9") is None  # no lease yet: the datapath does nothing


def test_agents_on_one_engine_share_its_lease_and_gateway():
    log = cluster(("n1", "E1"), ("n2", "E1"))
    (lease,) = log.m.leases()
    assert lease.holders == ("n1", "n2")
    assert gateway(log.read(), "E1") == "10.42.0.1"
    assert datapath_inputs(log.read(), "E1").peers == ()


def test_a_vip_service_answers_its_vip_and_only_running_healthy_replicas_on_live_nodes_serve():
    log = cluster(("n1", "E1"), ("n2", "E2"))
    web(log, count=3, publish=(Publish(8080, 80),))
    run(log, "web.0.d1", "n1", "10.42.0.2")
    run(log, "web.1.d1", "n2", "10.42.1.2", health="unhealthy")
    log(PlaceTasks(placements=(Placement("web.2.d1", "n2", 0),)))  # placed, not running yet
    view = discovery_view(log.read(), log.index)
    (service,) = view.services
    assert service.vip == log.m.vip("web") == "10.43.0.1"
    assert [(p.target, p.published) for p in service.ports] == [(80, 8080)]
    assert [e.ip for e in view.serving("web")] == ["10.42.0.2"]
    log(SetNodeStatus(node_id="n1", status="dead"))
    assert serving_counts(discovery_view(log.read(), log.index)) == {"web": 0}


def test_with_a_health_check_a_replica_serves_only_once_healthy():
    """A replica that runs but has not passed its check yet (its server may not listen) gets no
    traffic: a start-first rollout adds it to DNS and the VIP only once healthy."""
    log = cluster(("n1", "E1"))
    web(log, count=1, health_check=HealthCheck("http", "80/tcp"))
    run(log, "web.0.d1", "n1", "10.42.0.2", health=None)
    assert serving_counts(discovery_view(log.read(), log.index)) == {"web": 0}
    log(ReportTaskHealth(task_id="web.0.d1", node_id="n1", generation=1, status="healthy", since=1.0))
    assert serving_counts(discovery_view(log.read(), log.index)) == {"web": 1}


def test_without_a_health_check_a_running_replica_serves_unless_reported_unhealthy():
    log = cluster(("n1", "E1"))
    web(log, count=1)
    run(log, "web.0.d1", "n1", "10.42.0.2", health=None)
    assert serving_counts(discovery_view(log.read(), log.index)) == {"web": 1}


def test_a_replica_asked_to_stop_stops_serving_at_once():
    """Before its container is stopped: the same apply takes it out of DNS and the VIP."""
    log = cluster(("n1", "E1"))
    web(log, count=1)
    run(log, "web.0.d1", "n1", "10.42.0.2")
    assert serving_counts(discovery_view(log.read(), log.index)) == {"web": 1}
    log(ApplyDeploymentPlan(service="web", seq=1, step=1, state="running",
                            stop=(StopReplica("web.0.d1", 0, "replaced"),),
                            progress=(SlotProgress(0, "updating", "x"),), at=2.0))
    assert serving_counts(discovery_view(log.read(), log.index)) == {"web": 0}


def test_services_off_the_overlay_are_not_discovered_and_their_tasks_do_not_attach():
    log = cluster(("n1", "E1"))
    web(log, overlay=False)
    assert discovery_view(log.read(), log.index).services == ()
    replica = log.m.task("web.0.d1")
    assert attachment_for(replica, log.read(), "E1") is None


def test_a_task_attaches_to_the_orion_network_with_the_gateway_as_its_resolver():
    log = cluster(("n1", "E1"))
    web(log, mode="dnsrr")
    replica = log.m.task("web.0.d1")
    assert attachment_for(replica, log.read(), "E1") == NetworkAttachment("orion", ("10.42.0.1",), DNS_SEARCH)
    assert attachment_for(replica, log.read(), "E9") == "host E9 has no subnet lease yet"  # a wait, not a failure


def test_the_view_is_read_once_per_applied_index():
    log = cluster(("n1", "E1"))
    reads = []

    def read():
        reads.append(log.index)
        return log.read(), log.index

    cache = ViewCache(read)
    first = cache.view()
    assert cache.view() is first and len(reads) == 1
    web(log)
    cache.noticed(log.index)
    assert cache.view() is not first and len(reads) == 2
    assert cache.network().services[0].name == "web"
