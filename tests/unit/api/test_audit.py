"""The audit log: a record's shape, redaction (a secret never lands in it), one line per write
and none per read, and rotation keeping N files on a real file system."""

from __future__ import annotations

import json
from pathlib import Path

from api_kit import full_app, registered_store
from hypothesis import given, settings
from hypothesis import strategies as st
from test_scopes import ADMIN, TOKENS, VIEWER, bearer

from orion.api.audit import REDACTED, exec_record, redact, request_record, summarize
from orion.api.audit_file import AuditLog
from orion.api.scopes import Identity, Scope
from orion.api.tokens import TokenSource

SECRET = "hunter2-do-not-log"


def test_credential_like_fields_and_env_values_are_redacted_keeping_their_names() -> None:
    body = {"image": "db", "env": {"DB_PASSWORD": SECRET, "MODE": SECRET},
            "healthCheck": {"http": "/", "headers": {"Authorization": SECRET}},
            "registry": {"username": "u", "password": SECRET, "identityToken": SECRET},
            "nested": [{"apiKey": SECRET, "value": SECRET}]}
    out = redact(body)
    assert SECRET not in json.dumps(out)
    assert out["env"] == {"DB_PASSWORD": REDACTED, "MODE": REDACTED}
    assert out["registry"]["username"] == "u" and out["image"] == "db"


def test_under_secrets_and_registries_only_the_keys_remain() -> None:
    body = json.dumps({"name": "db", "value": SECRET, "labels": {"a": SECRET}}).encode()
    for path in ("/secrets", "/secrets/db", "/registries"):
        assert summarize(body, path) == {"name": REDACTED, "value": REDACTED, "labels": REDACTED}
    assert summarize(json.dumps([SECRET]).encode(), "/secrets") == REDACTED
    assert summarize(SECRET.encode(), "/tasks") == {"notJson": len(SECRET)}  # a broken body is only measured
    assert summarize(b"", "/tasks") is None


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                max_size=4), max_leaves=30))
def test_a_value_under_a_password_key_never_survives_anywhere_in_a_body(shape: object) -> None:
    body = {"wrapper": [shape, {"password": SECRET}], "env": {"X": SECRET}, "deep": {"a": {"b": {"token": SECRET}}}}
    assert SECRET not in json.dumps(redact(body))


def test_long_things_are_cut() -> None:
    out = redact({"command": ["x" * 1000] + ["y"] * 100})
    assert len(out["command"]) == 51 and out["command"][-1] == "... 51 more"
    assert out["command"][0].endswith("(1000 characters)")


def test_a_record_says_who_what_when_and_the_answer() -> None:
    who = Identity("ci", Scope.WRITE, "token", certificate="CN=runner", via="node2")
    record = request_record(now=0.5, node="node1", identity=who, remote="10.0.0.7", method="PUT",
                            path="/v1/services/web", resource={"name": "web"}, query={"token": SECRET},
                            body={"image": "x"}, status=201, created=["web"])
    assert record == {"time": "1970-01-01T00:00:00.500Z", "node": "node1", "who": "ci", "scope": "write",
                      "auth": "token", "certificate": "CN=runner", "via": "node2", "remote": "10.0.0.7",
                      "method": "PUT", "path": "/v1/services/web", "resource": {"name": "web"},
                      "query": {"token": REDACTED}, "body": {"image": "x"}, "status": 201, "created": ["web"]}
    refused = request_record(now=0, node="n", identity=None, remote="", method="POST", path="/tasks", resource={},
                             query={}, body=None, status=401)
    assert (refused["who"], refused["auth"]) == (None, "unauthenticated") and "body" not in refused


def test_an_exec_record_has_the_command_and_at_its_end_the_exit_code() -> None:
    who = Identity("ops", Scope.ADMIN, "token")
    start = exec_record(now=0, node="n1", identity=who, remote="", task="t1", command=["sh", "-c", "exit 3"],
                        tty=False, phase="start", ran_on="n2")
    assert "exitCode" not in start and start["command"] == ["sh", "-c", "exit 3"] and start["ranOn"] == "n2"
    end = exec_record(now=0, node="n1", identity=who, remote="", task="t1", command=["sh"], tty=True,
                      phase="end", exit_code=3, seconds=1.23456)
    assert (end["action"], end["phase"], end["exitCode"], end["seconds"]) == ("exec", "end", 3, 1.235)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rotation_keeps_n_files_each_under_the_size_and_the_newest_lines(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", max_bytes=1000, files=3)
    for i in range(200):
        log.write({"i": i, "pad": "x" * 50})
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["audit.log", "audit.log.1", "audit.log.2"]
    for name in names:
        assert 0 < (tmp_path / name).stat().st_size <= 1000
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    kept = lines(tmp_path / "audit.log.2") + lines(tmp_path / "audit.log.1") + lines(tmp_path / "audit.log")
    assert [r["i"] for r in kept] == list(range(200 - len(kept), 200))  # in order, the newest kept


def test_one_file_kept_means_the_current_one_only(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", max_bytes=200, files=1)
    for i in range(20):
        log.write({"i": i, "pad": "x" * 50})
    assert [p.name for p in tmp_path.iterdir()] == ["audit.log"]
    assert lines(tmp_path / "audit.log")[-1]["i"] == 19


def test_one_line_per_write_with_the_caller_none_per_read_and_never_a_secret(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(TOKENS)
    log = AuditLog(tmp_path / "audit.log", 1 << 20, 2)
    client = full_app(registered_store(), api_token=ADMIN, tokens=TokenSource(str(tokens), ADMIN),
                      audit=log).test_client()
    task = {"image": "db", "memory": "8M", "env": {"DB_PASSWORD": SECRET}}
    assert client.post("/tasks", json=task, headers=bearer(ADMIN)).status_code == 201
    assert client.get("/tasks", headers=bearer(ADMIN)).status_code == 200
    assert client.post("/tasks", json=task, headers=bearer(VIEWER)).status_code == 403
    assert client.post("/secrets", json={"name": "db", "value": SECRET}, headers=bearer(ADMIN)).status_code == 404
    assert client.delete("/tasks/t1").status_code == 401
    assert client.post("/tasks", data=f'{{"image": "{SECRET}"', content_type="application/json",
                       headers=bearer(ADMIN)).status_code == 400
    records = lines(tmp_path / "audit.log")
    assert [(r["who"], r["method"], r["path"], r["status"]) for r in records] == [
        ("default", "POST", "/tasks", 201), ("viewer", "POST", "/tasks", 403), ("default", "POST", "/secrets", 404),
        (None, "DELETE", "/tasks/t1", 401), ("default", "POST", "/tasks", 400)]
    assert records[0]["created"] == ["t1"] and records[0]["body"]["env"] == {"DB_PASSWORD": REDACTED}
    assert records[2]["body"] == {"name": REDACTED, "value": REDACTED}
    assert SECRET not in (tmp_path / "audit.log").read_text()


def test_a_body_the_audit_may_not_read_is_left_to_its_route_and_only_measured(tmp_path: Path) -> None:
    """A snapshot restore takes a file far over max_body_bytes (its route raises its own limit):
    the audit reads JSON within the limit only, so the restore still works, and records the size."""
    import secrets

    from orion.domain.model import TaskSpec
    from orion.state.commands import CreateTask, NameCluster

    store = registered_store()
    store.submit(NameCluster(cluster_id="c-1"), 1.0)
    for i in range(300):  # incompressible: ~8 KB of random env per task
        store.submit(CreateTask(request_id=f"big{i}", task_id=f"big{i}", spec=TaskSpec(
            "app:1", 1 << 20, env=(("NOISE", secrets.token_hex(4096)),))), 1.0)
    log = AuditLog(tmp_path / "audit.log", 1 << 20, 2)
    client = full_app(store, audit=log).test_client()
    saved = client.get("/v1/operator/snapshot").data
    assert len(saved) > 2 << 20
    assert client.put("/v1/operator/snapshot", data=saved).status_code == 200
    assert client.post("/v1/tasks", data=b"x" * (2 << 20), content_type="application/json").status_code == 413
    restore, too_big = lines(tmp_path / "audit.log")
    assert (restore["status"], restore["body"]) == (200, {"unread": len(saved), "contentType": ""})
    assert (too_big["status"], too_big["body"]["unread"]) == (413, 2 << 20)
