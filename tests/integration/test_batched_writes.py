"""Batched writes on a real cluster: writes that arrive together share Raft entries, and
each keeps its own answer (orion/store/coalescer.py).

32 creates at once, spread over the three agents, each with its own idempotency
key; half are invalid, each in its own way. Every valid one is acknowledged once
(sent again with its key, it answers the first task, created nowhere twice),
every invalid one is refused with its own 400 naming its own field, and the
three replicas list the same tasks.
"""

from __future__ import annotations

import threading

import pytest
from harness import Cluster

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

# Each invalid body is wrong in its own way, so its 400 must name its own field.
INVALID = [
    ({"memory": "64Mi"}, "image"),
    ({"image": "IMG!", "memory": "64Mi"}, "image"),
    ({"image": "x", "memory": 1}, "memory"),
    ({"image": "x", "memory": "64Mi", "cpu": -1}, "cpu"),
    ({"image": "x", "memory": "64Mi", "portBindings": {"80/tcp": "99999"}}, "portBindings.80/tcp"),
    ({"image": "x", "memory": "64Mi", "restartPolicy": "sometimes"}, "restartPolicy"),
    ({"image": "x", "memory": "64Mi", "env": {"A": 1}}, "env.A"),
    ({"image": "x", "memory": "64Mi", "replicas": 2}, "replicas"),
]


def _bodies(image: str) -> list[tuple[str, dict, str | None]]:
    """(idempotency key, body, the field its 400 names or None for a valid one), 16 + 16."""
    out: list[tuple[str, dict, str | None]] = []
    for i in range(16):
        out.append((f"valid-{i}", {"image": image, "memory": "8Mi", "command": ["sleep", "60"],
                                   "name": f"gc-{i}"}, None))
        body, field = INVALID[i % len(INVALID)]
        out.append((f"invalid-{i}", body, field))
    return out


def _post_all(cluster: Cluster, requests_: list[tuple[str, dict, str | None]]) -> dict[str, object]:
    """Every request on its own thread, released together, round robin over the nodes."""
    answers: dict[str, object] = {}
    start = threading.Barrier(len(requests_))

    def post(i: int, key: str, body: dict) -> None:
        start.wait()
        answers[key] = cluster.nodes[i % len(cluster.nodes)].post("/tasks", json=body,
                                                                  headers={"Idempotency-Key": key}, timeout=30)

    threads = [threading.Thread(target=post, args=(i, key, body)) for i, (key, body, _) in enumerate(requests_)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_concurrent_creates_are_each_answered_once_and_every_replica_agrees(cluster, test_image):
    wave = _bodies(test_image)
    first = _post_all(cluster, wave)
    ids: dict[str, str] = {}
    for key, _, field in wave:
        resp = first[key]
        if field is None:
            assert resp.status_code == 201, (key, resp.text)
            assert resp.json()["nodeId"], resp.text  # placed within the answer
            ids[key] = resp.json()["id"]
        else:
            assert resp.status_code == 400, (key, resp.text)
            assert resp.json()["field"] == field, (key, resp.text)
    assert len(set(ids.values())) == 16

    # The same keys again, all at once: each valid key answers its first task, nothing new.
    again = _post_all(cluster, [(k, b, f) for k, b, f in wave if f is None])
    assert {k: (r.status_code, r.json()["id"]) for k, r in again.items()} == {k: (200, i) for k, i in ids.items()}

    leader = cluster.wait(cluster.leader, 20, "a leader")
    index = int(leader.get("/raft").json()["commit_index"])
    views = []
    for node in cluster.nodes:
        resp = node.get(f"/tasks?index={index - 1}&wait=10s")
        assert resp.status_code == 200
        views.append(sorted((t["id"], t["name"], t["nodeId"], t["generation"], t["createdIndex"])
                            for t in resp.json()))
    assert views[0] == views[1] == views[2]
    assert sorted(t[0] for t in views[0]) == sorted(ids.values())
