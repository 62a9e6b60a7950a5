"""``orion stack ...`` against the real app on a loopback socket (``ServiceWorld``: a LocalStore
and the real deployment loop, driven by the test)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from service_world import WEB, ServiceWorld
from werkzeug.serving import make_server

from orion.cli.main import main

COMPOSE = """
name: shop
services:
  web:
    image: app:${TAG:-1}
    environment: {MODE: "${MODE}"}
    deploy: {replicas: 2, resources: {limits: {memory: 64M}}}
    healthcheck: {test: ["CMD", "true"], interval: 2s}
  worker:
    image: app:1
    command: ["work"]
    mem_limit: 32m
"""


@pytest.fixture
def served() -> Iterator[tuple[ServiceWorld, str]]:
    world = ServiceWorld()
    httpd = make_server("127.0.0.1", 0, world.http.application, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield world, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()
    httpd.server_close()


def orion(addr: str, *args: str, env: dict[str, str] | None = None) -> Result:
    runner = CliRunner(env={"ORION_ADDR": "", "ORION_API_TOKEN": "", "TAG": None, "MODE": None, **(env or {})})
    return runner.invoke(main, ["--addr", addr, *args])


def compose(tmp_path: Path, text: str = COMPOSE, dotenv: str = "MODE=prod\n") -> str:
    (tmp_path / ".env").write_text(dotenv)
    path = tmp_path / "docker-compose.yml"
    path.write_text(text)
    return str(path)


def versions(world: ServiceWorld) -> dict[str, int]:
    return {s["name"]: s["version"] for s in world.http.get("/services").json}


def test_deploy_creates_the_stack_then_the_same_file_changes_nothing(served, tmp_path):
    world, addr = served
    path = compose(tmp_path)
    first = orion(addr, "stack", "deploy", "-f", path)
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[:2] == ["shop_web: create with 2 replica(s)",
                                             "shop_worker: create with 1 replica(s)"]
    web = world.http.get("/services/shop_web").json
    assert web["stack"] == "shop" and web["spec"]["env"] == {"MODE": "prod"}
    world.settle()
    again = orion(addr, "stack", "deploy", "-f", path)
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == ["shop_web: unchanged (version 1)", "shop_worker: unchanged (version 1)",
                                         "stack shop: no change"]
    assert versions(world) == {"shop_web": 1, "shop_worker": 1}
    assert world.http.get("/services/shop_web").json["deployment"]["id"] == "shop_web#1"


def test_dry_run_prints_the_plan_per_service_and_changes_nothing(served, tmp_path):
    world, addr = served
    path = compose(tmp_path)
    orion(addr, "stack", "deploy", "-f", path)
    dry = orion(addr, "stack", "deploy", "-f", path, "--dry-run", "--prune", env={"TAG": "2"})
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines() == [
        "shop_web: version 1 -> 2: image changed; 2 of 2 replica(s) replaced, 1 at a time (start-first)",
        "shop_worker: unchanged (version 1)"]
    assert versions(world) == {"shop_web": 1, "shop_worker": 1}
    as_json = json.loads(orion(addr, "stack", "deploy", "-f", path, "--dry-run", "--json", env={"TAG": "2"}).stdout)
    assert as_json["steps"][0] == {"service": "shop_web", "action": "update", "version": 1, "changed": ["image"],
                                   "replace": True}


def test_prune_removes_exactly_the_service_no_longer_in_the_file(served, tmp_path):
    world, addr = served
    orion(addr, "stack", "deploy", "-f", compose(tmp_path))
    world.http.put("/services/web", json=WEB)  # a service outside the stack
    smaller = COMPOSE.split("  worker:")[0]
    kept = orion(addr, "stack", "deploy", "-f", compose(tmp_path, smaller))
    assert "shop_worker: not in the file; kept (--prune removes it)" in kept.stdout
    assert set(versions(world)) == {"shop_web", "shop_worker", "web"}
    pruned = orion(addr, "stack", "deploy", "-f", compose(tmp_path, smaller), "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert "shop_worker: remove (not in the file)" in pruned.stdout
    assert set(versions(world)) == {"shop_web", "web"} and versions(world)["shop_web"] == 1


def test_an_unsupported_key_is_named_and_nothing_changes_unless_ignored(served, tmp_path):
    world, addr = served
    path = compose(tmp_path, COMPOSE + "    build: ./worker\n    depends_on: [web]\n")
    refused = orion(addr, "stack", "deploy", "-f", path)
    assert refused.exit_code == 1
    assert "services.worker.build: Orion runs images" in refused.stderr
    assert "services.worker.depends_on" in refused.stderr and "nothing was changed" in refused.stderr
    assert "Traceback" not in refused.output and world.http.get("/services").json == []
    ignored = orion(addr, "stack", "deploy", "-f", path, "--ignore-unsupported")
    assert ignored.exit_code == 0, ignored.output
    assert set(versions(world)) == {"shop_web", "shop_worker"}


def test_a_wrong_file_is_refused_naming_every_key(served, tmp_path):
    world, addr = served
    path = compose(tmp_path, COMPOSE.replace("command:", "comand:").replace("${MODE}", "${MODE:?set MODE}"),
                   dotenv="")
    bad = orion(addr, "stack", "deploy", "-f", path)
    assert bad.exit_code == 1
    assert "services.worker.comand: not a Compose key here; did you mean 'command'?" in bad.stderr
    assert "services.web.environment.MODE: required variable MODE is missing a value: set MODE" in bad.stderr
    assert world.http.get("/services").json == []


def test_a_name_held_outside_the_stack_is_refused(served, tmp_path):
    world, addr = served
    world.http.put("/services/shop_web", json={**WEB, "name": "shop_web"})
    refused = orion(addr, "stack", "deploy", "-f", compose(tmp_path))
    assert refused.exit_code == 1 and "shop_web exists and belongs to no stack" in refused.stderr
    assert set(versions(world)) == {"shop_web"}


def test_ls_ps_and_rm(served, tmp_path):
    world, addr = served
    orion(addr, "stack", "deploy", "-f", compose(tmp_path), "other")
    world.settle()
    listed = orion(addr, "stack", "ls")
    assert listed.stdout.splitlines() == ["NAME   SERVICES  HEALTHY  TASKS", "other  2         3/3      3 running"]
    ps = orion(addr, "stack", "ps", "other").stdout.splitlines()
    assert ps[0].split() == ["SERVICE", "REPLICA", "VERSION", "STATE", "HEALTH", "NODE"] and len(ps) == 4
    assert orion(addr, "stack", "ps", "other", "-q").stdout.split() == ["other_web.0.d1", "other_web.1.d1",
                                                                        "other_worker.0.d1"]
    gone = orion(addr, "stack", "rm", "other")
    assert gone.exit_code == 0 and gone.stdout.startswith("stack other: deleted other_web, other_worker")
    missing = orion(addr, "stack", "ps", "other")
    assert missing.exit_code == 1 and "`orion stack ls` lists the stacks" in missing.stderr


def test_a_bad_stack_name_is_a_usage_error(served, tmp_path):
    _, addr = served
    result = orion(addr, "stack", "deploy", "-f", compose(tmp_path), "Shop")
    assert result.exit_code == 2 and "not a stack name" in result.stderr


WORKLOADS = """
name: ops
services:
  agent:
    image: app:1
    mem_limit: 16m
    user: "1000:1000"
    cap_drop: [ALL]
    read_only: true
    tmpfs: [/run]
    deploy: {mode: global, placement: {constraints: [node.platform.os == linux]}}
  migrate:
    image: app:1
    mem_limit: 16m
    entrypoint: [/bin/sh, -c]
    command: ["echo migrated"]
    deploy: {mode: replicated-job, replicas: 2, restart_policy: {max_attempts: 1}}
jobs:
  backup:
    image: app:1
    mem_limit: 16m
    triggers: {schedule: [{cron: "0 3 * * *", timezone: Europe/Paris}]}
"""


def test_global_job_and_cron_services_with_container_settings_deploy_and_redeploy_as_a_no_op(served, tmp_path):
    world, addr = served
    path = compose(tmp_path, WORKLOADS)
    first = orion(addr, "stack", "deploy", "-f", path)
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[:3] == [
        "ops_agent: create with one replica on every eligible node",
        "ops_migrate: create with a job of 2 completion(s), 2 at a time, once now",
        "ops_backup: create with a job of 1 completion(s), 1 at a time, on schedule '0 3 * * *' (Europe/Paris)"]
    agent = world.http.get("/services/ops_agent").json["spec"]
    assert (agent["mode"], agent["user"], agent["capDrop"], agent["readOnly"]) == ("global", "1000:1000", ["ALL"],
                                                                                   True)
    assert world.http.get("/services/ops_backup").json["spec"]["job"]["zone"] == "Europe/Paris"
    again = orion(addr, "stack", "deploy", "-f", path)
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == ["ops_agent: unchanged (version 1)", "ops_migrate: unchanged (version 1)",
                                         "ops_backup: unchanged (version 1)", "stack ops: no change"]
    assert versions(world) == {"ops_agent": 1, "ops_migrate": 1, "ops_backup": 1}
