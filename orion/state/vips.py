"""Services' virtual IPs and published ports inside the replicated state machine.

Part of the network registry (``network.py``), split out because it follows the service
commands rather than the nodes. The machine's ``apply`` calls it around ``PutService``,
``RollbackService``, ``DeleteService`` and ``ApplyDeploymentPlan`` (an auto-revert declares a
spec too), through the registry: :meth:`VipRegistry.check` before one is applied refuses a spec
that publishes a port another service publishes (the ingress opens each port on every host,
so two owners cannot share it) or that needs a VIP when none is left; :meth:`VipRegistry.follow`
after one applied brings the VIPs in line with the services, in one deterministic pass: a
VIP is released when its service is gone or no longer wants one, then every service that
wants one and has none gets the next of the pool (``pool.py``: never-used addresses first,
then the one released longest ago), in name order.

A service wants a VIP in ``vip`` mode on the overlay; an opted-out service (``overlay:
false``) has no overlay address for a VIP to lead to. Nothing is allocated before the
network's settings are set: ``InitNetwork`` then gives every such service one at once.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

from orion.domain.network import NetworkSettings, published_ports
from orion.domain.service import ServiceSpec
from orion.state.commands import ApplyDeploymentPlan, Command, DeleteService, PutService, RollbackService
from orion.state.pool import Pool
from orion.state.results import RefusalKind, Refused
from orion.state.services import ServiceRegistry, rollback_target

# The commands after which the VIPs may have to follow the services.
_SERVICE_CHANGES = (PutService, RollbackService, DeleteService, ApplyDeploymentPlan)


def wants_vip(spec: ServiceSpec) -> bool:
    return spec.endpoint_mode == "vip" and spec.overlay


class VipRegistry:
    """Service name -> VIP (an offset into the service CIDR); changed only by :meth:`follow`,
    :meth:`sync` and ``start`` (the network's settings committed)."""

    def __init__(self, services: ServiceRegistry, current: Callable[[], bool]) -> None:
        """``current``: every node that may read the log reads the network's format (else the
        checks and allocations below would differ between old and new replicas). Asked only
        for the service commands: it reads every node."""
        self._services, self._current = services, current
        self._settings: NetworkSettings | None = None
        self._assigned: dict[str, int] = {}
        self._pool = Pool(1, 1)

    def start(self, settings: NetworkSettings) -> None:
        self._settings = settings
        self._pool = Pool(1, settings.vips + 1)
        self.sync()

    def vip(self, name: str) -> str | None:
        offset = self._assigned.get(name)
        return None if offset is None or self._settings is None else self._settings.vip(offset)

    def all(self) -> dict[str, str]:
        return {name: self.vip(name) or "" for name in sorted(self._assigned)}

    # -- following the service commands -----------------------------------------------------
    def check(self, cmd: Command) -> Refused | None:
        """Why the spec ``cmd`` declares cannot be declared, or None (see the module docstring)."""
        spec = self._declared(cmd)
        if spec is None or not self._current():
            return None
        mine = published_ports(spec.publish)
        for other in self._services.all():
            taken = sorted(mine & published_ports(other.spec.publish)) if other.name != spec.name else []
            if taken:
                port, proto = taken[0]
                return Refused(RefusalKind.PORT_TAKEN, f"published port {port}/{proto} is already published by "
                                                       f"service {other.name}; a port is opened on every host, so "
                                                       "one service owns it")
        if (self._settings is not None and wants_vip(spec) and spec.name not in self._assigned
                and self._pool.peek() is None):
            return Refused(RefusalKind.EXHAUSTED, f"every VIP of {self._settings.service_cidr} is taken; delete a "
                                                  "service, or declare this one with endpointMode dnsrr")
        return None

    def follow(self, cmd: Command) -> None:
        """``cmd`` applied: if it may have changed the services, bring the VIPs in line."""
        if isinstance(cmd, _SERVICE_CHANGES) and self._current():
            self.sync()

    def _declared(self, cmd: Command) -> ServiceSpec | None:
        """The spec ``cmd`` would declare, when it declares one by itself."""
        if isinstance(cmd, PutService):
            return cmd.spec
        if not isinstance(cmd, RollbackService):
            return None
        record = self._services.get(cmd.name)
        target = rollback_target(record, cmd.version) if record is not None else None
        return None if target is None or isinstance(target, Refused) else target.spec

    def sync(self) -> None:
        """Release the VIPs no service wants any more, then give one to each service that wants
        one and has none, in name order (deterministic: every replica runs the same pass)."""
        if self._settings is None:
            return
        records = {r.name: r for r in self._services.all()}
        for name in sorted(self._assigned):
            record = records.get(name)
            if record is None or not wants_vip(record.spec):
                self._pool.release(self._assigned.pop(name))
        for name, record in sorted(records.items()):
            if wants_vip(record.spec) and name not in self._assigned:
                offset = self._pool.take()
                if offset is None:
                    return  # used up (a revert declared more than the checks could refuse): none until one is freed
                self._assigned[name] = offset

    # -- snapshots ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"assigned": self.all(), "pool": self._pool.snapshot()}

    def restore(self, settings: NetworkSettings, data: dict[str, Any]) -> None:
        self._settings = settings
        self._pool = Pool.restore(1, settings.vips + 1, data.get("pool") or {})
        base = int(settings.service_network.network_address)
        self._assigned = {str(name): int(IPv4Address(vip)) - base
                          for name, vip in dict(data.get("assigned") or {}).items()}
