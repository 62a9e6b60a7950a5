"""Rolling update of 10 replicas, maxParallel 2: Orion beside Docker Swarm, in one run.

    .venv/bin/python bench/rolling_update.py [--replicas 10] [--parallel 2] [--rounds 2]
                                             [--no-swarm] [--out bench/results/rolling_update.json]

Needs ORION_TEST_DOCKER_HOST (or DOCKER_HOST) and the orion/busybox:latest image
(scripts/ensure-dockerd.sh). Both sides run the same image and command (httpd
serving ``version $V``), the same HTTP health check (1 s interval), on dynamic
host ports, start-first, 2 replicas at a time, and are updated by a change of
``V`` (new containers everywhere):

* Orion: a 3-node loopback cluster (``tests/integration/harness.py``) on the
  test engine; ``PUT /services/web``, timed until the deployment is
  ``successful``; ``minHealthyTime`` 2 s, then 0 s (a new replica counts once
  its first check passed: what Swarm waits for, its ``monitor`` only watches
  for failures without holding the next batch).
* Swarm: three private engines forming a swarm of three managers (as
  ``bench/swarm_compare.py`` builds it); ``docker service update --env-add``
  with ``--update-parallelism 2 --update-order start-first --update-monitor 2s``,
  timed until ``UpdateStatus.State`` is ``completed``. The engines run with
  ``--iptables=false`` (they share this host with the test engine), so there is
  no routing mesh: replicas publish in host mode, as Orion's do.

While each update runs, the balancer probe of ``tests/integration/service_kit.py``
sends one request every 50 ms to the next replica of the orchestrator's view
(running and healthy; Swarm's view is its tasks in state ``running``, which it
reaches only once healthy), retrying the other replicas on a refused
connection; a probe fails when none answers. Printed and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from engines import Engines  # noqa: E402
from harness import Cluster  # noqa: E402
from service_kit import PERIOD, SERVE, answer, serving, web_spec  # noqa: E402

IMAGE = os.environ.get("ORION_TEST_IMAGE", "orion/busybox:latest")


class Probe:
    """Round robin over ``backends()`` (refreshed every 100 ms) with retry on the others."""

    def __init__(self, backends: Callable[[], list[int]]) -> None:
        self._backends_fn = backends
        self._backends: list[int] = backends()
        self.sent = 0
        self.failed = 0
        self.retried = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, daemon=True),
                         threading.Thread(target=self._probe, daemon=True)]

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self._backends = self._backends_fn()
            except Exception:  # noqa: BLE001 - a view between two states: keep the last
                pass
            self._stop.wait(0.1)

    def _probe(self) -> None:
        turn = 0
        while not self._stop.is_set():
            backends = list(self._backends)
            self.sent += 1
            order = backends[turn % len(backends):] + backends[:turn % len(backends)] if backends else []
            turn += 1
            for i, port in enumerate(order):
                if answer("127.0.0.1", port) is not None:
                    self.retried += i > 0
                    break
            else:
                self.failed += 1
            self._stop.wait(PERIOD)

    def __enter__(self) -> Probe:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)


def wait(predicate: Callable[[], object], timeout: float, what: str, step: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - the cluster is changing under us
            value = None
        if value:
            return value
        time.sleep(step)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


# -- Orion ---------------------------------------------------------------------------------------
def orion_rounds(docker_host: str, replicas: int, parallel: int, rounds: int,
                 min_healthy: tuple[str, ...]) -> dict[str, list[dict]]:
    """``rounds`` updates for each ``minHealthyTime`` in ``min_healthy``, on one cluster."""
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="orion-rolling-") as root:
        cluster = Cluster(root=Path(root), docker_host=docker_host)
        try:
            cluster.start()
            node = cluster.nodes[1]
            spec = web_spec("0", count=replicas, maxParallel=parallel, healthyDeadline="120s")
            node.post("/services", json=spec).raise_for_status()
            wait(lambda: node.get("/services/web").json()["deployment"]["state"] == "successful", 180, "v1 up")
            updates = [(mht, r) for mht in min_healthy for r in range(rounds)]
            for version, (mht, _) in enumerate(updates, start=1):
                spec = {**spec, "update": {**spec["update"], "minHealthyTime": mht}}
                ports = lambda: [t["ports"]["80/tcp"] for t in serving(cluster)]  # noqa: E731

                def rolled_out(v: int = version) -> bool:
                    s = node.get("/services/web").json()
                    return s["spec"]["env"] == {"V": str(v)} and s["deployment"]["state"] == "successful"

                with Probe(ports) as probe:
                    time.sleep(0.5)
                    started = time.monotonic()
                    node.put("/services/web", json={**spec, "env": {"V": str(version)}}).raise_for_status()
                    wait(rolled_out, 300, "the rollout")
                    took = time.monotonic() - started
                    time.sleep(0.5)
                served = {answer("127.0.0.1", t["ports"]["80/tcp"]) for t in serving(cluster)}
                results.setdefault(mht, []).append(
                    {"wall_s": round(took, 2), "probes": probe.sent, "failed": probe.failed,
                     "retried": probe.retried, "serving": sorted(filter(None, served))})
                print(f"orion  minHealthyTime {mht}: {took:.1f}s, {probe.sent} probes, {probe.failed} failed, "
                      f"{probe.retried} retried", flush=True)
        finally:
            cluster.stop()
            client = docker.DockerClient(base_url=docker_host)
            for node in cluster.nodes:
                for c in client.containers.list(all=True, filters={"label": f"orion.node={node.id}"}):
                    c.remove(force=True)
            client.close()
    return results


# -- Swarm ---------------------------------------------------------------------------------------
def _client(engine, timeout: float = 30) -> docker.DockerClient:  # noqa: ANN001
    return docker.DockerClient(base_url=engine.host, timeout=timeout)


def _addr(engine) -> str:  # noqa: ANN001
    return engine.cidr.split("/")[0]


def swarm_rounds(replicas: int, parallel: int, rounds: int) -> list[dict]:
    engines = Engines(3, Path("/run/orion-rolling"), Path("/var/lib/orion-rolling"), "orionru", 226)
    results = []
    try:
        engines.start()
        first = _client(engines[0])
        first.swarm.init(advertise_addr=_addr(engines[0]), listen_addr=f"{_addr(engines[0])}:2377")
        token = first.swarm.attrs["JoinTokens"]["Manager"]
        for engine in engines.items[1:]:
            _client(engine, 60).swarm.join(remote_addrs=[f"{_addr(engines[0])}:2377"], join_token=token,
                                           advertise_addr=_addr(engine), listen_addr=f"{_addr(engine)}:2377")
        wait(lambda: sum(n.attrs["Status"]["State"] == "ready" for n in first.nodes.list()) == 3, 60, "3 nodes")
        check = docker.types.Healthcheck(test=["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"],
                                         interval=1_000_000_000, timeout=1_000_000_000, retries=2)
        update = docker.types.UpdateConfig(parallelism=parallel, order="start-first", monitor=2_000_000_000,
                                           delay=0, failure_action="pause")
        service = first.services.create(
            IMAGE, command=["sh", "-c", SERVE], name="web", env=["V=0"], healthcheck=check,
            mode=docker.types.ServiceMode("replicated", replicas), update_config=update,
            endpoint_spec=docker.types.EndpointSpec(ports=[{"TargetPort": 80, "Protocol": "tcp",
                                                            "PublishMode": "host"}]),
            resources=docker.types.Resources(mem_limit=16 << 20))

        def ports() -> list[int]:
            out = []
            for task in first.services.get(service.id).tasks({"desired-state": "running"}):
                if task["Status"]["State"] == "running":
                    out += [p["PublishedPort"] for p in task["Status"].get("PortStatus", {}).get("Ports", [])]
            return out

        wait(lambda: len(ports()) == replicas, 180, "swarm v0 up")
        for version in range(1, rounds + 1):
            with Probe(ports) as probe:
                time.sleep(0.5)
                started = time.monotonic()
                first.services.get(service.id).update(env=[f"V={version}"], update_config=update)

                def completed() -> bool:
                    status = first.services.get(service.id).attrs.get("UpdateStatus") or {}
                    if status.get("State") in ("paused", "rollback_completed"):
                        raise RuntimeError(f"swarm update {status}")
                    return status.get("State") == "completed"

                wait(completed, 300, "the swarm update", step=0.05)
                took = time.monotonic() - started
                time.sleep(0.5)
            served = {answer("127.0.0.1", p) for p in ports()}
            results.append({"wall_s": round(took, 2), "probes": probe.sent, "failed": probe.failed,
                            "retried": probe.retried, "serving": sorted(filter(None, served))})
            print(f"swarm  round {version}: {took:.1f}s, {probe.sent} probes, {probe.failed} failed, "
                  f"{probe.retried} retried", flush=True)
        service.remove()
    finally:
        for engine in engines.items:
            try:
                _client(engine, 10).swarm.leave(force=True)
            except Exception:  # noqa: BLE001
                pass
        engines.destroy()
    return results


def summary(rounds: list[dict]) -> dict:
    walls = [r["wall_s"] for r in rounds]
    return {"rounds": rounds, "wall_s_median": round(statistics.median(walls), 2),
            "failed_total": sum(r["failed"] for r in rounds), "probes_total": sum(r["probes"] for r in rounds)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-swarm", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "rolling_update.json"))
    args = ap.parse_args()
    docker_host = os.environ.get("ORION_TEST_DOCKER_HOST") or os.environ.get("DOCKER_HOST", "")
    orion = orion_rounds(docker_host, args.replicas, args.parallel, args.rounds, ("2s", "0s"))
    out = {"replicas": args.replicas, "max_parallel": args.parallel, "check_interval_s": 1.0,
           "orion": summary(orion["2s"]), "orion_min_healthy_0s": summary(orion["0s"])}
    if not args.no_swarm:
        out["swarm"] = summary(swarm_rounds(args.replicas, args.parallel, args.rounds))
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "rounds"} if isinstance(v, dict) else v
                      for k, v in out.items()}, indent=2))


if __name__ == "__main__":
    main()
