"""Self-healing with real agents, real dockerd (one per node), real sockets.

Each node has its own Docker engine and loopback address, so "node 2 dies"
means its agent's process group and its engine are SIGKILLed together and its
containers die with it; a partition is iptables DROP between its address and
the others'.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
import uuid

import pytest
import requests
from harness import free_ports
from selfheal_kit import HealCluster, make_heal_cluster, running_heal

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

MiB = 1024 * 1024


def wait_task(hc: HealCluster, task_id: str, pred, what: str, timeout: float = 30):
    return hc.cluster.wait(lambda: (t := hc.task(task_id)) and pred(t) and t, timeout, what)


def pin(hc: HealCluster, node_id: str) -> str:
    """A small filler pinned to ``node_id``: BestFit then prefers that (fuller) node."""
    resp = hc.api().post("/tasks", json={"image": "orion/busybox:latest", "memory": 8 * MiB,
                                         "nodeSelectors": {"name": node_id}})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def test_a_node_killed_with_its_engine_has_its_task_running_and_answering_elsewhere(heal):
    node2 = heal.nodes[1]
    pin(heal, node2.id)
    (port,) = free_ports(1)
    resp = heal.api().post("/tasks", json={"image": "orion/busybox:latest", "memory": 16 * MiB,
                                           "portBindings": {"80/tcp": str(port)}})
    assert resp.status_code == 201, resp.text
    task = wait_task(heal, resp.json()["id"], lambda t: t["state"] == "running", "task running")
    assert task["nodeId"] == node2.id
    heal.cluster.wait(lambda: heal.answers(port), 15, "the task to answer")

    heal.kill_node(node2)
    assert not heal.answers(port)
    moved = wait_task(heal, task["id"], lambda t: t["state"] == "running" and t["nodeId"] != node2.id,
                      "the task running on another node", timeout=30)
    assert moved["generation"] == task["generation"] + 1
    heal.cluster.wait(lambda: heal.answers(port), 15, "the replacement to answer on the same port")
    assert len(heal.running(task["id"])) == 1
    nodes = {n["id"]: n["status"] for n in heal.api().get("/nodes").json()}
    assert nodes[node2.id] == "dead"

    # Node 2 comes back: it is alive again and runs no stale copy of the task.
    heal.restart_node(node2)
    heal.cluster.wait(lambda: {n["id"]: n["status"] for n in heal.api().get("/nodes").json()}[node2.id]
                      == "alive", 30, "node2 alive again")
    time.sleep(2)
    assert [i for i, _ in heal.running(task["id"])] == [heal.nodes.index(
        next(n for n in heal.nodes if n.id == moved["nodeId"]))]


def test_a_node_that_crashes_and_returns_before_it_is_declared_dead_runs_its_task_again(
        tmp_path, engines, request):
    """The engine restores the crashed node's container as "exited 255": that is the node
    losing the task, not the task failing, so it is placed again (restart policy "never")."""
    slow = {"ORION_GOSSIP_PROBE_INTERVAL": "5", "ORION_NODE_DEAD_AFTER": "120"}  # nobody is declared dead
    hc = make_heal_cluster(tmp_path, engines, env=slow, label_names=True)
    request.node.orion_cluster = hc.cluster
    try:
        hc.cluster.start()
        leader = hc.cluster.wait(hc.cluster.leader, 20, "a leader")
        victim = next(n for n in hc.nodes if n is not leader)
        (port,) = free_ports(1)
        resp = hc.api().post("/tasks", json={"image": "orion/busybox:latest", "memory": 8 * MiB,
                                             "nodeSelectors": {"name": victim.id},
                                             "portBindings": {"80/tcp": str(port)}})
        assert resp.status_code == 201, resp.text
        task = wait_task(hc, resp.json()["id"], lambda t: t["state"] == "running", "task running")

        hc.kill_node(victim)
        hc.restart_node(victim)
        back = wait_task(hc, task["id"], lambda t: t["state"] == "running" and t["generation"] > task["generation"],
                         "the task placed again and running", timeout=30)
        assert back["nodeId"] == victim.id and back["generation"] == task["generation"] + 1
        hc.cluster.wait(lambda: hc.answers(port), 15, "the task to answer again")
        assert len(hc.running(task["id"])) == 1
        assert {n["id"]: n["status"] for n in leader.get("/nodes").json()}[victim.id] == "alive"
    finally:
        hc.stop_fast()


def test_a_leader_killed_under_a_stream_of_submissions_loses_and_duplicates_nothing(heal):
    acked: dict[str, str] = {}  # idempotency key -> task id
    stop = threading.Event()
    errors: list[str] = []

    def submit_stream() -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            key = f"stream-{n}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not stop.is_set():
                node = heal.cluster.live()[n % len(heal.cluster.live())]
                try:
                    resp = node.post("/tasks", json={"image": "orion/busybox:latest", "memory": 8 * MiB,
                                                     "name": key}, headers={"Idempotency-Key": key}, timeout=15)
                except requests.RequestException:
                    time.sleep(0.1)
                    continue
                if resp.status_code in (200, 201):
                    acked[key] = resp.json()["id"]
                    time.sleep(0.15)  # a steady stream, not a flood: every task must also start
                    break
                if resp.status_code != 503:
                    errors.append(f"{key}: HTTP {resp.status_code} {resp.text[:200]}")
                    break
                time.sleep(0.1)

    writer = threading.Thread(target=submit_stream, daemon=True)
    writer.start()
    time.sleep(2.0)
    leader = heal.cluster.wait(heal.cluster.leader, 20, "a leader")
    before = len(acked)
    heal.kill_node(leader)
    time.sleep(5.0)
    stop.set()
    writer.join(timeout=40)
    assert not errors, errors
    assert len(acked) > before, "no write was acknowledged after the leader died"

    survivor = heal.api()
    tasks = survivor.get("/tasks").json()
    by_name: dict[str, list[dict]] = {}
    for t in tasks:
        by_name.setdefault(t["name"], []).append(t)
    for key, task_id in acked.items():
        assert [t["id"] for t in by_name.get(key, [])] == [task_id], f"{key}: {by_name.get(key)}"
    # Every task runs, once, on a live node (the dead leader's are moved).
    heal.cluster.wait(lambda: all(t["state"] == "running" for t in survivor.get("/tasks").json()), 60,
                      "every task running")
    for task_id in acked.values():
        assert len(heal.running(task_id)) == 1, task_id


def test_a_partitioned_minority_cannot_commit_and_after_heal_each_task_runs_once(heal):
    minority = heal.nodes[0]  # the lowest address (see HealCluster.partition); the first leader too
    pin(heal, minority.id)
    resp = heal.api().post("/tasks", json={"image": "orion/busybox:latest", "memory": 16 * MiB,
                                           "portBindings": {"80/tcp": ""}})
    task_id = resp.json()["id"]
    task = wait_task(heal, task_id, lambda t: t["state"] == "running", "task running")
    assert task["nodeId"] == minority.id
    with heal.partition([minority]):
        write = minority.post("/tasks", json={"image": "orion/busybox:latest", "memory": 8 * MiB, "name": "cut-off"},
                              timeout=30)
        assert write.status_code == 503, write.text
        majority = next(n for n in heal.nodes if n is not minority)
        heal.cluster.wait(lambda: (t := majority.get(f"/tasks/{task_id}").json())["state"] == "running"
                          and t["nodeId"] != minority.id, 30, "the task replaced on the majority side")
        assert majority.get("/health").status_code == 200
        # Nothing the minority was asked to write has been committed.
        assert all(t["name"] != "cut-off" for t in majority.get("/tasks").json())
    # Healed: the minority catches up, finds its task replaced and stops its stale container.
    heal.cluster.wait(lambda: len(heal.running(task_id)) == 1, 30, "exactly one running container")
    heal.cluster.wait(lambda: minority.get(f"/tasks/{task_id}").json()["generation"] == task["generation"] + 1,
                      20, "the minority's replica to catch up")
    # A 503 after a write timeout means "not committed yet, may still apply": pysyncobj
    # keeps the queued command and forwards it once a leader is reachable. At most once.
    assert sum(t["name"] == "cut-off" for t in majority.get("/tasks").json()) <= 1
    time.sleep(2)
    assert len(heal.running(task_id)) == 1


@pytest.fixture
def draining(request, tmp_path, engines) -> HealCluster:
    """A cluster whose agents drain on SIGTERM (leave_on_terminate: opt-in, for decommissioning)."""
    hc = make_heal_cluster(tmp_path, engines, label_names=True, env={"ORION_LEAVE_ON_TERMINATE": "true"})
    with running_heal(request, hc):
        yield hc


def test_sigterm_with_leave_on_terminate_drains_the_node_and_drain_moves_tasks(draining):
    heal = draining
    node3 = heal.nodes[2]
    pin(heal, node3.id)
    resp = heal.api().post("/tasks", json={"image": "orion/busybox:latest", "memory": 16 * MiB})
    task = wait_task(heal, resp.json()["id"], lambda t: t["state"] == "running", "running")
    assert task["nodeId"] == node3.id
    heal.cluster.kill(node3, signal.SIGTERM)  # leave_on_terminate: drain, then exit
    moved = heal.task(task["id"])
    assert moved["nodeId"] != node3.id and moved["state"] in ("assigned", "running"), moved
    assert {n["id"]: n["status"] for n in heal.api().get("/nodes").json()}[node3.id] == "left"
    assert heal.running(task["id"]) == [] or all(i != 2 for i, _ in heal.running(task["id"]))

    # The API's drain does the same for a node that stays up.
    owner = next(n for n in heal.nodes if n.id == wait_task(heal, task["id"], lambda t: t["state"] == "running",
                                                             "running again")["nodeId"])
    drained = heal.api().post(f"/nodes/{owner.id}/drain")
    assert drained.status_code == 202, drained.text
    assert drained.json()["status"] == "left"
    # Only one node is left alive (node3 left, owner draining): the task waits, lost, with a reason.
    wait_task(heal, task["id"], lambda t: t["nodeId"] != owner.id or t["state"] == "lost", "task moved off")


def test_a_service_of_n_replicas_is_scaled_with_patch_and_kept_at_n(heal):
    resp = heal.api().post("/tasks", json={"image": "orion/busybox:latest", "memory": 8 * MiB, "count": 2})
    assert resp.status_code == 201, resp.text
    first = resp.json()[0]["id"]

    def scale(count: int) -> dict:
        answer = requests.patch(heal.api().url + f"/tasks/{first}", json={"count": count}, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    assert len(scale(4)["created"]) == 2
    heal.cluster.wait(lambda: sum(t["state"] == "running" for t in scale(4)["tasks"]) == 4, 30, "4 running")
    down = scale(1)
    assert len(down["stopped"]) == 3
    # The CLI does the same: `orion scale <id> 2`.
    from click.testing import CliRunner

    from orion.cli.main import main as cli

    result = CliRunner().invoke(cli, ["--addr", heal.api().url, "scale", first, "2"])
    assert result.exit_code == 0, result.output
    assert "2 replica(s); added 1" in result.output


def test_a_crashing_task_is_restarted_with_backoff_then_moved(tmp_path, engines, request):
    hc = make_heal_cluster(tmp_path, engines, env={"ORION_RESTART_DELAY": "0.2", "ORION_RESTART_MAX_DELAY": "1"})
    request.node.orion_cluster = hc.cluster
    try:
        hc.cluster.start()
        resp = hc.api().post("/tasks", json={"image": "orion/busybox:latest", "memory": 8 * MiB,
                                             "command": ["sh", "-c", "sleep 0.3; exit 3"],
                                             "restartPolicy": "on-failure", "name": f"crash-{uuid.uuid4().hex[:4]}"})
        assert resp.status_code == 201, resp.text
        first = resp.json()
        first_node = hc.cluster.wait(lambda: hc.task(first["id"])["nodeId"], 10, "placed")
        moved = wait_task(hc, first["id"], lambda t: t["restarts"] >= 4 and t["nodeId"] not in (None, first_node),
                          "restarted locally, then moved to another node", timeout=60)
        assert moved["restarts"] >= 4
    finally:
        hc.stop_fast()


def test_autopilot_removes_a_dead_voter_and_adds_it_back_when_it_returns(tmp_path, engines, request):
    hc = make_heal_cluster(tmp_path, engines, env={"ORION_DEAD_VOTER_CLEANUP": "2"})
    request.node.orion_cluster = hc.cluster
    try:
        hc.cluster.start()
        leader = hc.cluster.wait(hc.cluster.leader, 20, "a leader")
        victim = next(n for n in hc.nodes if n is not leader)
        hc.kill_node(victim)
        hc.cluster.wait(lambda: victim.raft_addr not in leader.get("/raft").json()["members"], 30,
                        "the dead voter removed from Raft")
        assert len(leader.get("/raft").json()["members"]) == 2
        assert leader.post("/tasks", json={"image": "orion/busybox:latest", "memory": 8 * MiB}).status_code == 201
        hc.restart_node(victim)
        hc.cluster.wait(lambda: victim.raft_addr in leader.get("/raft").json()["members"], 30,
                        "the returning node added back as a voter")
        hc.cluster.wait(lambda: {n["id"]: n["status"] for n in leader.get("/nodes").json()}[victim.id] == "alive",
                        30, "the returning node alive")
    finally:
        hc.stop_fast()
