"""Read-your-writes across nodes on a real 3-node cluster (issue #20).

A client writes through node A and, at once, reads through node B: with
linearizable reads (the default, Raft's ReadIndex) B answers only once its
replica has applied what the leader had committed when the read arrived, which
includes the write A acknowledged. 1,000 times in a row, every pair of nodes,
the leader on either side.

The register is one service whose spec carries the value in an in-place field
(``healthCheck.exec[1]``: a new value starts no rollout) and whose one replica
matches no node, so no container is ever made: the test measures reads, not Docker.
The same loop with ``?stale`` reads counts how often a replica answered before
it applied the write — printed, not asserted (on an idle loopback it is often 0):
it shows what the default read prevents.
"""

from __future__ import annotations

import itertools
import uuid

import pytest
from harness import Cluster

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

ROUNDS = 1000
NOWHERE = {"orion-ryw": "nowhere"}


def spec(value: str, image: str) -> dict:
    return {"image": image, "memory": "8M", "count": 1, "nodeSelectors": NOWHERE,
            "healthCheck": {"exec": ["true", value], "interval": "1m"}}


def written(cluster: Cluster, name: str, image: str, stale: bool) -> tuple[int, list[str]]:
    """ROUNDS writes through one node, each read at once through another; (misses, examples)."""
    pairs = itertools.cycle([(a, b) for a in cluster.nodes for b in cluster.nodes if a is not b])
    misses, examples = 0, []
    for i in range(ROUNDS):
        writer, reader = next(pairs)
        value = f"{i}-{uuid.uuid4().hex[:6]}"
        put = writer.put(f"/services/{name}", json=spec(value, image))
        assert put.status_code in (200, 201), put.text
        got = reader.get(f"/services/{name}" + ("?stale" if stale else ""))
        assert got.status_code in (200, 404) if stale else got.status_code == 200, got.text
        seen = got.json()["spec"]["healthCheck"]["exec"][1] if got.status_code == 200 else None
        if seen != value:
            misses += 1
            if len(examples) < 5:
                examples.append(f"round {i}: wrote {value} via {writer.id}, {reader.id} answered {seen} "
                                f"(X-Orion-Index {got.headers.get('X-Orion-Index')})")
    return misses, examples


def test_a_write_through_one_node_is_read_at_once_through_another_1000_times(cluster, test_image):
    name = f"ryw-{uuid.uuid4().hex[:6]}"
    misses, examples = written(cluster, name, test_image, stale=False)
    assert misses == 0, f"{misses} of {ROUNDS} reads did not see the write just acknowledged:\n" + "\n".join(examples)
    stale_misses, stale_examples = written(cluster, name, test_image, stale=True)
    print(f"?stale reads that missed the write just made: {stale_misses} of {ROUNDS}",
          *stale_examples, sep="\n")


def test_every_answer_says_where_it_came_from(cluster):
    leader = cluster.wait(cluster.leader, 20, "a leader")
    for node in cluster.nodes:
        resp = node.get("/tasks")
        assert resp.status_code == 200 and int(resp.headers["X-Orion-Index"]) >= 0
        assert resp.headers["X-Orion-Known-Leader"] == "true"
        contact = int(resp.headers["X-Orion-Last-Contact"])
        assert contact == 0 if node is leader else 0 <= contact < 1000, (node.id, contact)
