"""What Orion's DNS answers, as a pure function of a view, a question and an RNG.

The zone is ``orion.``:

* ``<service>.service.orion`` A — the VIP in vip mode; in dnsrr mode the serving
  replicas' overlay addresses (running, passing their health check or without one,
  on a node gossip has not declared dead), shuffled so clients that take the first
  address spread over all of them.
* ``<service>.service.orion`` SRV — Consul's convention (``<service>.service.consul``
  SRV: one record per instance, its port, its node as target), adapted: in dnsrr mode
  one record per serving replica with a port, target ``<task>.task.orion``; in vip
  mode one record per service port, target ``<service>.service.orion`` (the VIP), so
  SRV clients go through the load balancer like everyone else. The targets' A records
  ride in the additional section so a client needs no second query. Swarm's embedded
  DNS has no SRV for services, and the RFC 2782 form (``_web._tcp.service.orion``)
  is not served: one spelling is enough.
* ``<task>.task.orion`` A — a running task's address on a live node; ``<node>.node.orion``
  A — the node's overlay gateway (answered even for a dead node: it names a host,
  not a replica to send traffic to).

Every answer has TTL 5 s (CoreDNS's default; Docker's 600 s outlives a task move by
minutes). A name in the zone that does not exist is NXDOMAIN and an existing name
without a record of the asked type is NOERROR with no answers (NODATA; RFC 2308);
both carry the zone's SOA in the authority section with minimum 5, so negative
answers are cached no longer than positive ones. Empty non-terminals
(``service.orion``) exist (RFC 8020). Anything outside the zone is :class:`Forward`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from orion.network.view import DiscoveryView, Service

ZONE = "orion"
# CoreDNS's kubernetes plugin answers with 5 s; short enough that a client re-asks
# soon after a replica moves, long enough to absorb a burst of lookups.
TTL = 5
# RFC 2308: the SOA minimum (and the SOA record's own TTL) bounds negative caching.
NEGATIVE_TTL = 5
_KINDS = ("service", "task", "node")


class Outcome(StrEnum):
    """How a query ended; the metrics hook counts queries by this."""

    ANSWER = "answer"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    FORWARDED = "forwarded"
    SERVFAIL = "servfail"
    # Not a question we answer: garbage (FORMERR), not a QUERY (NOTIMP), a zone name in a
    # class other than IN (REFUSED).
    REFUSED = "refused"


@dataclass(frozen=True)
class A:
    name: str  # absolute, lower case, with the trailing dot
    ip: str
    ttl: int = TTL


@dataclass(frozen=True)
class Srv:
    name: str
    port: int
    target: str
    priority: int = 1
    weight: int = 1
    ttl: int = TTL


@dataclass(frozen=True)
class Soa:
    """The zone's SOA; the server names are fixed, only ``serial`` follows the view."""

    serial: int
    name: str = ZONE + "."
    mname: str = "ns." + ZONE + "."
    rname: str = "hostmaster." + ZONE + "."
    refresh: int = 60
    retry: int = 10
    expire: int = 600
    minimum: int = NEGATIVE_TTL
    ttl: int = NEGATIVE_TTL


Record = A | Srv | Soa


@dataclass(frozen=True)
class Answer:
    """Authoritative reply from the zone. ``outcome`` is ANSWER, NXDOMAIN or NODATA."""

    outcome: Outcome
    answers: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()


@dataclass(frozen=True)
class Forward:
    """The name is outside ``orion.``: ask the host's resolvers."""

    name: str


Resolution = Answer | Forward


def in_zone(name: str) -> bool:
    labels = _labels(name)
    return bool(labels) and labels[-1] == ZONE


def resolve(view: DiscoveryView, name: str, qtype: str, rng: random.Random) -> Resolution:
    """Answer ``qtype`` ("A", "SRV", "AAAA", ...) for ``name`` from ``view``."""
    labels = _labels(name)
    if not labels or labels[-1] != ZONE:
        return Forward(name)
    fqdn = ".".join(labels) + "."
    qtype = qtype.upper()
    soa = Soa(serial=view.serial)
    if len(labels) == 1:  # the apex: its SOA, nothing else
        return Answer(Outcome.ANSWER, (soa,)) if qtype in ("SOA", "ANY") else _nodata(soa)
    if len(labels) == 2 and labels[0] in _KINDS:  # service.orion and friends: empty non-terminals
        return _nodata(soa)
    if len(labels) != 3 or labels[1] not in _KINDS:
        return _nxdomain(soa)
    label, kind = labels[0], labels[1]
    if kind == "service":
        service = view.services_by_name.get(label)
        if service is None:
            return _nxdomain(soa)
        return _service(view, service, fqdn, qtype, rng, soa)
    if kind == "task":
        endpoint = view.endpoints_by_task.get(label)
        if endpoint is None:
            return _nxdomain(soa)
        ip = endpoint.ip if view.is_reachable(endpoint) else None
    else:
        node = view.nodes_by_id.get(label)
        if node is None:
            return _nxdomain(soa)
        ip = node.address
    if ip is None or qtype not in ("A", "ANY"):
        return _nodata(soa)
    return Answer(Outcome.ANSWER, (A(fqdn, ip),))


def task_name(task_id: str) -> str:
    return f"{task_id.lower()}.task.{ZONE}."


def service_name(service: str) -> str:
    return f"{service.lower()}.service.{ZONE}."


def _service(view: DiscoveryView, service: Service, fqdn: str, qtype: str, rng: random.Random,
             soa: Soa) -> Answer:
    serving = view.serving(service.name)
    if qtype in ("A", "ANY"):
        if service.mode == "vip":
            assert service.vip is not None  # Service checks it
            return Answer(Outcome.ANSWER, (A(fqdn, service.vip),))
        records = [A(fqdn, e.ip) for e in serving if e.ip is not None]
        rng.shuffle(records)
        return Answer(Outcome.ANSWER, tuple(records)) if records else _nodata(soa)
    if qtype == "SRV":
        if service.mode == "vip":
            assert service.vip is not None
            ports = sorted({p.target for p in service.ports})
            answers = [Srv(fqdn, port, fqdn) for port in ports]
            additional: list[Record] = [A(fqdn, service.vip)] if answers else []
        else:
            with_port = [e for e in serving if e.port is not None and e.ip is not None]
            rng.shuffle(with_port)
            answers = [Srv(fqdn, e.port, task_name(e.task_id)) for e in with_port if e.port is not None]
            additional = [A(task_name(e.task_id), e.ip) for e in with_port if e.ip is not None]
        if not answers:
            return _nodata(soa)
        return Answer(Outcome.ANSWER, tuple(answers), tuple(additional))
    return _nodata(soa)


def _nxdomain(soa: Soa) -> Answer:
    return Answer(Outcome.NXDOMAIN, authority=(soa,))


def _nodata(soa: Soa) -> Answer:
    return Answer(Outcome.NODATA, authority=(soa,))


def _labels(name: str) -> list[str]:
    stripped = name.strip().rstrip(".").lower()
    return stripped.split(".") if stripped else []
