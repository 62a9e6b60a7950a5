"""The fleet rollout, end to end, on three real systemd hosts (issue #5).

The story a newcomer with three Debian servers lives through: site.yml turns
bare hosts into one Orion cluster; running it again changes nothing; a task
pulled from the private registry serves on its port; systemd brings a killed
agent back without duplicating the task; rolling restarts and same-version
upgrades keep the cluster whole; a dead host's task moves; a host is removed.

Opt-in (ORION_TEST_FLEET=1) and ordered: each test builds on the state the
previous one left, as an operator's day would. Wall times of the playbook runs
are printed (-s or -rA) and written to $ORION_LAB_DIR/timings.json.
"""

from __future__ import annotations

import json
import time

import pytest
from fleetlab import Host, Lab, PlaybookRun, docker, eventually, http, on_host, run_playbook

pytestmark = [pytest.mark.fleet, pytest.mark.timeout(1200)]

SITE = "playbooks/site.yml"
TASK_PORT = "8080"
HELLO = "hello from orion"
_state: dict[str, object] = {}
_timings: dict[str, float] = {}


def record(lab: Lab, label: str, run: PlaybookRun) -> None:
    _timings[label] = round(run.seconds, 1)
    (lab.dir / "timings.json").write_text(json.dumps(_timings, indent=2))
    print(f"\n{label}: {run.seconds:.1f}s  recap {run.recap}")


def assert_ok(run: PlaybookRun, hosts: int) -> None:
    assert run.rc == 0 and run.total("failed") == 0 and run.total("unreachable") == 0, run.output[-6000:]
    assert len(run.recap) == hosts, run.output[-3000:]


def raft(lab: Lab, host: Host) -> dict | None:
    status, body = http("GET", f"{lab.api(host)}/raft")
    return body if status == 200 and isinstance(body, dict) else None


def one_cluster(lab: Lab, hosts: tuple[Host, ...], members: int) -> str | None:
    """The leader's address when every host agrees on it and on `members` members."""
    views = [raft(lab, h) for h in hosts]
    if not all(views):
        return None
    leaders = {v["leader"] for v in views}  # type: ignore[index]
    sizes = {len(v["members"]) for v in views}  # type: ignore[index]
    if len(leaders) == 1 and None not in leaders and sizes == {members}:
        return leaders.pop()
    return None


def serves(host: Host) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{host.ip}:{TASK_PORT}/", timeout=3) as resp:
            return HELLO in resp.read().decode()
    except OSError:
        return False


def running_task_containers(lab: Lab, host: Host) -> list[str]:
    out = on_host(lab, host, "docker", "ps", "-q", "--filter", f"ancestor={lab.task_image}")
    return out.split()


def test_site_playbook_forms_one_cluster_of_three(lab: Lab) -> None:
    run = run_playbook(lab, SITE)
    record(lab, "site.yml first run", run)
    assert_ok(run, hosts=3)
    for host in lab.hosts:
        assert on_host(lab, host, "systemctl", "is-active", "orion").strip() == "active"
        assert on_host(lab, host, "systemctl", "is-enabled", "orion").strip() == "enabled"
        assert on_host(lab, host, "stat", "-c", "%U", "/var/lib/orion").strip() == "orion"
    leader = eventually(lambda: one_cluster(lab, lab.hosts, 3), 60, what="one cluster of three")
    assert leader in {f"{h.ip}:7000" for h in lab.hosts}
    # Exactly one node ever bootstrapped, and it left the marker that stops a second bootstrap.
    marked = [h.name for h in lab.hosts
              if on_host(lab, h, "sh", "-c", "test -e /var/lib/orion/.orion-bootstrapped && echo yes",
                         check=False).strip() == "yes"]
    bootstrapping = [h.name for h in lab.hosts
                     if "bootstrap = true" in on_host(lab, h, "cat", "/etc/orion/orion.toml")]
    assert marked == bootstrapping == ["orion-1"]


def test_second_run_changes_nothing(lab: Lab) -> None:
    run = run_playbook(lab, SITE)
    record(lab, "site.yml second run", run)
    assert_ok(run, hosts=3)
    assert run.total("changed") == 0, run.output[-6000:]


def test_check_mode_shows_a_change_without_making_it(lab: Lab) -> None:
    run = run_playbook(lab, SITE, "--check", "--diff", "-e", "orion_log_level=debug")
    record(lab, "site.yml --check --diff", run)
    assert_ok(run, hosts=3)
    assert '-log_level = "info"' in run.output and '+log_level = "debug"' in run.output
    for host in lab.hosts:
        assert 'log_level = "info"' in on_host(lab, host, "cat", "/etc/orion/orion.toml")


def test_task_from_the_lab_registry_serves_on_its_port(lab: Lab) -> None:
    status, body = http("POST", f"{lab.api(lab.hosts[0])}/tasks",
                        {"image": lab.task_image, "memory": 100_000_000, "portBindings": {"80/tcp": TASK_PORT}},
                        timeout=30)
    assert status == 201, body
    node = eventually(lambda: (http("GET", f"{lab.api(lab.hosts[0])}/tasks/{body['id']}")[1] or {}).get("nodeId"),
                      60, what="a placement")
    host = lab.host(node)
    eventually(lambda: serves(host), 180, what=f"{HELLO!r} on {host.ip}:{TASK_PORT}")
    _state.update(task=body["id"], host=host)


def test_killed_agent_is_restarted_and_the_task_not_duplicated(lab: Lab) -> None:
    host = _state.get("host")
    if not isinstance(host, Host):
        pytest.skip("no running task (the previous test failed)")
    restarts = int(on_host(lab, host, "systemctl", "show", "-p", "NRestarts", "--value", "orion"))
    on_host(lab, host, "systemctl", "kill", "-s", "KILL", "orion")
    eventually(lambda: int(on_host(lab, host, "systemctl", "show", "-p", "NRestarts", "--value", "orion"))
               > restarts, 60, what="systemd to restart the agent")
    eventually(lambda: on_host(lab, host, "systemctl", "is-active", "orion", check=False).strip() == "active",
               120, what="the restarted agent to report READY")
    eventually(lambda: one_cluster(lab, lab.hosts, 3), 60, what="the cluster whole again")
    # Give the restarted reconciler a few passes to (wrongly) start a second copy.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert len(running_task_containers(lab, host)) == 1
        time.sleep(2)
    assert serves(host)


def test_rolling_restart_keeps_the_cluster_and_the_task(lab: Lab) -> None:
    run = run_playbook(lab, "playbooks/rolling-restart.yml")
    record(lab, "rolling-restart.yml", run)
    assert_ok(run, hosts=3)
    eventually(lambda: one_cluster(lab, lab.hosts, 3), 60, what="one cluster of three")
    host = _state.get("host")
    if isinstance(host, Host):
        eventually(lambda: serves(host), 60, what="the task after the restarts")


def test_upgrade_to_the_installed_version_changes_nothing(lab: Lab) -> None:
    run = run_playbook(lab, "playbooks/upgrade.yml")
    record(lab, "upgrade.yml (same version)", run)
    assert_ok(run, hosts=3)
    assert run.total("changed") == 0, run.output[-6000:]


def test_task_moves_when_its_host_dies(lab: Lab) -> None:
    host = _state.get("host")
    if not isinstance(host, Host):
        pytest.skip("no running task (an earlier test failed)")
    docker(lab, "stop", "-t", "5", host.container)
    _state["stopped"] = host
    others = tuple(h for h in lab.hosts if h != host)
    eventually(lambda: any(serves(h) for h in others), 150, step=3,
               what=f"task {_state['task']} running on a surviving host")


def test_stopped_host_comes_back_and_rejoins(lab: Lab) -> None:
    host = _state.pop("stopped", None)
    if not isinstance(host, Host):
        pytest.skip("no host was stopped")
    docker(lab, "start", host.container)
    eventually(lambda: on_host(lab, host, "systemctl", "is-active", "orion", check=False).strip() == "active",
               180, step=2, what="the agent started at boot")
    eventually(lambda: one_cluster(lab, lab.hosts, 3), 120, what="one cluster of three again")


def test_remove_host_leaves_two_members(lab: Lab) -> None:
    leaving = lab.hosts[-1]
    run = run_playbook(lab, "playbooks/remove-host.yml", "-e", f"orion_remove={leaving.name}")
    record(lab, "remove-host.yml", run)
    assert_ok(run, hosts=3)
    assert on_host(lab, leaving, "systemctl", "is-active", "orion", check=False).strip() != "active"
    assert on_host(lab, leaving, "systemctl", "is-enabled", "orion", check=False).strip() == "disabled"
    remaining = tuple(h for h in lab.hosts if h != leaving)
    eventually(lambda: one_cluster(lab, remaining, 2), 60, what="two members left")
