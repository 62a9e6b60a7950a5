"""GET /tasks/<id>/logs over a real StateMachine: read here, forwarded to the node that runs
the task (a real HTTP server on loopback), followed, bounded, refused with reasons.

The engine's log stream is scripted (tests/log_kit.py); tests/integration/test_logs_volumes.py
reads real containers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from log_kit import NOW, Cluster

from orion.api.schema.problems import ValidationError
from orion.api.schema.queries import parse_log_query, parse_since
from orion.domain.model import NodeInfo, Resources
from orion.runtime import LogQuery
from orion.state.commands import RegisterNode

GiB = 1 << 30


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    yield c
    c.close()


# -- reading ---------------------------------------------------------------------------------------


def test_a_task_on_this_node_is_read_from_its_engine(cluster):
    cluster.task("t1", "node1", "c1")
    resp = cluster.get("/tasks/t1/logs?tail=5&timestamps=1&since=10m")
    assert (resp.status_code, resp.data, resp.mimetype) == (200, b"one\ntwo\n", "text/plain")
    assert resp.headers["X-Orion-Node"] == "node1"
    assert cluster.engine1.queries == [LogQuery(tail=5, since=NOW - 600, follow=False, timestamps=True)]


def test_a_task_on_another_node_is_forwarded_with_the_cluster_token(cluster):
    cluster.task("t2", "node2", "c2")
    resp = cluster.get("/tasks/t2/logs?since=10m&tail=1")
    assert (resp.status_code, resp.data, resp.headers["X-Orion-Node"]) == (200, b"from node2\n", "node2")
    # The first node resolved "10m" on its clock; the owner was asked for an absolute time.
    assert cluster.engine2.queries == [LogQuery(tail=1, since=NOW - 600)]
    assert cluster.engine1.queries == []


def test_unknown_task_404_and_no_container_yet_409_naming_why(cluster):
    missing = cluster.get("/tasks/nope/logs")
    assert (missing.status_code, missing.json["field"]) == (404, "id")
    cluster.task("waiting")
    pending = cluster.get("/tasks/waiting/logs")
    assert pending.status_code == 409 and pending.json["field"] == "id"
    assert pending.json["error"].startswith("task waiting has no container yet: it is pending")
    cluster.task("placed", "node2")
    assigned = cluster.get("/tasks/placed/logs")
    assert assigned.status_code == 409 and "assigned on node node2" in assigned.json["error"]


def test_a_removed_container_is_409_and_the_owners_refusal_is_passed_on(cluster):
    cluster.task("old", "node1", "gone-here")
    here = cluster.get("/tasks/old/logs")
    assert here.status_code == 409 and "the container of task old is gone" in here.json["error"]
    cluster.task("old2", "node2", "gone-there")
    there = cluster.get("/tasks/old2/logs")
    assert there.status_code == 409 and "the container of task old2 is gone" in there.json["error"]


def test_an_owner_that_does_not_answer_is_502_naming_it(cluster):
    cluster.submit(RegisterNode(node=NodeInfo("node3", "127.0.0.1:1", "node3:7000",
                                              capacity=Resources(8 * GiB, 4000))))
    cluster.task("t3", "node3", "c3")
    resp = cluster.get("/tasks/t3/logs")
    assert resp.status_code == 502 and "node node3 (127.0.0.1:1)" in resp.json["error"]


def test_a_forwarded_request_is_never_forwarded_again(cluster):
    cluster.task("t2", "node2", "c2")
    resp = cluster.get("/tasks/t2/logs", headers={"X-Orion-Forwarded": "node3"})
    assert resp.status_code == 409 and "runs on node node2, not on node1" in resp.json["error"]


@pytest.mark.parametrize("query,field", [
    ("tail=-1", "tail"), ("tail=ten", "tail"), ("follow=maybe", "follow"), ("timestamps=2", "timestamps"),
    ("since=yesterday", "since"),
])
def test_bad_parameters_are_400_naming_them(cluster, query, field):
    cluster.task("t1", "node1", "c1")
    resp = cluster.get(f"/tasks/t1/logs?{query}")
    assert (resp.status_code, resp.json["field"]) == (400, field)


def test_since_reads_seconds_rfc3339_and_durations():
    assert parse_since("1700000000.5", NOW) == 1_700_000_000.5
    assert parse_since("2023-11-14T22:13:20Z", NOW) == NOW
    assert parse_since("2023-11-14T23:13:20+01:00", NOW) == NOW
    assert parse_since("1h30m", NOW) == NOW - 5400 and parse_since("", NOW) is None
    assert parse_log_query({"tail": "all", "follow": "true"}, NOW) == LogQuery(follow=True)
    with pytest.raises(ValidationError):
        parse_since("-5", NOW)


# -- following -------------------------------------------------------------------------------------


def lines(resp) -> Iterator[bytes]:
    return iter(resp.response)


def test_follow_streams_what_is_written_after_the_request_started(cluster):
    cluster.task("t1", "node1", "c1")
    resp = cluster.get("/tasks/t1/logs?follow=1", buffered=False)
    assert resp.status_code == 200
    chunks = lines(resp)
    assert [next(chunks), next(chunks)] == [b"one\n", b"two\n"]
    cluster.engine1.streams[-1].feed(b"three\n")
    assert next(chunks) == b"three\n"
    cluster.engine1.streams[-1].feed(None)  # the container ended: so does the answer
    assert list(chunks) == []
    resp.close()


def test_follows_are_bounded_per_node_and_a_closed_one_frees_its_slot(cluster):
    cluster.task("t1", "node1", "c1")
    first = cluster.get("/tasks/t1/logs?follow=1", buffered=False)
    assert first.status_code == 200
    second = cluster.get("/tasks/t1/logs?follow=1")
    assert second.status_code == 429 and "max_log_follows" in second.json["error"]
    assert second.headers["Retry-After"]
    assert cluster.get("/tasks/t1/logs").status_code == 200  # reading without follow is never limited
    first.close()  # the client went away: its engine stream is closed, the slot is free again
    assert cluster.engine1.streams[0].closed.wait(5)
    third = cluster.get("/tasks/t1/logs?follow=1", buffered=False)
    assert third.status_code == 200
    third.close()


def test_follow_through_a_node_that_forwards(cluster):
    cluster.task("t2", "node2", "c2")
    resp = cluster.get("/tasks/t2/logs?follow=1", buffered=False)
    assert (resp.status_code, resp.headers["X-Orion-Node"]) == (200, "node2")
    chunks = lines(resp)
    assert next(chunks) == b"from node2\n"
    cluster.engine2.streams[-1].feed(b"later\n")
    assert next(chunks) == b"later\n"
    resp.close()  # node1 shuts its connection to node2 down
    # node2 (a werkzeug server here, so no idle check of its client: gunicorn's socket is what
    # that needs, see the integration test) finds its client gone at its next write, and closes.
    stream = cluster.engine2.streams[-1]
    for _ in range(50):
        stream.feed(b"unread\n")
        if stream.closed.wait(0.1):
            break
    assert stream.closed.is_set()


def test_an_owner_at_its_limit_answers_429_and_the_forwarding_node_keeps_no_slot(cluster):
    cluster.task("t1", "node1", "c1")
    cluster.task("t2", "node2", "c2")
    owner = f"http://127.0.0.1:{cluster.server.server_port}/tasks/t2/logs"
    held = [requests.get(owner, params={"follow": "1"}, headers=cluster.headers, stream=True, timeout=5)
            for _ in range(2)]  # node2's two slots
    assert [r.status_code for r in held] == [200, 200]
    refused = cluster.get("/tasks/t2/logs?follow=1")
    assert refused.status_code == 429 and "node node2 already streams 2" in refused.json["error"]
    assert refused.headers["Retry-After"]
    mine = cluster.get("/tasks/t1/logs?follow=1", buffered=False)  # node1's one slot was given back
    assert mine.status_code == 200
    mine.close()
    for r in held:
        r.close()
