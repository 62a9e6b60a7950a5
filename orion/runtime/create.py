"""What a task's container is created with: the engine's arguments, as one pure function.

``create_args`` turns a task (its spec and placement) and what this node allows (:class:`NodePolicy`)
into the keyword arguments of the SDK's ``create_host_config`` and ``create_container``; the
adapter (``docker.py``) only makes the calls. Every setting a task can ask for is mapped here, in
one place, so what reaches ``docker inspect`` is read (and tested) without an engine. A device or
privilege the node does not allow (its config changed since the task was placed) is refused here,
as an undeclared host volume is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orion.domain.model import Task
from orion.runtime import (
    LABEL_GENERATION,
    LABEL_MANAGED,
    LABEL_NETWORK,
    LABEL_NODE,
    LABEL_TASK,
    NetworkAttachment,
    RuntimeFailure,
    StartExtras,
    container_name,
)
from orion.runtime.inspect import Mount, mounts_for


@dataclass(frozen=True)
class NodePolicy:
    """What this node offers its tasks, from its config: host volumes (name -> path), the host
    devices it hands out, whether it runs privileged containers, and whether a task without an
    ``init`` of its own runs the engine's init as PID 1."""

    host_volumes: Mapping[str, str] = field(default_factory=dict)
    host_devices: frozenset[str] = frozenset()
    allow_privileged: bool = False
    init: bool = True


def create_args(task: Task, node_id: str, policy: NodePolicy,
                extras: StartExtras | None = None,
                network: NetworkAttachment | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``create_host_config`` kwargs, ``create_container`` kwargs without ``host_config``).
    ``extras``: what the node prepared (docs/secrets.md): secret and config files bind-mounted
    read-only, secrets as environment variables. ``network``: the overlay the container joins as its
    only network, with Orion's resolver (orion/node/network_views.py decides it), or None for the
    engine's default bridge."""
    spec, box = task.spec, task.spec.container
    extras = extras or StartExtras()
    refused = sorted(box.host_devices - policy.host_devices)
    if refused:
        raise RuntimeFailure(f"device {', '.join(refused)} is not handed out by node {node_id} "
                             "(host_devices in its config)")
    if box.privileged and not policy.allow_privileged:
        raise RuntimeFailure(f"node {node_id} does not run privileged containers (allow_privileged in its config)")
    init = box.init if box.init is not None else policy.init
    host: dict[str, Any] = {
        "mem_limit": spec.memory or None,
        # Same as the limit: no swap beyond what the scheduler reserved.
        "memswap_limit": spec.memory or None,
        "nano_cpus": spec.cpu_millis * 1_000_000 if spec.cpu_millis > 0 else None,
        "cpu_shares": box.cpu_shares or None,
        "port_bindings": {p.key: p.host_port for p in spec.ports} or None,
        # Orion decides restarts (module doc of docker.py).
        "restart_policy": {"Name": "no"},
        # The engine's tiny init as PID 1 forwards signals and reaps zombies (docker.py says why it
        # is the default); a task may say otherwise. False is sent as such, None leaves the daemon's.
        "init": init if box.init is not None else (init or None),
        "mounts": mounts_for(spec.volumes, policy.host_volumes, node_id) + [
            Mount(target, source, type="bind", read_only=True) for source, target in extras.binds] or None,
        "tmpfs": {t.target: t.options() for t in box.tmpfs} or None,
        "cap_add": list(box.cap_add) or None,
        "cap_drop": list(box.cap_drop) or None,
        "privileged": box.privileged,
        "devices": [f"{d.source}:{d.target}:{d.permissions}" for d in box.devices] or None,
        "read_only": box.read_only or None,
        "sysctls": dict(box.sysctls) or None,
        "ulimits": [{"name": u.name, "soft": u.soft, "hard": u.hard} for u in box.ulimits] or None,
        "shm_size": box.shm_size or None,
        "extra_hosts": [f"{h}:{ip}" for h, ip in box.extra_hosts] or None,
        "log_config": ({"type": box.logging.driver, "config": dict(box.logging.options)}
                       if box.logging is not None else None),
        "network_mode": network.network if network is not None else None,
        "dns": list(network.dns) if network is not None else None,
        "dns_search": list(network.dns_search) if network is not None else None,
    }
    # The task's own labels first: Orion's come last and win (the API refuses orion.* anyway).
    labels = {**dict(box.labels), LABEL_TASK: task.id, LABEL_NODE: node_id,
              LABEL_GENERATION: str(task.generation), LABEL_MANAGED: "1",
              **({LABEL_NETWORK: network.network} if network is not None else {})}
    create: dict[str, Any] = {
        "image": spec.image,
        "command": list(spec.command) if spec.command is not None else None,
        # () clears the image's entrypoint: the engine's word for that is [""].
        "entrypoint": None if box.entrypoint is None else (list(box.entrypoint) or [""]),
        "name": container_name(task.id, task.generation),
        "labels": labels,
        "environment": {**dict(spec.env), **dict(extras.env)} or None,
        "ports": [(p.container_port, p.protocol) for p in spec.ports] or None,
        "user": box.user or None,
        "working_dir": box.working_dir or None,
        "hostname": box.hostname or None,
        "stop_signal": box.stop_signal or None,
        # Whole seconds, as the engine keeps it; the node's own stop reads it back (inspect.py).
        "stop_timeout": math.ceil(box.stop_grace_period) if box.stop_grace_period is not None else None,
        "detach": True,
    }
    if network is not None:  # the SDK's create_networking_config, as the plain value it makes
        create["networking_config"] = {"EndpointsConfig": {network.network: {}}}
    return host, create
