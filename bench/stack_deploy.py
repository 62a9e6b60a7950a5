"""``orion stack deploy`` of 10 services x 3 replicas beside ``docker stack deploy`` of the same file.

    .venv/bin/python bench/stack_deploy.py [--services 10] [--replicas 3] [--rounds 2] [--no-swarm]
                                           [--out bench/results/stack_deploy.json]

Needs ORION_TEST_DOCKER_HOST (or DOCKER_HOST), the orion/busybox:latest image and
the ``docker`` CLI (scripts/ensure-dockerd.sh). One compose file (``version:
"3.8"`` so Docker 20.10's ``stack deploy`` reads it too): each service runs
busybox httpd, 16 MiB, an exec health check every 2 s (``wget`` of its own
page; 15 ``docker exec`` a second for 30 replicas on either side), 3 replicas.
Timed from the command's start until every replica runs and passes its check:

* Orion: a 3-node loopback cluster (``tests/integration/harness.py``) on the
  test engine; ``orion stack deploy -f FILE bench`` as a person runs it (the
  file read, checked against the Compose schema, planned, 10 services declared);
  done when ``GET /stacks/bench`` counts 30 healthy replicas. Also recorded: when
  every deployment is ``successful`` (each replica healthy for ``minHealthyTime``,
  10 s by default; Swarm has no such state for a new service).
* Swarm: a single-node swarm on a private engine of its own (forming a swarm on
  the shared test engine could disturb other tests), started with
  ``scripts/ensure-dockerd.sh`` and destroyed after; ``docker stack deploy -c FILE
  bench``; done when every service has 3 tasks ``running`` (Swarm moves a task to
  running only once its container is healthy).

Each round starts from nothing (the stack removed and its containers gone).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from engines import Engines  # noqa: E402
from harness import ORION, Cluster, remove_containers  # noqa: E402

IMAGE = os.environ.get("ORION_TEST_IMAGE", "orion/busybox:latest")
SERVE = 'echo "$$SERVICE" > /www/index.html && exec httpd -f -p 80 -h /www'


def compose_file(services: int, replicas: int) -> str:
    lines = ['version: "3.8"', "services:"]
    for i in range(services):
        lines += [f"  s{i}:", f"    image: {IMAGE}", f"    command: [\"sh\", \"-c\", {json.dumps(SERVE)}]",
                  f"    environment: {{SERVICE: s{i}}}",
                  "    healthcheck:", '      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]',
                  "      interval: 2s", "      timeout: 2s", "      retries: 3",
                  "    deploy:", f"      replicas: {replicas}", "      resources: {limits: {memory: 16M}}"]
    return "\n".join(lines) + "\n"


def wait(predicate: Callable[[], object], timeout: float, what: str, step: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - a node busy answering is retried
            value = None
        if value:
            return value
        time.sleep(step)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def orion_rounds(docker_host: str, path: Path, services: int, replicas: int, rounds: int) -> list[dict]:
    results = []
    client = docker.DockerClient(base_url=docker_host)
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(root=Path(tmp), docker_host=docker_host)
        remove_containers(client, cluster)
        try:
            cluster.start()
            node = cluster.nodes[1]
            total = services * replicas
            for n in range(1, rounds + 1):
                started = time.monotonic()
                out = subprocess.run([*ORION, "--addr", node.url, "stack", "deploy", "-f", str(path), "bench"],
                                     capture_output=True, text=True, timeout=120)
                if out.returncode != 0:
                    raise RuntimeError(f"orion stack deploy failed:\n{out.stdout}\n{out.stderr}")
                declared = time.monotonic() - started
                try:
                    wait(lambda: node.get("/stacks/bench").json()["healthy"] == total, 300, f"{total} healthy")
                except TimeoutError:
                    found = node.get("/stacks/bench").json()
                    raise TimeoutError(f"{found['healthy']} of {total} healthy: {found['tasks']}") from None
                healthy = time.monotonic() - started
                try:
                    wait(lambda: all(d["deployment"]["state"] == "successful"
                                     for d in node.get("/stacks/bench").json()["details"]), 120, "successful")
                except TimeoutError:
                    late = [(d["name"], d["deployment"]["state"], d["deployment"]["reason"], d["tasks"])
                            for d in node.get("/stacks/bench").json()["details"]
                            if d["deployment"]["state"] != "successful"]
                    raise TimeoutError(f"deployments not successful: {late}") from None
                successful = time.monotonic() - started
                results.append({"declared_s": round(declared, 2), "healthy_s": round(healthy, 2),
                                "successful_s": round(successful, 2)})
                print(f"orion round {n}: declared {declared:.1f}s, {total} healthy {healthy:.1f}s, "
                      f"deployments successful {successful:.1f}s", flush=True)
                subprocess.run([*ORION, "--addr", node.url, "stack", "rm", "bench"], capture_output=True, timeout=60)
                wait(lambda: not [c for c in client.containers.list(all=True, filters={"label": "orion.managed=1"})
                                  if any(c.labels.get("orion.node") == m.id for m in cluster.nodes)],
                     120, "the stack's containers gone", step=0.2)
        finally:
            cluster.stop()
            remove_containers(client, cluster)
            client.close()
    return results


def swarm_rounds(path: Path, services: int, replicas: int, rounds: int) -> list[dict]:
    engines = Engines(1, Path("/run/orion-stackbench"), Path("/var/lib/orion-stackbench"), "orionsb", 227)
    results = []
    try:
        engines.start()
        engine = engines[0]
        client = docker.DockerClient(base_url=engine.host, timeout=60)
        addr = engine.cidr.split("/")[0]
        client.swarm.init(advertise_addr=addr, listen_addr=f"{addr}:2377")
        env = {**os.environ, "DOCKER_HOST": engine.host}

        def running() -> int:
            return sum(1 for s in client.services.list() for t in s.tasks({"desired-state": "running"})
                       if t["Status"]["State"] == "running")

        for n in range(1, rounds + 1):
            started = time.monotonic()
            out = subprocess.run(["docker", "stack", "deploy", "-c", str(path), "bench"], env=env,
                                 capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                raise RuntimeError(f"docker stack deploy failed:\n{out.stdout}\n{out.stderr}")
            declared = time.monotonic() - started
            wait(lambda: running() == services * replicas, 300, "swarm tasks running", step=0.1)
            healthy = time.monotonic() - started
            results.append({"declared_s": round(declared, 2), "healthy_s": round(healthy, 2)})
            print(f"swarm round {n}: declared {declared:.1f}s, {services * replicas} running (healthy) "
                  f"{healthy:.1f}s", flush=True)
            subprocess.run(["docker", "stack", "rm", "bench"], env=env, capture_output=True, timeout=60)
            wait(lambda: not client.containers.list(all=True), 120, "swarm containers gone", step=0.2)
        client.close()
    finally:
        for engine in engines.items:
            try:
                docker.DockerClient(base_url=engine.host, timeout=10).swarm.leave(force=True)
            except Exception:  # noqa: BLE001
                pass
        engines.destroy()
    return results


def summary(rounds: list[dict]) -> dict:
    keys = [k for k in rounds[0] if k.endswith("_s")]
    return {"rounds": rounds, **{f"{k}_median": round(statistics.median(r[k] for r in rounds), 2) for k in keys}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=10)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-swarm", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "stack_deploy.json"))
    args = ap.parse_args()
    docker_host = os.environ.get("ORION_TEST_DOCKER_HOST") or os.environ.get("DOCKER_HOST")
    if not docker_host:
        sys.exit("set ORION_TEST_DOCKER_HOST (scripts/ensure-dockerd.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "docker-compose.yml"
        path.write_text(compose_file(args.services, args.replicas))
        out = {"services": args.services, "replicas": args.replicas,
               "orion": summary(orion_rounds(docker_host, path, args.services, args.replicas, args.rounds))}
        if not args.no_swarm:
            out["swarm"] = summary(swarm_rounds(path, args.services, args.replicas, args.rounds))
    out["load_average"] = os.getloadavg()  # a shared machine: the figures mean what the load allowed
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
