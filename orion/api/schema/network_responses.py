"""What the overlay's routes answer (``orion/api/network.py``), as types: ``GET /cluster/network``
and ``GET /services/<name>/endpoints`` (beside ``responses.py``, which holds the rest).
"""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict

from orion.api.schema.responses import TaskState


class NetworkSettingsView(TypedDict):
    cidr: str
    hostPrefix: int
    vni: int
    port: int
    mtu: int
    serviceCidr: str


class Lease(TypedDict):
    """One host's subnet: ``host`` is its Docker engine's ID, ``holders`` the agents on it."""

    index: int
    subnet: str
    host: str
    holders: list[str]
    underlayIp: str
    vtepMac: str
    updatedIndex: int


class Network(TypedDict):
    """The settings fixed at bootstrap (null before), every lease, and each service's VIP."""

    settings: NetworkSettingsView | None
    leases: list[Lease]
    vips: dict[str, str]


class EndpointPort(TypedDict):
    target: int
    protocol: Literal["tcp", "udp"]
    published: int | None


class Endpoint(TypedDict):
    """A replica and where it answers; ``serving``: it receives the service's traffic now."""

    task: str
    slot: int
    nodeId: str | None
    ip: str | None
    ports: list[EndpointPort]
    state: TaskState
    health: str
    serving: bool


class Endpoints(TypedDict):
    service: str
    endpointMode: Literal["vip", "dnsrr"]
    vip: str | None
    endpoints: list[Endpoint]
