"""Snapshots on real clusters: saved under a write load, restored into a fresh 3-node cluster
(every replica then shows the file's digest at the restore's index), and refused with nothing
changed when the file is corrupted or another cluster's.

The agents run without a Docker engine (a socket that does not exist, as the contract test
does): once their engine has been silent for ``engine_down_grace`` every node reports itself not
ready and tasks stay pending, so each cluster is saved from and restored into that settled
shape. The fresh cluster reuses the source's node ids and addresses (the source is stopped
first), so the restored node records are its own and no agent needs to register again: the
digests can be compared at the restore's index exactly. Only a task created in the last
milliseconds before the save can still be waiting for the leader to record why it cannot be
placed (or a service for its rollout's next step); the target's leader then does it right after
the restore, and the index moves on before the digest at the restore's index can be read. Then
the replicas must still agree with each other and hold the file's tasks, nodes and services.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from harness import ORION, Cluster

from orion.store.snapshot_file import read_snapshot

pytestmark = [pytest.mark.cluster]

NO_ENGINE = "unix:///nonexistent/orion-snapshot-test/docker.sock"


def cli(node, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*ORION, "--addr", node.url, "operator", "snapshot", *args], capture_output=True,
                          text=True, timeout=120)
    if check:
        assert done.returncode == 0, done.stderr
    return done


class Load:
    """Creates tasks and services through every node until stopped; remembers what was acknowledged."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.acked: list[tuple[float, str]] = []  # (when the answer arrived, task id)
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            node = self.cluster.nodes[i % len(self.cluster.nodes)]
            try:
                if i % 10 == 9:
                    resp = node.post("/v1/services", json={"name": f"svc-{i}", "image": "app:1", "memory": "8M",
                                                           "count": 1})
                else:
                    resp = node.post("/v1/tasks", json={"image": "app:1", "memory": "8M"})
                if resp.status_code == 201 and "id" in resp.json():
                    self.acked.append((time.monotonic(), resp.json()["id"]))
                elif resp.status_code != 201:
                    self.errors.append(resp.text)
            except requests.RequestException as exc:
                self.errors.append(str(exc))
            i += 1


def raft(node) -> dict:
    return node.get("/v1/raft").json()


def settled(cluster: Cluster) -> bool:
    """Every node reports itself not ready (no engine), as the file's records will say."""
    return all(not n["ready"] for n in cluster.nodes[0].get("/v1/nodes").json())


def test_saved_under_load_and_restored_into_a_fresh_cluster_the_digest_is_the_files(request, tmp_path: Path):
    source = Cluster(root=tmp_path / "source", docker_host=NO_ENGINE)
    request.node.orion_cluster = source
    (tmp_path / "source").mkdir()
    try:
        source.start()
        source.wait(lambda: settled(source), 60, "the nodes not ready (no engine)")
        load = Load(source)
        load.thread.start()
        source.wait(lambda: len(load.acked) >= 30, 60, "a write load under way")
        asked = time.monotonic()
        before = {task_id for at, task_id in load.acked if at < asked}
        cli(source.nodes[1], "save", str(tmp_path / "saved.snap"))
        source.wait(lambda: len(load.acked) >= len(before) + 20, 60, "writes after the save")
        load.stop.set()
        load.thread.join(30)
        assert load.errors == []
    finally:
        source.stop()
    snap = read_snapshot((tmp_path / "saved.snap").read_bytes())
    saved_tasks = {t["id"] for t in snap.state["tasks"]}
    assert before <= saved_tasks, "the file is older than the request: acknowledged writes are missing"
    assert {task_id for _, task_id in load.acked} - saved_tasks, "writes acknowledged after the save are in it"
    inspected = cli(source.nodes[0], "inspect", "--json", str(tmp_path / "saved.snap"))
    assert f'"index": {snap.meta.index}' in inspected.stdout and '"checksumOk": true' in inspected.stdout

    # A fresh cluster on the same node ids and addresses, with empty data dirs.
    (tmp_path / "target").mkdir()
    target = Cluster(root=tmp_path / "target", docker_host=NO_ENGINE, tag=source.tag, secret=source.secret)
    for new, old in zip(target.nodes, source.nodes, strict=True):
        new.port, new.raft_port, new.gossip_port = old.port, old.raft_port, old.gossip_port
    request.node.orion_cluster = target
    try:
        target.start()
        target.wait(lambda: settled(target), 60, "the nodes not ready (no engine)")
        own = tmp_path / "own.snap"
        cli(target.nodes[0], "save", str(own))
        refused = cli(target.nodes[2], "restore", str(tmp_path / "saved.snap"), check=False)
        assert refused.returncode == 1 and "restore it with --force" in refused.stderr
        restored = cli(target.nodes[2], "restore", "--force", "--json", str(tmp_path / "saved.snap"))
        index = int(restored.stdout.split('"index": ')[1].split(",")[0])

        def agreed() -> dict | None:
            views = [raft(n) for n in target.nodes]
            same = len({(v["digestIndex"], v["digest"]) for v in views}) == 1
            return views[0] if same and views[0]["digestIndex"] >= index else None

        view = target.wait(agreed, 30, f"every replica to show one digest from index {index} on")
        if view["digestIndex"] == index:
            assert view["digest"] == snap.digest
        else:
            print(f"the digest at the restore's index {index} was not observable: the state moved on to "
                  f"{view['digestIndex']} (a task saved before its leader recorded why it waits)")
        tasks = {t["id"]: t for t in target.nodes[1].get("/v1/tasks").json()}
        assert saved_tasks <= set(tasks)
        # Beyond the file's: only replicas its services' rollouts started after the restore.
        assert all(tasks[i].get("service") for i in set(tasks) - saved_tasks), set(tasks) - saved_tasks
        assert {n["id"] for n in target.nodes[1].get("/v1/nodes").json()} == {n["id"] for n in snap.state["nodes"]}
        assert {s["name"] for s in target.nodes[1].get("/v1/services").json()} == \
            {r["name"] for r in snap.state["services"]["records"]}

        # The fresh cluster's own snapshot is now another cluster's: refused, nothing changed.
        view = target.wait(agreed, 30, "the replicas agreeing")
        before_refusal = view["digest"]
        refused = cli(target.nodes[0], "restore", str(own), check=False)
        assert refused.returncode == 1 and f"is of cluster {read_snapshot(own.read_bytes()).meta.cluster_id}" \
            in refused.stderr
        # A corrupted file: the CLI names it; sent anyway, the node refuses it too.
        spoiled = bytearray((tmp_path / "saved.snap").read_bytes())
        spoiled[len(spoiled) // 2] ^= 0x01
        (tmp_path / "spoiled.snap").write_bytes(bytes(spoiled))
        refused = cli(target.nodes[1], "restore", str(tmp_path / "spoiled.snap"), check=False)
        assert refused.returncode == 1 and "corrupted" in refused.stderr
        resp = requests.put(target.nodes[1].url + "/v1/operator/snapshot", data=bytes(spoiled), timeout=30)
        assert resp.status_code == 400 and "corrupted" in resp.json()["error"]
        time.sleep(1.0)
        assert {(raft(n)["digestIndex"], raft(n)["digest"]) for n in target.nodes} == \
            {(view["digestIndex"], before_refusal)}
    finally:
        target.stop()
