"""The same two failure measures for Docker Swarm mode, on the same machine and image.

    .venv/bin/python bench/swarm_compare.py [--leader-trials 20] [--node-trials 10]
                                            [--orion bench/results/failover.json]
                                            [--out bench/results/swarm_compare.json]

Three private engines (own sockets, data roots, bridges 172.31.23x.1/24) form
a swarm of three managers; each advertises and listens on its own bridge's
gateway address (all on this host, all created by us), since one host's
127.0.0.1 cannot tell three engines apart.

* manager leader SIGKILL (its dockerd and everything under it) -> the swarm
  accepts a write again (``docker service update`` via another manager, one
  started every 20 ms on its own thread, as for Orion: ``bench/probe.py``);
* node SIGKILL -> the one-replica service (``--publish mode=host``, same
  port, same image) runs and answers again on another node.

Printed side by side with Orion's figures from ``--orion`` as ratios
(swarm / orion: above 1 means Orion is faster). Bounded by deadlines; every
engine is torn down at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import docker
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from engines import Engines  # noqa: E402
from harness import free_ports  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from failover_bench import summary  # noqa: E402
from probe import first_ack_after  # noqa: E402

IMAGE = "orion/busybox:latest"


def addr(engine) -> str:  # noqa: ANN001
    return engine.cidr.split("/")[0]


def client(engine, timeout: float = 5) -> docker.DockerClient:  # noqa: ANN001
    return docker.DockerClient(base_url=engine.host, timeout=timeout)


def form_swarm(engines: Engines) -> None:
    first = client(engines[0])
    first.swarm.init(advertise_addr=addr(engines[0]), listen_addr=f"{addr(engines[0])}:2377",
                     data_path_addr=addr(engines[0]), force_new_cluster=False)
    token = first.swarm.attrs["JoinTokens"]["Manager"]
    for engine in engines.items[1:]:
        client(engine, 60).swarm.join(remote_addrs=[f"{addr(engines[0])}:2377"], join_token=token,
                                      advertise_addr=addr(engine), listen_addr=f"{addr(engine)}:2377",
                                      data_path_addr=addr(engine))
    wait(lambda: len([n for n in first.nodes.list() if n.attrs["Status"]["State"] == "ready"]) == 3, 60,
         "three ready swarm nodes")


def ready_nodes(engine) -> int:  # noqa: ANN001
    return len([x for x in client(engine).nodes.list() if x.attrs["Status"]["State"] == "ready"])


def wait(predicate, timeout: float, what: str, step: float = 0.1):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - the swarm is changing under us
            value = None
        if value:
            return value
        time.sleep(step)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def leader_engine(engines: Engines):  # noqa: ANN201
    for engine in engines.items:
        if not engine.alive():
            continue
        try:
            info = client(engine).info()
        except Exception:  # noqa: BLE001
            continue
        node_id = info["Swarm"]["NodeID"]
        for node in client(engine).nodes.list():
            if node.attrs.get("ManagerStatus", {}).get("Leader"):
                name = node.id
                return next((e for e in engines.items if e.alive() and client(e).info()["Swarm"]["NodeID"] == name),
                            None) if name != node_id else engine
    return None


def leader_failover(engines: Engines, trials: int) -> list[float]:
    results = []
    probe = client(engines[0]).services.create(IMAGE, name="bench-write",
                                               mode=docker.types.ServiceMode("replicated", 0))
    for trial in range(trials):
        leader = wait(lambda: leader_engine(engines), 60, "a swarm leader")
        other = next(e for e in engines.items if e is not leader and e.alive())
        counter = iter(range(1, 10**9))

        def write(other=other, counter=counter) -> bool:
            c = client(other, 5)
            try:
                c.services.get(probe.id).update(labels={"bench": str(next(counter))})
            finally:
                c.close()
            return True

        t0 = time.monotonic()
        leader.kill()
        results.append(first_ack_after(write, t0, deadline=60))
        print(f"swarm leader failover trial {trial + 1}: {results[-1]:.3f}s", flush=True)
        leader.start()
        wait(lambda other=other: ready_nodes(other) == 3, 90, "the swarm whole again")
        time.sleep(1.0)
    client(engines[0]).services.get(probe.id).remove()
    return results


def answers(port: int) -> bool:
    try:
        return "hello from orion" in requests.get(f"http://127.0.0.1:{port}/", timeout=1).text
    except requests.RequestException:
        return False


def node_reschedule(engines: Engines, trials: int) -> list[float]:
    results = []
    for trial in range(trials):
        manager = wait(lambda: leader_engine(engines), 60, "a swarm leader")
        leader_node = client(manager).info()["Swarm"]["NodeID"]
        (port,) = free_ports(1)
        endpoint = docker.types.EndpointSpec(ports={port: (80, "tcp", "host")})
        # Kept off the leader: this measures node loss, not a manager failover on top.
        service = client(manager).services.create(IMAGE, name=f"bench-web-{trial}", endpoint_spec=endpoint,
                                                  constraints=[f"node.id!={leader_node}"])
        wait(lambda port=port: answers(port), 60, "the service answering")
        node_id = [t for t in service.tasks() if t["Status"]["State"] == "running"][0]["NodeID"]
        victim = next(e for e in engines.items if client(e).info()["Swarm"]["NodeID"] == node_id)
        t0 = time.monotonic()
        victim.kill()
        wait(lambda port=port: answers(port), 120, "the service answering on another node", step=0.05)
        results.append(time.monotonic() - t0)
        print(f"swarm node kill trial {trial + 1}: answering after {results[-1]:.2f}s", flush=True)
        service.remove()
        victim.start()
        wait(lambda manager=manager: ready_nodes(manager) == 3, 90, "the swarm whole again")
        time.sleep(1.0)
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leader-trials", type=int, default=20)
    ap.add_argument("--node-trials", type=int, default=10)
    ap.add_argument("--orion", default="bench/results/failover.json")
    ap.add_argument("--out", default="bench/results/swarm_compare.json")
    ap.add_argument("--leader-values", help="JSON list of leader-failover seconds measured before "
                    "(skips that phase, e.g. after a later phase failed)")
    ap.add_argument("--compare-only", action="store_true",
                    help="measure nothing: recompute the side-by-side from --out and --orion")
    args = ap.parse_args()
    if args.compare_only:
        out = json.loads(Path(args.out).read_text())
        write(out, args)
        return
    engines = Engines(3, Path("/run/orion-swarm"), Path("/var/lib/orion-swarm"), "orionsw", 230)
    out: dict = {}
    try:
        engines.start()
        form_swarm(engines)
        leader = (json.loads(Path(args.leader_values).read_text()) if args.leader_values
                  else leader_failover(engines, args.leader_trials))
        out["swarm_leader_sigkill_to_write_s"] = summary(leader)
        out["swarm_node_sigkill_to_replacement_answering_s"] = summary(node_reschedule(engines, args.node_trials))
    finally:
        for engine in engines.items:
            try:
                client(engine, 10).swarm.leave(force=True)
            except Exception:  # noqa: BLE001
                pass
        engines.destroy()
    write(out, args)


def write(out: dict, args: argparse.Namespace) -> None:
    orion_path = Path(args.orion)
    if orion_path.exists():
        orion = json.loads(orion_path.read_text())
        pairs = {"leader_failover": ("leader_sigkill_to_write_s", "swarm_leader_sigkill_to_write_s"),
                 "node_reschedule": ("node_sigkill_to_replacement_answering_s",
                                     "swarm_node_sigkill_to_replacement_answering_s")}
        out["side_by_side"] = {
            name: {q: {"orion": orion[o][q], "swarm": out[s][q], "swarm_over_orion": round(out[s][q] / orion[o][q], 2)}
                   for q in ("p50", "p99")}
            for name, (o, s) in pairs.items() if o in orion and s in out}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out.get("side_by_side", out), indent=2))


if __name__ == "__main__":
    main()
