"""Snapshots on real clusters: saved under a write load, restored into a fresh 3-node cluster
(every replica then shows the file's digest at the restore's index), and refused with nothing
changed when the file is corrupted or another cluster's.

The agents run without a Docker engine (a socket that does not exist, as the contract test
does): tasks stay pending, so the state changes only by what the test writes. The fresh
cluster reuses the source's node ids and addresses (the source is stopped first), so the
restored node records are its own and no agent needs to register again: the digests can be
compared at the restore's index exactly.
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


def test_saved_under_load_and_restored_into_a_fresh_cluster_the_digest_is_the_files(request, tmp_path: Path):
    source = Cluster(root=tmp_path / "source", docker_host=NO_ENGINE)
    request.node.orion_cluster = source
    (tmp_path / "source").mkdir()
    try:
        source.start()
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
        own = tmp_path / "own.snap"
        cli(target.nodes[0], "save", str(own))
        refused = cli(target.nodes[2], "restore", str(tmp_path / "saved.snap"), check=False)
        assert refused.returncode == 1 and "restore it with --force" in refused.stderr
        restored = cli(target.nodes[2], "restore", "--force", "--json", str(tmp_path / "saved.snap"))
        index = int(restored.stdout.split('"index": ')[1].split(",")[0])

        def agreed_at_restore() -> bool:
            views = [raft(n) for n in target.nodes]
            return all(v["digestIndex"] == index and v["digest"] == snap.digest for v in views)

        target.wait(agreed_at_restore, 30, f"every replica to show the file's digest at index {index}")
        tasks = {t["id"] for t in target.nodes[1].get("/v1/tasks").json()}
        assert tasks == saved_tasks

        # The fresh cluster's own snapshot is now another cluster's: refused, nothing changed.
        before_refusal = raft(target.nodes[0])["digest"]
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
        assert {raft(n)["digest"] for n in target.nodes} == {before_refusal}
        assert {raft(n)["digestIndex"] for n in target.nodes} == {index}
    finally:
        target.stop()
