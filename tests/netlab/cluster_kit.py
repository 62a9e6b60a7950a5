"""Real ``orion agent`` processes on the lab's hosts: one per host, inside its network namespace.

Each agent runs under ``ip netns exec <host>`` with DOCKER_HOST = that host's own engine, its
own data dir, and Raft, gossip and the API bound to the host's underlay address, so the
agents reach each other only over the lab's underlay, as on separate machines. The overlay
is on (the harness turns it off for loopback clusters). The test process, in the root
namespace, reaches every API through the underlay bridge.

Also here: reading a host's kernel (routes, FDB, neighbours, nft) and asking its DNS server
with dnspython from inside its namespace, and a loop of HTTP requests inside a container
whose every answer is timestamped as it arrives (for failure windows).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
from netlab_kit import IMAGE, Lab, LabHost, in_netns

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from harness import Cluster, Node  # noqa: E402 - the integration harness, found by path

# Each replica answers its hostname at once; its 10 MB file appears whole a moment later (written
# aside, then renamed), so writing it never delays the server its health check asks.
SERVE = "hostname > /www/index.html; (dd if=/dev/zero of=/www/.big bs=1M count=10 2>/dev/null && " \
        "mv /www/.big /www/big) & exec httpd -f -p 80 -h /www"


def lab_cluster(lab: Lab, names: tuple[str, ...] = ("a", "b", "c")) -> Cluster:
    hosts = [lab.hosts[n] for n in names]
    resolv = lab.workdir / "resolv.conf"
    resolv.write_text("")  # the lab has no outside: nothing to forward to
    (lab.workdir / "cluster").mkdir(exist_ok=True)
    return Cluster(root=lab.workdir / "cluster", docker_host=hosts[0].docker_host, size=len(hosts),
                   docker_hosts=[h.docker_host for h in hosts], ips=[str(h.underlay_ip) for h in hosts],
                   labels=[{"name": h.name} for h in hosts],
                   prefixes=[["ip", "netns", "exec", h.netns] for h in hosts],
                   extra_env={"ORION_NETWORK": "1", "ORION_DNS_RESOLV_CONF": str(resolv)})


@dataclass
class Wired:
    """The lab, its cluster, and which node runs on which host."""

    lab: Lab
    cluster: Cluster
    node_of: dict[str, Node] = field(default_factory=dict)  # host name -> node

    def host_of(self, node_id: str) -> LabHost:
        return next(self.lab.hosts[h] for h, n in self.node_of.items() if n.id == node_id)

    def api(self) -> Node:
        return next(n for n in self.cluster.live() if n.healthy())

    def tasks(self, service: str) -> list[dict]:
        return self.api().get(f"/tasks?service={service}").json()

    def running(self, service: str) -> list[dict]:
        """Running replicas with an overlay address, as their detail views (containerId)."""
        return [self.api().get(f"/tasks/{t['id']}").json() for t in self.tasks(service)
                if t["state"] == "running" and t["desired"] == "run" and t.get("ip")]

    def exec(self, host: str, container: str, script: str, timeout: float = 60) -> tuple[int, str]:
        c = self.lab.hosts[host].client()
        try:
            code, out = c.containers.get(container).exec_run(["timeout", str(int(timeout)), "sh", "-c", script])
        finally:
            c.close()
        return code, out.decode(errors="replace")

    def pid(self, host: str, container: str) -> int:
        c = self.lab.hosts[host].client()
        try:
            return int(c.api.inspect_container(container)["State"]["Pid"])
        finally:
            c.close()


def ask(host: LabHost, server: str, name: str, rdtype: str = "A", tcp: bool = False,
        timeout: float = 2) -> dns.message.Message:
    """A DNS question to ``server`` from inside ``host``'s namespace (dnspython). Over UDP a
    server that is not there is only noticed when ``timeout`` ends (the ICMP is not read)."""
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return in_netns(f"/run/netns/{host.netns}", lambda: send(query, server, timeout=timeout))


def a_records(answer: dns.message.Message) -> list[tuple[str, int]]:
    return sorted((rd.address, rrset.ttl) for rrset in answer.answer if rrset.rdtype == dns.rdatatype.A
                  for rd in rrset)


def now() -> float:
    """The clock a container's /proc/uptime reads (CLOCK_BOOTTIME, 10 ms steps): the request
    loop stamps its lines with it inside the container, so they can be compared with the test's
    own instants whatever delays the exec stream adds."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class RequestLoop:
    """``wget`` in a loop inside a container: one line per request ("ok NAME" / "fail WHY"), each
    stamped inside the container as the request ends (``now()``'s clock; ``read`` is a shell
    builtin, so stamping costs no process)."""

    def __init__(self, host: LabHost, container: str, url: str, timeout_s: int = 1) -> None:
        self._container = container
        self._pidfile = f"/tmp/request-loop-{id(self)}"
        script = (f"echo $$ > {self._pidfile}; while true; do "
                  f"if out=$(timeout {timeout_s} wget -qO- {url} 2>/tmp/rl-err); then r=\"ok $out\"; "
                  "else r=\"fail $(head -c 100 /tmp/rl-err | tr '\\n' ' ')\"; fi; "
                  "read t _ < /proc/uptime; echo \"$t $r\"; done")
        self._client = host.client()
        exec_id = self._client.api.exec_create(container, ["sh", "-c", script])["Id"]
        self._stream = self._client.api.exec_start(exec_id, stream=True)
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buf = b""
        try:
            for chunk in self._stream:
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    stamp, _, rest = line.decode(errors="replace").strip().partition(" ")
                    try:
                        self.lines.append((float(stamp), rest))
                    except ValueError:
                        continue  # not one of the loop's lines
        except Exception:  # noqa: BLE001 - the stream ends when the test closes it
            return

    def stop(self) -> None:
        """End the loop's shell (by the pid it wrote) and the stream."""
        try:
            self._client.containers.get(self._container).exec_run(
                ["sh", "-c", f"kill $(cat {self._pidfile}) && rm {self._pidfile}"])
        except Exception:  # noqa: BLE001 - the container may be gone already
            pass
        try:
            self._stream.close()
        except Exception:  # noqa: BLE001
            pass
        self._client.close()

    def since(self, t0: float) -> list[tuple[float, str]]:
        """The lines stamped at or after ``t0`` (a ``now()`` instant)."""
        return [(t, line) for t, line in self.lines if t >= t0]


def longest_failure(lines: list[tuple[float, str]]) -> tuple[float, int]:
    """(the longest time from a failure's first line to the next success, failures in all)."""
    longest, start, fails = 0.0, None, 0
    for t, line in lines:
        if line.startswith("fail"):
            fails += 1
            if start is None:
                start = t
        elif start is not None:
            longest, start = max(longest, t - start), None
    if start is not None and lines:
        longest = max(longest, lines[-1][0] - start)
    return longest, fails


def kernel_entries(host: LabHost) -> dict[str, str]:
    """What the datapath keeps on ``host``: routes, FDB and neighbours of orion.1."""
    return {"routes": host.sh("ip", "route", "show", "dev", "orion.1", check=False).stdout.strip(),
            "fdb": host.sh("bridge", "fdb", "show", "dev", "orion.1", check=False).stdout.strip(),
            "neigh": host.sh("ip", "neigh", "show", "dev", "orion.1", check=False).stdout.strip()}


def lb_table(host: LabHost) -> str:
    return host.sh("nft", "list", "table", "ip", "orion-lb", check=False).stdout


__all__ = ["IMAGE", "SERVE", "RequestLoop", "now", "Wired", "a_records", "ask", "in_netns", "kernel_entries",
           "lab_cluster", "lb_table", "longest_failure"]
