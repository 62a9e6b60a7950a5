"""How replicated records look over HTTP: camelCase JSON, CPU in cores.

Pure functions from model values to plain dicts, so the wire format is decided
in one place and tested without a server; the shapes are the typed dicts of
``orion/api/schema/responses.py``, which the OpenAPI document shows. Internally CPU is millicores and
ports are PortBindings; users think in cores and ``{"80/tcp": 8080}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orion.api.schema import responses as r
from orion.api.schema.container import container_body
from orion.api.secret_views import env_view, file_fields
from orion.domain.model import NodeInfo, Resources, Task
from orion.domain.network import SubnetLease


def cores(millis: int) -> float:
    """Millicores as cores for display (500 -> 0.5)."""
    return millis / 1000


def resources_view(res: Resources) -> r.ResourcesView:
    return {"memory": res.memory, "cpu": cores(res.cpu_millis)}


def task_ports(task: Task) -> dict[str, int | None]:
    """Each published port with its host port: the one the node reported once it runs,
    else the static one asked for, else None (dynamic, not yet known)."""
    actual = dict(task.host_ports)
    return {p.key: actual.get(p.key, p.host_port) for p in task.spec.ports}


def task_view(task: Task, detail: bool = False) -> r.Task:
    """The task as the API shows it; ``detail`` adds what only ``inspect`` needs (env, command...)."""
    spec = task.spec
    view: r.Task = {
        "id": task.id,
        "name": spec.name,
        "image": spec.image,
        "state": task.state,
        "desired": task.desired,
        "nodeId": task.node_id,
        "ports": task_ports(task),
        "reason": task.reason,
        "reasonKind": None if task.reason_kind is None else str(task.reason_kind),
        "memory": spec.memory,
        "cpu": cores(spec.cpu_millis),
        "generation": task.generation,
        "createdIndex": task.created_index,
        "updatedIndex": task.updated_index,
        "restarts": task.restarts,
        "exitCode": task.exit_code,
        # A drain in progress: the old copy that keeps running until this placement runs.
        "migratingFrom": ({"nodeId": task.migrating_from.node_id, "generation": task.migrating_from.generation}
                          if task.migrating_from else None),
        # A service's replica (docs/services.md): its service and version, and its health as its
        # node reports it (starting until the first report of this placement). None for a lone task.
        "service": task.service or None,
        "version": task.version if task.service else None,
        "health": (task.health or "starting") if task.service else None,
        "healthOutput": task.health_output if task.service else None,
        # Its container's overlay address as its node reported it (None: off the overlay, or not yet).
        "ip": task.ip,
    }
    if detail:
        view.update(
            containerId=task.container_id,
            command=list(spec.command) if spec.command is not None else None,
            env=env_view(spec),
            nodeSelectors=dict(spec.node_selectors),
            restartPolicy=spec.restart_policy,
            pullPolicy=spec.pull_policy,
            count=spec.count,
            volumes=[{"source": v.source, "target": v.target, "readOnly": v.read_only, "type": v.type}
                     for v in spec.volumes],
            **file_fields(spec, pinned=True),  # secrets and configs: which, where, never a value
            overlay=spec.overlay,
        )
        view.update(container_body(spec.container))  # its keys: r.ContainerView
        if task.service:
            view.update(slot=task.slot, deployment=task.deployment, healthSince=task.health_since or None)
    return view


def _port_label(port: Any) -> str:
    if isinstance(port, tuple) and len(port) == 2:
        return f"{port[0]}/{port[1]}"
    return str(port)


def node_view(
    node: NodeInfo,
    used: Resources,
    ports: Iterable[Any],
    leader_raft_addr: str | None,
    extra: Mapping[str, Any] | None = None,
    lease: SubnetLease | None = None,
) -> r.Node:
    """A registered node with what is reserved on it and its host's subnet lease (``vtep``: the
    underlay address VXLAN packets for the subnet go to, and the VTEP's MAC); ``extra``
    (gossip's view) is merged last."""
    view: r.Node = {
        "id": node.id,
        "apiAddr": node.api_addr,
        "raftAddr": node.raft_addr,
        "gossipAddr": node.gossip_addr,
        "status": node.status,
        # Readiness: does its container engine answer (orion/node/readiness.py); not ready = no tasks.
        "ready": node.ready,
        "readyReason": node.ready_reason,
        "labels": dict(node.labels),
        "hostVolumes": list(node.host_volumes),
        # What the node hands to tasks that ask (config host_devices, allow_privileged).
        "hostDevices": list(node.host_devices),
        "allowPrivileged": node.allow_privileged,
        "keyIds": list(node.key_ids),  # the cluster keys its key file holds (docs/secrets.md)
        "leader": bool(leader_raft_addr) and node.raft_addr == leader_raft_addr,
        "capacity": resources_view(node.capacity),
        "used": resources_view(used),
        "free": resources_view(node.capacity - used),
        "portsInUse": sorted(_port_label(p) for p in ports),
        "subnet": lease.subnet if lease else None,
        "vtep": {"ip": lease.underlay_ip, "mac": lease.vtep_mac} if lease else None,
    }
    if extra:
        view.update(extra)
    return view
