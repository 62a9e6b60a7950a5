"""The overlay's metrics: peers and serving endpoints read at scrape time, DNS queries counted.

* ``orion_network_peers`` — other hosts' leases this node's datapath routes to (a gauge read
  from the replica at scrape, so it never drifts from the leases);
* ``orion_service_endpoints{service}`` — replicas that serve each service now (running, with
  an overlay address, passing their check, on a node not declared dead): what DNS answers and
  the load balancer balances over, from the same view;
* ``orion_dns_queries_total{result}`` — queries this node's DNS server ended, by outcome
  (every outcome created at zero, so a rate over a quiet server is 0, not "no data").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric

from orion.network.discovery import Outcome


class NetworkCollector:
    """Reads the two gauges at scrape time; a source that fails is left out of that scrape."""

    def __init__(self, peers: Callable[[], int | None], endpoints: Callable[[], Mapping[str, int]]) -> None:
        self._peers = peers
        self._endpoints = endpoints

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        try:
            peers = self._peers()
        except Exception:  # noqa: BLE001 - the replica may be closing: skip this scrape's value
            peers = None
        if peers is not None:
            yield GaugeMetricFamily("orion_network_peers", "Other hosts' subnet leases this node routes to.",
                                    value=peers)
        family = GaugeMetricFamily("orion_service_endpoints", "Replicas serving each service now (what DNS "
                                   "answers and the load balancer balances over).", labels=["service"])
        try:
            counts = self._endpoints()
        except Exception:  # noqa: BLE001
            counts = {}
        for service, count in sorted(counts.items()):
            family.add_metric([service], count)
        yield family


class NetworkMetrics:
    def __init__(self, registry: CollectorRegistry, peers: Callable[[], int | None],
                 endpoints: Callable[[], Mapping[str, int]]) -> None:
        registry.register(NetworkCollector(peers, endpoints))
        self.dns_queries = Counter("orion_dns_queries", "DNS queries this node's server ended, by outcome.",
                                   ["result"], registry=registry)
        for outcome in Outcome:
            self.dns_queries.labels(str(outcome))

    def dns_query(self, outcome: Outcome) -> None:
        """The DNS server's ``on_query`` hook."""
        self.dns_queries.labels(str(outcome)).inc()
