"""The same convergence figures for Docker Swarm (dnsrr), on the netlab's own engines.

    .venv/bin/python bench/dns_convergence.py --swarm       # runs this beside Orion's figures

A fresh lab (tests/netlab/netlab_kit.py: three namespaces, each with its own dockerd; never the
shared engine) made a swarm: A the manager, B and C workers, each advertising its underlay
address. An attachable overlay network and a service ``conv`` of three replicas in **dnsrr**
mode: Swarm's VIP mode balances with IPVS, which this kernel lacks, so only DNS round robin can
be compared. A client container on A asks Docker's embedded DNS (127.0.0.11, in the client's
network namespace, with dnspython) for ``conv``.

Each repetition kills one replica's container off A (``docker kill``, as for Orion) and times
**dies -> DNS** (the kill to the name no longer answering its address) and **runs -> DNS** (the
replacement's container starting, by its engine's ``State.StartedAt``, to the name answering its
address). Swarm restarts a failed task after its restart delay (5 s by default), elsewhere or on
the same node as its scheduler decides; that delay is not in either figure.
"""

from __future__ import annotations

import time

import dns.message
import dns.query
import dns.rdatatype
from cluster_kit import in_netns
from dns_convergence import _rfc3339, summary, until
from docker.types import EndpointSpec
from netlab_kit import IMAGE, Lab

SERVE = "hostname > /www/index.html; exec httpd -f -p 80 -h /www"


def names(pid: int) -> set[str]:
    """What the embedded DNS of the container ``pid`` answers for ``conv``."""
    query = dns.message.make_query("conv", "A")
    reply = in_netns(f"/proc/{pid}/ns/net", lambda: dns.query.udp(query, "127.0.0.11", timeout=0.5))
    return {rd.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset}


def running(service) -> dict[str, dict]:  # noqa: ANN001 - docker's Service model
    """Running tasks by id: node, container, overlay address."""
    out = {}
    for t in service.tasks(filters={"desired-state": "running"}):
        status = t["Status"]
        attach = t.get("NetworksAttachments") or []
        if status["State"] != "running" or not attach or not status.get("ContainerStatus", {}).get("ContainerID"):
            continue
        out[t["ID"]] = {"node": t["NodeID"], "container": status["ContainerStatus"]["ContainerID"],
                        "ip": attach[0]["Addresses"][0].split("/")[0]}
    return out


def swarm(reps: int) -> dict:
    lab = Lab().up()
    runs: dict[str, list[float]] = {"dies_dns": [], "runs_dns": []}
    try:
        hosts = {n: lab.hosts[n] for n in "abc"}
        clients = {n: h.client() for n, h in hosts.items()}
        a = clients["a"]
        t0 = time.monotonic()
        a.swarm.init(advertise_addr=str(hosts["a"].underlay_ip), listen_addr=f"{hosts['a'].underlay_ip}:2377")
        token = a.swarm.attrs["JoinTokens"]["Worker"]
        for n in "bc":
            clients[n].swarm.join(remote_addrs=[f"{hosts['a'].underlay_ip}:2377"], join_token=token,
                                  advertise_addr=str(hosts[n].underlay_ip), listen_addr=f"{hosts[n].underlay_ip}:2377")
        by_addr = {str(h.underlay_ip): n for n, h in hosts.items()}
        node_host = {node.id: by_addr[node.attrs["Status"]["Addr"]] for node in a.nodes.list()}
        a.networks.create("conv", driver="overlay", attachable=True)
        service = a.services.create(IMAGE, ["sh", "-c", SERVE], name="conv", networks=["conv"],
                                    mode={"Replicated": {"Replicas": 3}}, endpoint_spec=EndpointSpec(mode="dnsrr"))
        until(lambda: len(running(service)) == 3, 120, "three replicas running")
        client = a.containers.run(IMAGE, ["sleep", "3600"], network="conv", detach=True, name="conv-client")
        pid = a.api.inspect_container(client.id)["State"]["Pid"]
        until(lambda: len(names(pid)) == 3, 60, "three addresses in the client's DNS")
        up_s = time.monotonic() - t0
        for rep in range(reps):
            tasks = running(service)
            victim_id, victim = next((i, t) for i, t in sorted(tasks.items()) if node_host[t["node"]] != "a")
            host = node_host[victim["node"]]
            killed = time.time()
            clients[host].api.kill(victim["container"])
            runs["dies_dns"].append(until(lambda v=victim: v["ip"] not in names(pid), 60, "the dead task out of DNS")
                                    - killed)
            new: dict[str, dict] = {}
            until(lambda t=tasks, new=new: new.update({i: x for i, x in running(service).items() if i not in t})
                  or new, 120, "the replacement running")
            task = next(iter(new.values()))
            started = _rfc3339(clients[node_host[task["node"]]].api.inspect_container(task["container"])
                               ["State"]["StartedAt"])
            seen = until(lambda t=task: t["ip"] in names(pid), 60, "the replacement in DNS")
            runs["runs_dns"].append(seen - started)
            print(f"swarm rep {rep + 1} ({host}): " + ", ".join(f"{k} {v[-1] * 1000:.0f} ms" for k, v in runs.items()),
                  flush=True)
        for c in clients.values():
            c.close()
    finally:
        lab.down()
    return {"runs": {k: summary(v) for k, v in runs.items()}, "bring_up_s": round(up_s, 1), "mode": "dnsrr",
            "vip": "not measured: Swarm's VIP mode needs IPVS, which this kernel lacks",
            "engines": "Docker 20.10 (Debian's), the three lab engines made one swarm"}


if __name__ == "__main__":
    import json
    import sys
    print(json.dumps(swarm(int(sys.argv[1]) if len(sys.argv) > 1 else 5), indent=2))
    sys.exit(0)
