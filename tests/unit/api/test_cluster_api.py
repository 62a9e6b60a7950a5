"""The member side of joining (orion/api/cluster.py) over the in-process store:
who may change the voters, and what a joiner is told (a role, never a refusal)."""

from __future__ import annotations

from flask import Flask

from orion.api.cluster import cluster_blueprint
from orion.membership.join import join_proof
from orion.store.local import LocalStore

SECRET = "s3cret"


def client(store: LocalStore, voter_cap: int = 3):
    app = Flask("test")
    app.register_blueprint(cluster_blueprint(store, SECRET, voter_cap, 1.0, ready=lambda: True))
    return app.test_client()


def test_a_joiner_with_the_proof_becomes_a_voter_and_sees_the_members():
    store = LocalStore(self_addr="10.0.0.1:7000")
    c = client(store)
    body = c.get("/cluster/members").get_json()
    assert body["members"] == ["10.0.0.1:7000"] and body["voterCap"] == 3 and body["ready"] is True
    resp = c.post("/cluster/members", json={"nodeId": "n2", "raftAddr": "10.0.0.2:7000",
                                             "proof": join_proof(SECRET, "10.0.0.2:7000")})
    assert resp.status_code == 200 and resp.get_json()["role"] == "voter"
    assert resp.get_json()["members"] == store.members() == ["10.0.0.1:7000", "10.0.0.2:7000"]


def test_without_the_raft_secret_nobody_is_added_or_removed():
    store = LocalStore(self_addr="10.0.0.1:7000")
    c = client(store)
    resp = c.post("/cluster/members", json={"raftAddr": "10.0.0.9:7000", "proof": join_proof("guess", "x")})
    assert resp.status_code == 403 and resp.get_json()["field"] == "proof"
    resp = c.delete("/cluster/members/10.0.0.1:7000", headers={"X-Orion-Join-Proof": "nope"})
    assert resp.status_code == 403
    assert store.members() == ["10.0.0.1:7000"]


def test_beyond_the_voter_cap_a_joiner_is_told_to_be_a_replica_and_asking_again_changes_nothing():
    store = LocalStore(self_addr="a:1")
    c = client(store, voter_cap=1)
    for _ in range(2):
        resp = c.post("/cluster/members", json={"raftAddr": "b:1", "proof": join_proof(SECRET, "b:1")})
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["role"] == "replica" and resp.get_json()["members"] == ["a:1"]
    assert store.members() == ["a:1"]


def test_a_voter_asking_again_is_told_voter_again():
    store = LocalStore(self_addr="a:1")
    c = client(store, voter_cap=2)
    answers = [c.post("/cluster/members", json={"raftAddr": "b:1", "proof": join_proof(SECRET, "b:1")})
               .get_json()["role"] for _ in range(2)]
    assert answers == ["voter", "voter"] and store.members() == ["a:1", "b:1"]
    # The cap is reached now, yet b is still a voter; c becomes a replica.
    third = c.post("/cluster/members", json={"raftAddr": "c:1", "proof": join_proof(SECRET, "c:1")})
    assert third.get_json()["role"] == "replica"


def test_a_member_that_does_not_lead_and_cannot_forward_says_so_with_503():
    store = LocalStore(self_addr="a:1")
    store.leader = False
    resp = client(store).post("/cluster/members", json={"raftAddr": "b:1", "proof": join_proof(SECRET, "b:1")})
    assert resp.status_code == 503 and "not the Raft leader" in resp.get_json()["error"]
    assert store.members() == ["a:1"]


def test_a_member_leaves_with_its_proof():
    store = LocalStore(self_addr="a:1")
    store.change_membership("add", "b:1", 1.0)
    resp = client(store).delete("/cluster/members/b:1", headers={"X-Orion-Join-Proof": join_proof(SECRET, "b:1")})
    assert resp.status_code == 200 and resp.get_json()["members"] == ["a:1"]


def test_an_admission_body_is_camel_case_and_a_typo_is_named():
    """The seed's snake_case keys (raft_addr) are refused naming the camelCase field meant,
    as every other body does; the join client sends camelCase (orion/membership/join.py)."""
    c = client(LocalStore(self_addr="10.0.0.1:7000"))
    resp = c.post("/cluster/members", json={"raft_addr": "10.0.0.2:7000", "proof": join_proof(SECRET, "x")})
    assert resp.status_code == 400 and resp.get_json()["field"] == "raft_addr"
    assert "did you mean 'raftAddr'" in resp.get_json()["error"]
    resp = c.post("/cluster/members", json={"proof": "p"})
    assert (resp.status_code, resp.get_json()["field"]) == (400, "raftAddr")
    assert c.post("/cluster/members", data="nope").status_code == 400


def test_a_proof_in_non_ascii_characters_is_refused_not_a_crash():
    """hmac.compare_digest raises TypeError on a str with non-ASCII characters (found by the contract test)."""
    c = client(LocalStore(self_addr="10.0.0.1:7000"))
    resp = c.post("/cluster/members", json={"raftAddr": "10.0.0.2:7000", "proof": "é"})
    assert (resp.status_code, resp.get_json()["field"]) == (403, "proof")
    resp = c.delete("/cluster/members/10.0.0.1:7000", headers={"X-Orion-Join-Proof": "é".encode().decode("latin-1")})
    assert resp.status_code == 403
