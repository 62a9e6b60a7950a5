"""Snapshot save and restore with 10,000 tasks and 500 services (issue #20).

    .venv/bin/python bench/snapshot.py [--tasks 10000] [--services 500] [--cluster]
                                       [--out bench/results/snapshot.json]

In-process (always): a ``LocalStore`` filled through the state machine (100 nodes; every task
placed and running, as a busy cluster's are; 500 services with two versions each; the 10,000
request answers the machine remembers), then through the real Flask app: ``GET
/v1/operator/snapshot`` (the machine's snapshot under its lock, the canonical JSON, gzip, the
checksums), reading the file back (every checksum verified, as ``inspect`` and the API do) and
``PUT /v1/operator/snapshot`` (checked here, then applied: the machine re-checks the digest and
rebuilds itself). ``--cluster``: that file restored (``--force``) into a fresh 3-node cluster on
loopback (agents without a Docker engine) with the CLI, through a follower: one Raft entry of the
whole state forwarded to the leader and carried to every replica; then saved from it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from parts import api_deps  # noqa: E402

from orion.api.app import create_app  # noqa: E402
from orion.domain.model import NodeInfo, Resources, TaskSpec  # noqa: E402
from orion.domain.service import ServiceSpec  # noqa: E402
from orion.state.commands import (  # noqa: E402
    CreateTask,
    NameCluster,
    Placement,
    PlaceTasks,
    PutService,
    RegisterNode,
    ReportTaskState,
)
from orion.store.local import LocalStore  # noqa: E402
from orion.store.snapshot_file import read_snapshot  # noqa: E402

RESULTS = Path(__file__).parent / "results"
GiB = 1 << 30


def fill(tasks: int, services: int, nodes: int = 100) -> LocalStore:
    store = LocalStore()
    store.submit(NameCluster(cluster_id="bench"), 1.0)
    for i in range(nodes):
        store.submit(RegisterNode(request_id=f"r{i}", node=NodeInfo(
            f"n{i}", f"10.0.0.{i}:8000", f"10.0.0.{i}:7000", capacity=Resources(512 * GiB, 256_000))), 1.0)
    for i in range(tasks):
        node = f"n{i % nodes}"
        store.submit(CreateTask(request_id=f"c{i}", task_id=f"t{i:05d}", spec=TaskSpec(
            "registry.example/app:1.4.2", 64 << 20, cpu_millis=100, env=(("MODE", "prod"),))), 1.0)
        store.submit(PlaceTasks(request_id=f"p{i}", placements=(Placement(f"t{i:05d}", node, 0),)), 1.0)
        store.submit(ReportTaskState(request_id=f"s{i}", task_id=f"t{i:05d}", node_id=node, generation=1,
                                     state="running", container_id=f"{i:064x}"), 1.0)
    for i in range(services):
        for version in (1, 2):
            spec = ServiceSpec(f"svc-{i}", TaskSpec(f"registry.example/svc-{i}:{version}", 32 << 20), count=2)
            store.submit(PutService(request_id=f"v{i}.{version}", spec=spec, at=1.0 + version), 1.0)
    return store


def in_process(tasks: int, services: int) -> tuple[dict, bytes]:
    started = time.perf_counter()
    store = fill(tasks, services)
    filled = time.perf_counter() - started
    client = create_app(api_deps(store)).test_client()
    t0 = time.perf_counter()
    resp = client.get("/v1/operator/snapshot")
    save = time.perf_counter() - t0
    assert resp.status_code == 200, resp.data[:200]
    data = resp.data
    t0 = time.perf_counter()
    snap = read_snapshot(data)
    verify = time.perf_counter() - t0
    t0 = time.perf_counter()
    put = client.put("/v1/operator/snapshot", data=data)
    restore = time.perf_counter() - t0
    assert put.status_code == 200, put.json
    raw = len(json.dumps(snap.state, sort_keys=True, separators=(",", ":")))
    return {"tasks": snap.counts()["tasks"], "services": snap.counts()["services"], "nodes": snap.counts()["nodes"],
            "remembered_requests": len(snap.state["requests"]), "fill_s": round(filled, 1),
            "file_bytes": len(data), "state_json_bytes": raw, "save_ms": round(1000 * save),
            "verify_ms": round(1000 * verify), "restore_ms": round(1000 * restore)}, data


def on_cluster(data: bytes) -> dict:
    """The in-process file restored into a fresh 3-node cluster (``--force``: another cluster's),
    then saved from it: the restore is one Raft entry of the whole state, sent to every replica."""
    from harness import ORION, Cluster

    root = Path(tempfile.mkdtemp(prefix="orion-bench-snapshot-"))
    cluster = Cluster(root=root, docker_host="unix:///nonexistent/orion-bench/docker.sock")
    cluster.start()
    try:
        node = cluster.nodes[1]
        (root / "in.snap").write_bytes(data)

        def cli(*args: str) -> float:
            t0 = time.perf_counter()
            subprocess.run([*ORION, "--addr", node.url, "operator", "snapshot", *args], check=True,
                           capture_output=True, timeout=300)
            return time.perf_counter() - t0

        restore = cli("restore", "--force", str(root / "in.snap"))
        save = cli("save", str(root / "out.snap"))
        snap = read_snapshot((root / "out.snap").read_bytes())
        return {"tasks": snap.counts()["tasks"], "services": snap.counts()["services"], "file_bytes": snap.size,
                "cli_restore_s": round(restore, 2), "cli_save_s": round(save, 2)}
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--cluster", action="store_true", help="also on a real 3-node cluster")
    parser.add_argument("--out", type=Path, default=RESULTS / "snapshot.json")
    args = parser.parse_args()
    figures, data = in_process(args.tasks, args.services)
    result = {"in_process": figures}
    print(json.dumps(result, indent=2), flush=True)
    if args.cluster:
        result["cluster"] = on_cluster(data)
        print(json.dumps(result["cluster"], indent=2))
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
