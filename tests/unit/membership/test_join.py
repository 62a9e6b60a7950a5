"""The joining side against a member of the release before camelCase bodies (a rolling
upgrade that adds a host): it refuses ``{"nodeId", "raftAddr"}`` naming ``raft_addr``,
and the joiner asks again in its words. The member here is that release's check and
answer, served over real HTTP; today's member is exercised by tests/integration/test_raft_join.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from orion.membership.join import JoinClient, join_proof
from orion.peer_http import PeerHttp

SECRET = "join-test"
JOINER = "127.0.0.1:7001"


@pytest.fixture
def old_member() -> Iterator[tuple[str, list[dict]]]:
    app = Flask("old-member")
    seen: list[dict] = []

    @app.post("/cluster/members")
    def admit():  # noqa: ANN202
        body = request.get_json(silent=True)
        seen.append(body)
        if not isinstance(body, dict) or not isinstance(body.get("raft_addr"), str):
            return jsonify({"error": "body must be a JSON object with raft_addr", "field": "raft_addr"}), 400
        if body.get("proof") != join_proof(SECRET, body["raft_addr"]):
            return jsonify({"error": "join proof does not match", "field": "proof"}), 403
        return jsonify({"role": "replica", "reason": "5 voters already", "members": ["127.0.0.1:7000"]})

    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_port}", seen
    httpd.shutdown()
    httpd.server_close()


def test_a_member_of_the_previous_release_is_asked_again_in_its_words(old_member):
    target, seen = old_member
    client = JoinClient("n9", JOINER, SECRET, [target], peer=PeerHttp(scheme="http"))
    admitted = client.request_admission(timeout=2)
    assert (admitted.role, admitted.members) == ("replica", ["127.0.0.1:7000"])
    assert [sorted(b) for b in seen] == [["nodeId", "proof", "raftAddr"], ["node_id", "proof", "raft_addr"]]
