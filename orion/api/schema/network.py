"""How a service is reached, in request bodies: ``endpointMode``, ``publish`` and ``overlay``
(docs/network-leases.md, docs/service-discovery.md).

``publish`` is Swarm's ingress: ``[{"published": 8080, "target": 80, "protocol": "tcp"}]``
opens 8080 on every host and forwards each connection to a serving replica's port 80.
What a body alone cannot tell is checked where the answer is known: a published port that
is one of the agent's own (its API, gossip or Raft port), DNS (53), VXLAN (the network's
port) or SSH (22) is refused by the services route (``reserved_problem``), which knows the
agent's ports and the cluster's VXLAN port; one another service publishes is refused by the
state machine (409, naming that service).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from orion.api.schema import fields as f
from orion.api.schema.problems import Body, Problem, ValidationError, kind_of
from orion.domain.network import ENDPOINT_MODES, PROTOCOLS, Publish

# Ports no service may publish on every host, whatever the cluster: DNS (the overlay's
# resolver answers on the bridge gateway and the host's own may run on 53) and SSH (an
# ingress rule would take the operator's way in).
ALWAYS_RESERVED = {53: "DNS", 22: "SSH"}

_PORT = f.int_range(1, 65535)


class PublishRequest(Body):
    """``{"published": 8080, "target": 80, "protocol": "tcp"}``."""

    EXAMPLE = '{"published": 8080, "target": 80}'
    ALIASES = {"port": "published", "hostPort": "published", "containerPort": "target", "targetPort": "target",
               "proto": "protocol", "publishedPort": "published"}

    published: _PORT
    target: _PORT
    protocol: f.one_of(PROTOCOLS) = "tcp"

    def to_publish(self) -> Publish:
        return Publish(self.published, self.target, self.protocol)


def _publishes(value: Any) -> Any:
    if value is not None and not isinstance(value, list):
        raise Problem(f"must be a list like [{PublishRequest.EXAMPLE}], not {kind_of(value)}")
    return value


Publishes = Annotated[tuple[PublishRequest, ...] | None, BeforeValidator(_publishes),
                      Field(description="ports opened on every host, each forwarded to a serving replica")]
EndpointMode = f.one_of(ENDPOINT_MODES)


def to_publish(requests: tuple[PublishRequest, ...] | None, overlay: bool) -> tuple[Publish, ...]:
    """The published ports, each port and protocol once; none for a service off the overlay
    (the ingress forwards to replicas' overlay addresses: it has none)."""
    publish = tuple(r.to_publish() for r in requests or ())
    if publish and not overlay:
        raise ValidationError("publish", "needs the overlay (the ingress forwards to replicas' overlay addresses); "
                              "remove publish or set overlay to true")
    seen: dict[tuple[int, str], int] = {}
    for i, p in enumerate(publish):
        key = (p.published, p.protocol)
        if key in seen:
            raise ValidationError(f"publish[{i}].published", f"{p.published}/{p.protocol} is already published "
                                                              f"by publish[{seen[key]}]")
        seen[key] = i
    return publish


def reserved_problem(publish: tuple[Publish, ...], own: Collection[int], vxlan_port: int) -> ValidationError | None:
    """A published port that would take one the cluster itself needs on every host."""
    reserved = {**ALWAYS_RESERVED, vxlan_port: "the overlay's VXLAN port"}
    reserved |= {port: "an Orion agent's own API, gossip or Raft port" for port in own}
    for i, p in enumerate(publish):
        if p.published in reserved:
            return ValidationError(f"publish[{i}].published",
                                   f"{p.published} is reserved ({reserved[p.published]}); publish another port")
    return None
