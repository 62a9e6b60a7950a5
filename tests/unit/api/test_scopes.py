"""Who may do what: the scope table read through the app's own URL map, tokens from a file,
certificates, forwarded callers, and the 403 that names the scope needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from api_kit import full_app, registered_store
from flask.testing import FlaskClient
from test_openapi import METHODS

from orion.api.app import auth_of
from orion.api.auth import CALLER_HEADER, CALLER_PROOF_HEADER, subject_text
from orion.api.scopes import RULES, Identity, Scope, is_write, needed, template
from orion.api.tokens import TokenSource, token_hash

ADMIN, CI, VIEWER = "admin-token-0", "ci-token-1", "viewer-token-2"
TOKENS = f"""
[[token]]
name = "ci"
scope = "write"
sha256 = "{token_hash(CI)}"

[[token]]
name = "viewer"
scope = "read"
sha256 = "{token_hash(VIEWER)}"

[[certificate]]
subject = "CN=alice,O=ops"
name = "alice"
scope = "write"
"""


def routes(client: FlaskClient) -> list[tuple[str, str]]:
    """(METHOD, template) of every route the app serves: what the tests iterate, never a hand list."""
    return sorted({(method, template(rule.rule)) for rule in client.application.url_map.iter_rules()
                   if rule.endpoint != "static" for method in (rule.methods or set()) & METHODS})


def concrete(path: str) -> str:
    return path.replace("{addr}", "127.0.0.1:1").replace("{name}", "web").replace("{task_id}", "t1") \
        .replace("{node_id}", "node1")


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(TOKENS)
    return full_app(registered_store(), api_token=ADMIN, tokens=TokenSource(str(tokens), ADMIN),
                    peer_secret="raft-secret").test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(client: FlaskClient, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
    return client.open(concrete(path), method=method, headers=headers, json={} if is_write(method) else None, **kw)


def test_the_table_reads_before_it_writes() -> None:
    assert needed("GET", "/tasks") == Scope.READ
    assert needed("POST", "/tasks") == needed("PUT", "/services/{name}") == Scope.WRITE
    assert needed("POST", "/tasks/{task_id}/exec") == Scope.ADMIN
    assert needed("GET", "/cluster/members") == Scope.READ  # orion members
    assert needed("DELETE", "/cluster/members/{addr}") == Scope.ADMIN


def test_routes_not_written_yet_inherit_their_prefix_and_new_writes_are_never_open() -> None:
    """wt/secrets adds /secrets, /configs and /registries: admin by the one table, reads included."""
    for method in ("GET", "POST", "PUT", "DELETE"):
        for path in ("/secrets", "/secrets/{name}", "/configs/{name}/versions", "/registries/{server}"):
            assert needed(method, path) == Scope.ADMIN, (method, path)
    assert needed("POST", "/something/new") == Scope.WRITE
    assert needed("GET", "/secretsaurus") == Scope.READ  # a prefix is a path segment, not a string prefix


def test_every_rule_covers_something_the_app_serves_or_a_path_of_issue_21(client: FlaskClient) -> None:
    served = routes(client)
    for rule in RULES:
        if rule.path in ("/secrets", "/configs", "/registries"):
            continue
        assert any(rule.covers(m, p) for m, p in served), f"rule {rule.path} covers no route: stale"


def test_the_scope_table_through_the_url_map(client: FlaskClient) -> None:
    admin = {(m, p) for m, p in routes(client) if needed(m, p) == Scope.ADMIN}
    assert admin == {("POST", "/tasks/{task_id}/exec"), ("POST", "/nodes/{node_id}/drain"),
                     ("POST", "/cluster/members"), ("DELETE", "/cluster/members/{addr}"),
                     ("GET", "/operator/snapshot"), ("PUT", "/operator/snapshot")}
    for method, path in routes(client):
        if (method, path) not in admin:
            assert needed(method, path) == (Scope.WRITE if is_write(method) else Scope.READ)


def test_a_read_token_gets_403_on_every_write_and_reads_all_but_admins_reads(client: FlaskClient) -> None:
    for method, path in routes(client):
        resp = call(client, method, path, bearer(VIEWER))
        if is_write(method):
            needs = needed(method, path).label
            assert resp.status_code == 403, (method, path, resp.status_code)
            assert resp.json["needed"] == needs and resp.json["scope"] == "read"
            assert resp.json["field"] == "Authorization" and f"needs {needs}" in resp.json["error"]
        else:
            assert (resp.status_code == 403) == (needed(method, path) == Scope.ADMIN), (method, path)


def test_a_write_token_is_refused_admin_routes_only(client: FlaskClient) -> None:
    for method, path in routes(client):
        resp = call(client, method, path, bearer(CI))
        refused = needed(method, path) == Scope.ADMIN
        assert (resp.status_code == 403) == refused, (method, path, resp.status_code)


def test_the_default_token_is_admin_and_an_unknown_token_is_401(client: FlaskClient) -> None:
    assert client.post("/nodes/node1/drain", headers=bearer(ADMIN)).status_code == 202
    assert client.get("/tasks", headers=bearer("nope")).status_code == 401
    assert client.get("/tasks").status_code == 401
    assert client.get("/health").status_code == 200


class PeerSocket:
    """What gunicorn puts in the environ over mTLS: ``getpeercert`` of the client's certificate."""

    def __init__(self, subject: tuple) -> None:
        self.subject = subject

    def getpeercert(self) -> dict[str, Any]:
        return {"subject": self.subject}


ALICE = ((("organizationName", "ops"),), (("commonName", "alice"),))
MALLORY = ((("commonName", "mallory"),),)


def test_a_listed_certificate_is_a_credential_and_an_unlisted_one_is_not(client: FlaskClient) -> None:
    assert subject_text(ALICE) == "CN=alice,O=ops"
    alice = {"gunicorn.socket": PeerSocket(ALICE)}
    assert client.post("/tasks", json={"image": "x", "memory": "8M"}, environ_base=alice).status_code == 201
    resp = client.post("/nodes/node1/drain", environ_base=alice)
    assert (resp.status_code, resp.json["scope"]) == (403, "write")
    assert client.get("/tasks", environ_base={"gunicorn.socket": PeerSocket(MALLORY)}).status_code == 401
    # A token decides over a listed certificate: the viewer's token with alice's certificate reads only.
    assert client.post("/tasks", json={}, headers=bearer(VIEWER), environ_base=alice).status_code == 403


def test_subjects_are_escaped_as_rfc_4514_writes_them() -> None:
    assert subject_text(((("commonName", "a,b+c"),), (("organizationName", " x"),))) == "O=\\ x,CN=a\\,b\\+c"


def test_a_forwarded_caller_is_believed_only_with_the_raft_secrets_proof(client: FlaskClient) -> None:
    auth = auth_of(client.application)
    viewer = Identity("viewer", Scope.READ, "token")
    headers = {**bearer(ADMIN), **auth.vouch(viewer, "DELETE", "/tasks/t1")}
    resp = client.delete("/tasks/t1", headers=headers)  # the peer is admin, the caller it vouches for is not
    assert (resp.status_code, resp.json["scope"]) == (403, "read")
    forged = {**headers, CALLER_PROOF_HEADER: "0" * 64}
    resp = client.delete("/tasks/t1", headers=forged)
    assert resp.status_code == 403 and CALLER_HEADER in resp.json["error"]
    moved = {**bearer(ADMIN), **auth.vouch(viewer, "GET", "/tasks/t2")}  # a proof is bound to its path
    assert client.get("/tasks/t1", headers=moved).status_code == 403
    assert client.get("/tasks/t2", headers=moved).status_code == 404
    # A vouched caller never gets more than the peer that vouches: a read peer cannot lend admin.
    boss = {**bearer(VIEWER), **auth.vouch(Identity("boss", Scope.ADMIN, "token"), "DELETE", "/tasks/t1")}
    assert client.delete("/tasks/t1", headers=boss).json["scope"] == "read"


def test_without_any_token_everyone_is_anonymous_admin() -> None:
    client = full_app(registered_store()).test_client()
    assert client.post("/nodes/node1/drain").status_code == 202
