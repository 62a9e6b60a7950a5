"""``orion stack deploy`` with compose secrets and configs, against the real app on a loopback socket
(``ServiceWorld`` with the secrets API and a cluster key): the stack's secret is created before
the service that reads it, a re-deploy changes nothing, a changed file makes one new version that
the service rolls to, a missing external one refuses before any change, ``--prune`` keeps them,
and the value is never in what the CLI prints."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_kit import KEYRING
from click.testing import CliRunner, Result
from service_world import ServiceWorld
from werkzeug.serving import make_server

from orion.api.app import applied_signal
from orion.api.secrets import secrets_blueprint
from orion.cli.main import main
from orion.domain.sealing import open_sealed

VALUE = "correct-horse-battery-staple"
COMPOSE = """
name: shop
services:
  web:
    image: app:1
    mem_limit: 32m
    secrets: [db, {source: api_key, target: /etc/api.key, mode: 0440, uid: "100"}]
    configs: [site.conf]
secrets:
  db: {file: ./db_password.txt}
  api_key: {environment: API_KEY}
configs:
  site.conf: {content: "listen 80"}
"""


@pytest.fixture
def served() -> Iterator[tuple[ServiceWorld, str]]:
    world = ServiceWorld()
    app = world.http.application
    app.register_blueprint(secrets_blueprint(world.store, 5.0, applied_signal(app), KEYRING))
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield world, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()
    httpd.server_close()


def orion(addr: str, *args: str, key: str = "k3y-" + VALUE) -> Result:
    runner = CliRunner(env={"ORION_ADDR": "", "ORION_API_TOKEN": "", "API_KEY": key})
    result = runner.invoke(main, ["--addr", addr, *args])
    assert VALUE not in result.output and "Traceback" not in result.output, result.output
    return result


def compose(tmp_path: Path, text: str = COMPOSE, value: str = VALUE) -> str:
    (tmp_path / "db_password.txt").write_text(value)
    path = tmp_path / "docker-compose.yml"
    path.write_text(text)
    return str(path)


def stored(world: ServiceWorld, kind: str, name: str):
    return world.store.read(lambda m: m.secrets.get(kind, name))[0]


def test_deploy_creates_the_secrets_before_the_service_that_reads_them_then_changes_nothing(served, tmp_path):
    world, addr = served
    path = compose(tmp_path)
    first = orion(addr, "stack", "deploy", "-f", path)
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[:4] == ["secret shop_db: create (from secrets.db)",
                                             "secret shop_api_key: create (from secrets.api_key)",
                                             "config shop_site.conf: create (from configs.site.conf)",
                                             "shop_web: create with 1 replica(s)"]
    assert "secret shop_db: version 1" in first.stdout
    secret = stored(world, "secret", "shop_db").current
    assert open_sealed(KEYRING, secret.data, "secret", "shop_db") == VALUE.encode()
    spec = world.http.get("/services/shop_web").json["spec"]
    assert spec["secrets"] == [{"source": "shop_api_key", "target": "/etc/api.key", "mode": "0440", "uid": 100,
                                "gid": 0},
                               {"source": "shop_db", "target": "/run/secrets/db", "mode": "0400", "uid": 0, "gid": 0}]
    assert spec["configs"] == [{"source": "shop_site.conf", "target": "/site.conf", "mode": "0444", "uid": 0,
                                "gid": 0}]
    assert world.http.get("/secrets/shop_db").json["usedBy"] == ["shop_web"]
    world.settle()
    again = orion(addr, "stack", "deploy", "-f", path)
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        "secret shop_db: exists (version 1); a new version only if the value changed (the cluster compares it)",
        "secret shop_api_key: exists (version 1); a new version only if the value changed (the cluster compares it)",
        "config shop_site.conf: unchanged (version 1)", "shop_web: unchanged (version 1)", "stack shop: no change"]
    assert stored(world, "secret", "shop_db").current.version == 1
    assert world.http.get("/services/shop_web").json["version"] == 1


def test_a_changed_value_is_one_new_version_and_the_service_rolls_to_it(served, tmp_path):
    world, addr = served
    orion(addr, "stack", "deploy", "-f", compose(tmp_path))
    world.settle()
    changed = orion(addr, "stack", "deploy", "-f", compose(tmp_path, value=VALUE + "-2"))
    assert changed.exit_code == 0, changed.output
    assert "secret shop_db: version 2; rolling service(s) shop_web to it" in changed.stdout
    assert stored(world, "secret", "shop_api_key").current.version == 1
    assert world.http.get("/services/shop_web").json["version"] == 2


def test_dry_run_and_json_show_the_plan_without_the_value_and_change_nothing(served, tmp_path):
    world, addr = served
    path = compose(tmp_path)
    dry = orion(addr, "stack", "deploy", "-f", path, "--dry-run")
    assert dry.exit_code == 0 and "secret shop_db: create (from secrets.db)" in dry.stdout
    as_json = json.loads(orion(addr, "stack", "deploy", "-f", path, "--dry-run", "--json").stdout)
    assert as_json["objects"][0] == {"kind": "secret", "name": "shop_db", "action": "create", "version": None}
    assert world.http.get("/secrets").json == [] and world.http.get("/services").json == []


def test_a_missing_external_secret_refuses_before_any_change(served, tmp_path):
    world, addr = served
    text = COMPOSE.replace("api_key: {environment: API_KEY}", "api_key: {external: true}")
    refused = orion(addr, "stack", "deploy", "-f", compose(tmp_path, text))
    assert refused.exit_code == 1
    assert "secrets.api_key: external secret api_key does not exist; create it first" in refused.stderr
    assert world.http.get("/secrets").json == [] and world.http.get("/services").json == []
    orion(addr, "secret", "create", "api_key", "-f", str(tmp_path / "db_password.txt"))
    used = orion(addr, "stack", "deploy", "-f", compose(tmp_path, text))
    assert used.exit_code == 0 and "secret api_key: external, used as it is (version 1)" in used.stdout
    assert world.http.get("/secrets/api_key").json["usedBy"] == ["shop_web"]


def test_prune_keeps_the_stack_s_secrets_as_swarm_does(served, tmp_path):
    world, addr = served
    orion(addr, "stack", "deploy", "-f", compose(tmp_path))
    without_web = COMPOSE.replace("  web:\n", "  other:\n").replace("    secrets: [db, {source: api_key, target: "
                                                                    "/etc/api.key, mode: 0440, uid: \"100\"}]\n", "")
    pruned = orion(addr, "stack", "deploy", "-f", compose(tmp_path, without_web), "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert "shop_web: remove (not in the file)" in pruned.stdout
    assert {s["name"] for s in world.http.get("/secrets").json} == {"shop_db", "shop_api_key"}
