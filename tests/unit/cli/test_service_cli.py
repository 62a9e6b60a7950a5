"""``orion service ...`` against the real app on a loopback socket, over a LocalStore whose
leader part (the real deployment loop, placement and reports) the test drives
(``ServiceWorld``, tests/service_world.py)."""

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
from orion.cli.service_cmd import plan_text
from orion.domain.model import TaskSpec
from orion.domain.service import ServiceSpec, UpdatePolicy

MiB = 1 << 20


@pytest.fixture
def served() -> Iterator[tuple[ServiceWorld, str]]:
    cluster = ServiceWorld()
    httpd = make_server("127.0.0.1", 0, cluster.http.application, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield cluster, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()
    httpd.server_close()


def orion(addr: str, *args: str) -> Result:
    return CliRunner(env={"ORION_ADDR": "", "ORION_API_TOKEN": ""}).invoke(main, ["--addr", addr, *args])


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_apply_creates_then_updates_then_changes_nothing_and_says_so_each_time(served, tmp_path):
    cluster, addr = served
    first = orion(addr, "service", "apply", "-f", write(tmp_path, "web.json", json.dumps(WEB)))
    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == ["web: create version 1 with 2 replica(s)",
                                         "web version 1: deployment web#1 to version 1 running"]
    cluster.settle()
    toml = write(tmp_path, "web.toml", """
name = "web"
image = "app:2"
memory = "64M"
count = 3
[healthCheck]
http = "/"
port = "80/tcp"
interval = "1s"
timeout = "1s"
failures = 1
[update]
maxParallel = 1
minHealthyTime = "2s"
healthyDeadline = "30s"
autoRevert = true
""")
    second = orion(addr, "service", "apply", "-f", toml)
    assert second.exit_code == 0, second.output
    assert second.output.splitlines()[0] == ("web: version 1 -> 2: image, count changed; 2 of 2 replica(s) "
                                             "replaced, 1 at a time (start-first); 1 added")
    cluster.settle()
    again = orion(addr, "service", "apply", "-f", toml)
    assert again.output.splitlines() == ["web: no change (version 2)", "web version 2 unchanged"]


def test_a_bad_file_is_refused_before_anything_is_sent(served, tmp_path):
    cluster, addr = served
    bad = orion(addr, "service", "apply", "-f", write(tmp_path, "web.json", json.dumps({**WEB, "replicas": 2})))
    assert bad.exit_code == 1 and "did you mean 'count'" in bad.output
    broken = orion(addr, "service", "apply", "-f", write(tmp_path, "web.toml", "name = "))
    assert broken.exit_code == 1 and "is not valid TOML" in broken.output
    assert cluster.store.read(lambda m: m.services.all())[0] == []


def test_ls_status_history_rollback_and_rm(served, tmp_path):
    cluster, addr = served
    orion(addr, "service", "apply", "-f", write(tmp_path, "web.json", json.dumps(WEB)))
    cluster.settle()
    orion(addr, "service", "apply", "-f", write(tmp_path, "web2.json", json.dumps({**WEB, "image": "app:2"})))
    cluster.settle()
    listed = orion(addr, "service", "ls")
    # No VIP yet (the network is not set in this world) and no published port.
    assert listed.output.splitlines()[1].split() == ["web", "replicated", "2", "app:2", "2/2", "web#2", "successful",
                                                     "-", "-", "-"]
    status = orion(addr, "service", "status", "web")
    assert status.output.splitlines()[:2] == ["service web: version 2 (app:2), 2/2 healthy",
                                              "deployment web#2 to version 2 successful: 2 replicas of version 2 "
                                              "healthy [0:done, 1:done]"]
    assert "web.0.d2" in status.output and "HTTP 200" in status.output
    rolled = orion(addr, "service", "rollback", "web", "--version", "1")
    assert rolled.output.strip() == "web version 3: deployment web#3 to version 3 running"
    cluster.settle()
    history = orion(addr, "service", "history", "web").output.splitlines()
    assert [line.split()[0] for line in history[1:]] == ["1", "2", "3"]
    assert "v1" in history[3] and "successful" in history[3]
    removed = orion(addr, "service", "rm", "web")
    assert removed.output.strip() == "web deleted; stopping 2 replica(s)"
    missing = orion(addr, "service", "status", "web")
    assert missing.exit_code == 1 and "no service web" in missing.output


def test_the_plan_names_replacements_scaling_and_in_place_changes():
    base = ServiceSpec("web", TaskSpec("app:1", 64 * MiB), count=3)
    assert plan_text("web", 4, base, base) == "web: no change (version 4)"
    assert plan_text("web", 4, base, ServiceSpec("web", base.task, count=5)) == (
        "web: version 4 -> 5: count changed; no replica replaced; 2 added")
    static = ServiceSpec("web", TaskSpec("app:2", 64 * MiB, ports=()), count=2,
                         update=UpdatePolicy(max_parallel=2))
    assert plan_text("web", 4, base, static) == (
        "web: version 4 -> 5: image, update, count changed; 2 of 3 replica(s) replaced, 2 at a time "
        "(start-first); 1 stopped")
    policy = ServiceSpec("web", TaskSpec("app:1", 64 * MiB, restart_policy="always"), count=3)
    assert plan_text("web", 4, base, policy) == (
        "web: version 4 -> 5: restartPolicy changed; no replica replaced (changed in place)")
