"""The overlay network over HTTP: ``GET /cluster/network`` and ``GET /services/<name>/endpoints``.

Reads only, from this node's replica, with the index they reflect and blocking queries
(``?index=N``): the settings fixed at bootstrap, every host's subnet lease and the services'
VIPs (docs/network-leases.md); and where a service's replicas answer, with the rule that
decides whether each one receives traffic (``serving``), the one DNS and the load
balancer apply (``orion/network/view.py``, ``DiscoveryView.is_serving``): running, with
an overlay address, on a node not declared dead, passing its health check (a replica still
``starting`` does not).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from orion.api.http import ApiError, AppliedSignal, answer
from orion.api.schema import network_responses as nr
from orion.api.schema.queries import BlockingReadQuery, parse_query
from orion.domain.model import DESIRED_RUN, NODE_DEAD, RUNNING, TERMINAL_STATES, NodeInfo, Task
from orion.domain.network import NetworkSettings, SubnetLease, service_ports
from orion.domain.service import HEALTHY, UNHEALTHY
from orion.state.machine import StateMachine
from orion.state.services import ServiceRecord
from orion.store.port import Store


def settings_view(s: NetworkSettings) -> nr.NetworkSettingsView:
    return {"cidr": s.cidr, "hostPrefix": s.host_prefix, "vni": s.vni, "port": s.port, "mtu": s.mtu,
            "serviceCidr": s.service_cidr}


def lease_view(lease: SubnetLease) -> nr.Lease:
    return {"index": lease.index, "subnet": lease.subnet, "host": lease.host, "holders": list(lease.holders),
            "underlayIp": lease.underlay_ip, "vtepMac": lease.vtep_mac, "updatedIndex": lease.updated_index}


def serving(task: Task, node: NodeInfo | None, checked: bool) -> bool:
    """Receives the service's traffic: running, addressed, on a node not dead, and passing its
    check (without one a running replica reports healthy; only unhealthy stops it)."""
    passing = task.health == HEALTHY if checked else task.health != UNHEALTHY
    alive = node is not None and node.status != NODE_DEAD
    return task.state == RUNNING and task.ip is not None and alive and passing


def endpoints_view(record: ServiceRecord, replicas: list[Task], nodes: dict[str, NodeInfo]) -> list[nr.Endpoint]:
    """The replicas that still matter (wanted, or not yet stopped), in slot order."""
    checked = record.spec.health_check is not None
    out: list[nr.Endpoint] = []
    for task in sorted(replicas, key=lambda t: (t.slot, t.id)):
        if task.desired != DESIRED_RUN and task.state in TERMINAL_STATES:
            continue
        ports = [{"target": target, "protocol": proto, "published": published}
                 for target, proto, published in service_ports(record.spec.publish, task.spec.ports)]
        out.append({"task": task.id, "slot": task.slot, "nodeId": task.node_id, "ip": task.ip, "ports": ports,
                    "state": task.state, "health": task.health or "starting",
                    "serving": serving(task, nodes.get(task.node_id or ""), checked)})
    return out


def network_blueprint(store: Store, applied: AppliedSignal) -> Blueprint:
    bp = Blueprint("network", __name__)

    def block() -> None:
        applied.block(parse_query(BlockingReadQuery, request.args))

    @bp.get("/cluster/network")
    def cluster_network() -> Response:
        block()

        def read(m: StateMachine) -> dict[str, Any]:
            settings = m.network()
            return {"settings": settings_view(settings) if settings else None,
                    "leases": [lease_view(lease) for lease in m.leases()],
                    "vips": {record.name: vip for record in m.services.all() if (vip := m.vip(record.name))}}

        view, index = store.read(read)
        return answer(view, 200, index)

    @bp.get("/services/<name>/endpoints")
    def endpoints(name: str) -> Response:
        block()

        def read(m: StateMachine) -> tuple[Any, ...]:
            record = m.services.get(name)
            if record is None:
                return None, [], {}, None
            return record, m.services.replicas(name), {n.id: n for n in m.nodes()}, m.vip(name)

        (record, replicas, nodes, vip), index = store.read(read)
        if record is None:
            raise ApiError(404, f"no service {name}", "name")
        return answer({"service": name, "endpointMode": record.spec.endpoint_mode, "vip": vip,
                       "endpoints": endpoints_view(record, replicas, nodes)}, 200, index)

    return bp
