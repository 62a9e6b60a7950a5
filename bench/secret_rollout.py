"""A secret's new value reaching every replica: Orion beside Docker Swarm, in one run.

    .venv/bin/python bench/secret_rollout.py [--replicas 10] [--parallel 2] [--rounds 3]
                                             [--no-swarm] [--out bench/results/secret_rollout.json]

Needs ORION_TEST_DOCKER_HOST (or DOCKER_HOST) and the orion/busybox:latest image. Both sides run
10 replicas of a container that only sleeps (``sleep 3600``) with secret ``db`` mounted at
``/run/secrets/db``, no health check, start-first, 2 replicas at a time, a 1 s wait before a new
replica counts (Orion's ``minHealthyTime``, Swarm's ``--update-monitor``). The time measured is
from the operator's first command to **every running replica reading the new value**: each replica
is read by ``docker exec cat /run/secrets/db`` on its engine every 50 ms (no old value left, as many
new ones as replicas).

* Orion: a 3-node loopback cluster with a cluster key (``tests/integration/secret_kit.py``) on the
  test engine. One command: ``PUT /secrets/db`` (``orion secret update db``) makes the next
  version and rolls the service in the same Raft apply.
* Swarm: secrets are immutable, so its way is two commands: ``docker secret create db_vN`` and
  ``docker service update --secret-rm db_v(N-1) --secret-add source=db_vN,target=db``. Three
  private engines (never the shared one) form a swarm of three managers, as
  ``bench/rolling_update.py`` builds it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import swarm_compare  # noqa: E402  (bench/: the swarm every comparison forms)
from engines import Engines  # noqa: E402
from secret_kit import running_secrets, secrets_cluster  # noqa: E402

IMAGE = os.environ.get("ORION_TEST_IMAGE", "orion/busybox:latest")
PERIOD = 0.05


def wait(predicate: Callable[[], object], timeout: float, what: str, step: float = PERIOD) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def read_all(clients: list[docker.DockerClient], label: tuple[str, str]) -> list[str]:
    """What every running container with ``label`` reads at /run/secrets/db, over ``clients``."""
    key, value = label
    out = []
    for client in clients:
        api = client.api  # the low-level list: no inspect of a container that may be gone already
        for row in api.containers(filters={"label": f"{key}={value}", "status": "running"}):
            try:
                exec_id = api.exec_create(row["Id"], ["cat", "/run/secrets/db"])["Id"]
                output = api.exec_start(exec_id)
                code = api.exec_inspect(exec_id)["ExitCode"]
            except docker.errors.APIError:  # stopping between the list and the exec
                continue
            if code == 0:
                out.append(output.decode())
    return out


def everyone_reads(clients: list[docker.DockerClient], label: tuple[str, str], value: str, replicas: int) -> bool:
    seen = read_all(clients, label)
    return len(seen) == replicas and set(seen) == {value}


# -- Orion -----------------------------------------------------------------------------------------
def orion_rounds(docker_host: str, replicas: int, parallel: int, rounds: int) -> list[dict]:
    client = docker.DockerClient(base_url=docker_host)
    results = []
    with tempfile.TemporaryDirectory(prefix="orion-secret-bench-") as tmp:
        cluster = secrets_cluster(Path(tmp), docker_host)
        with running_secrets(cluster, client):
            api = cluster.nodes[1]
            b64 = base64.b64encode(b"value-0").decode()
            assert api.post("/secrets", json={"name": "db", "data": b64}).status_code == 201
            spec = {"name": "web", "image": IMAGE, "memory": "16M", "count": replicas, "command": ["sleep", "3600"],
                    "secrets": [{"source": "db"}],
                    "update": {"maxParallel": parallel, "minHealthyTime": "1s", "healthyDeadline": "120s"}}
            assert api.post("/services", json=spec).status_code == 201
            nodes = {n.id for n in cluster.nodes}

            def label_any() -> bool:
                return sum(len(read_all([client], ("orion.node", n))) for n in nodes) == replicas
            wait(label_any, 120, "orion v0 up")
            for version in range(1, rounds + 1):
                value = f"value-{version}"
                started = time.monotonic()
                resp = api.put("/secrets/db", json={"data": base64.b64encode(value.encode()).decode()})
                assert resp.status_code == 201 and resp.json()["rolled"] == ["web"], resp.text

                def done(v: str = value) -> bool:
                    seen = [s for n in nodes for s in read_all([client], ("orion.node", n))]
                    return len(seen) == replicas and set(seen) == {v}
                wait(done, 300, f"every replica reading {value}")
                took = time.monotonic() - started
                results.append({"wall_s": round(took, 2)})
                print(f"orion  round {version}: {took:.1f}s", flush=True)
                wait(lambda: api.get("/services/web").json()["deployment"]["state"] == "successful", 120,
                     "the rollout finished")
    client.close()
    return results


# -- Swarm -----------------------------------------------------------------------------------------
def swarm_rounds(replicas: int, parallel: int, rounds: int) -> list[dict]:
    engines = Engines(3, Path("/run/orion-secretbench"), Path("/var/lib/orion-secretbench"), "orionsb", 234)
    results = []
    try:
        engines.start()
        swarm_compare.form_swarm(engines)
        first = swarm_compare.client(engines[0], 30)
        clients = [swarm_compare.client(e, 30) for e in engines.items]
        secret = first.secrets.create(name="db_v0", data=b"value-0")
        update = docker.types.UpdateConfig(parallelism=parallel, order="start-first", monitor=1_000_000_000,
                                           delay=0, failure_action="pause")
        ref = docker.types.SecretReference(secret.id, "db_v0", filename="db")
        service = first.services.create(IMAGE, command=["sleep", "3600"], name="web", secrets=[ref],
                                        mode=docker.types.ServiceMode("replicated", replicas), update_config=update,
                                        resources=docker.types.Resources(mem_limit=16 << 20))
        label = ("com.docker.swarm.service.name", "web")
        wait(lambda: everyone_reads(clients, label, "value-0", replicas), 180, "swarm v0 up")
        for version in range(1, rounds + 1):
            value = f"value-{version}"
            started = time.monotonic()
            new = first.secrets.create(name=f"db_v{version}", data=value.encode())
            first.services.get(service.id).update(
                secrets=[docker.types.SecretReference(new.id, f"db_v{version}", filename="db")],
                update_config=update)
            wait(lambda v=value: everyone_reads(clients, label, v, replicas), 300, f"every replica reading {value}")
            took = time.monotonic() - started
            results.append({"wall_s": round(took, 2)})
            print(f"swarm  round {version}: {took:.1f}s", flush=True)
            wait(lambda: (first.services.get(service.id).attrs.get("UpdateStatus") or {}).get("State") == "completed",
                 120, "the swarm update completed")
        service.remove()
    finally:
        for engine in engines.items:
            try:
                swarm_compare.client(engine, 10).swarm.leave(force=True)
            except Exception:  # noqa: BLE001
                pass
        engines.destroy()
    return results


def summary(rounds: list[dict]) -> dict:
    walls = [r["wall_s"] for r in rounds]
    return {"rounds": rounds, "wall_s_median": round(statistics.median(walls), 2), "wall_s_max": max(walls)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-swarm", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "secret_rollout.json"))
    args = ap.parse_args()
    docker_host = os.environ.get("ORION_TEST_DOCKER_HOST") or os.environ.get("DOCKER_HOST", "")
    out: dict = {"replicas": args.replicas, "nodes": 3, "max_parallel": args.parallel, "min_healthy_s": 1.0,
                 "orion": summary(orion_rounds(docker_host, args.replicas, args.parallel, args.rounds))}
    if not args.no_swarm:
        out["swarm"] = summary(swarm_rounds(args.replicas, args.parallel, args.rounds))
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "rounds"} if isinstance(v, dict) else v
                      for k, v in out.items()}, indent=2))


if __name__ == "__main__":
    main()
