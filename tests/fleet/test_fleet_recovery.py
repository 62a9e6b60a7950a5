"""Losing a majority in the fleet lab, and the daily snapshot timer (issue #20).

The story: a three-host cluster formed by site.yml (with the snapshot timer on, retention 2)
runs a service with two versions and a few tasks. Two hosts are destroyed: agents SIGKILLed,
data dirs and containers deleted. The survivor, without a quorum, still saves a snapshot with
``--stale``; ``playbooks/recover.yml -l orion-1`` makes it a one-voter cluster; site.yml brings
the two emptied hosts back as new members. Then: three voters, every service with its
versions and every task running, and the survivor's containers never stopped.

Opt-in like the rest of tests/fleet (ORION_TEST_FLEET=1). It starts by emptying the lab's
hosts, so it runs after test_fleet_e2e.py in one session or alone on a fresh lab. Ordered:
each test builds on the state the previous one left.
"""

from __future__ import annotations

import json
import time

import pytest
from fleetlab import Host, Lab, eventually, on_host, run_playbook

pytestmark = [pytest.mark.fleet, pytest.mark.timeout(1500)]

SITE = "playbooks/site.yml"
ORION = "/opt/orion/venv/bin/orion"
SNAPSHOTS = "/var/backups/orion"
TIMER = ("-e", "orion_snapshot_timer=true", "-e", "orion_snapshot_retention=2")
_state: dict[str, object] = {}


def assert_ok(run, hosts: int) -> None:
    assert run.rc == 0 and run.total("failed") == 0 and run.total("unreachable") == 0, run.output[-6000:]
    assert len(run.recap) == hosts, run.output[-3000:]


def one_cluster(lab: Lab, hosts: tuple[Host, ...], members: int) -> str | None:
    views = []
    for host in hosts:
        status, body = lab.http("GET", host, "/raft")
        if status != 200 or not isinstance(body, dict):
            return None
        views.append(body)
    leaders = {v["leader"] for v in views}
    if len(leaders) == 1 and None not in leaders and {len(v["members"]) for v in views} == {members}:
        return leaders.pop()
    return None


def cli(lab: Lab, host: Host, *args: str) -> str:
    """The orion CLI on ``host`` against its own agent, with the token the snapshot job uses."""
    tls = "--ca-cert /etc/orion/tls/ca.crt " if lab.tls else ""
    command = (f"set -a; . /etc/orion/snapshot.env; set +a; {ORION} --addr {lab.api(host)} {tls}"
               + " ".join(args))
    return on_host(lab, host, "sh", "-c", command, timeout=120)


def orion_containers(lab: Lab, host: Host) -> dict[str, str]:
    """Running Orion containers on ``host``: id -> start time."""
    ids = on_host(lab, host, "docker", "ps", "-q", "--no-trunc", "--filter", "label=orion.managed=1").split()
    if not ids:
        return {}
    out = on_host(lab, host, "docker", "inspect", "-f", "{{.Id}} {{.State.StartedAt}}", *ids)
    return dict(line.split() for line in out.splitlines() if line.strip())


def destroy(lab: Lab, host: Host) -> None:
    """The host is gone for good: agent killed (no goodbye), data dir and containers deleted."""
    on_host(lab, host, "sh", "-c", "systemctl kill -s KILL orion; systemctl stop orion", check=False)
    on_host(lab, host, "sh", "-c", "rm -rf /var/lib/orion/* /var/lib/orion/.orion-bootstrapped")
    on_host(lab, host, "sh", "-c", "docker ps -aq --filter label=orion.managed=1 | xargs -r docker rm -f")


def wanted_running(lab: Lab, host: Host, wanted: set[str]) -> bool:
    status, tasks = lab.http("GET", host, "/tasks")
    if status != 200:
        return False
    by_id = {t["id"]: t for t in tasks}
    return wanted <= set(by_id) and all(by_id[i]["state"] == "running" for i in wanted)


def test_a_fresh_cluster_with_the_snapshot_timer(lab: Lab) -> None:
    for host in lab.hosts:  # whatever an earlier story left: a cluster formed from nothing
        destroy(lab, host)
    run = run_playbook(lab, SITE, *TIMER)
    assert_ok(run, hosts=3)
    eventually(lambda: one_cluster(lab, lab.hosts, 3), 90, what="one cluster of three")
    host = lab.hosts[0]
    assert on_host(lab, host, "systemctl", "is-enabled", "orion-snapshot.timer").strip() == "enabled"
    for _ in range(3):  # three saves, retention 2: the oldest goes
        on_host(lab, host, "systemctl", "start", "orion-snapshot.service", timeout=180)
        time.sleep(1.1)  # file names carry the second
    files = on_host(lab, host, "sh", "-c", f"ls -1 {SNAPSHOTS}").split()
    assert len(files) == 2 and all(f.startswith(f"orion-{host.name}-") for f in files), files
    summary = json.loads(on_host(lab, host, ORION, "operator", "snapshot", "inspect", "--json",
                                 f"{SNAPSHOTS}/{files[-1]}"))
    assert summary["checksumOk"] and summary["nodes"] == 3
    assert on_host(lab, host, "stat", "-c", "%a", SNAPSHOTS).strip() == "700"


def test_workloads_before_the_disaster(lab: Lab) -> None:
    first = lab.hosts[0]
    spec = {"name": "web", "image": lab.task_image, "memory": 100_000_000, "count": 3,
            "portBindings": {"80/tcp": ""}, "env": {"V": "1"},
            "update": {"maxParallel": 1, "minHealthyTime": "2s", "healthyDeadline": "3m"}}
    status, body = lab.http("POST", first, "/services", spec, timeout=30)
    assert status == 201, body
    status, body = lab.http("PUT", first, "/services/web", {**spec, "env": {"V": "2"}}, timeout=30)
    assert status == 201, body
    status, body = lab.http("POST", first, "/tasks", {"image": lab.task_image, "memory": 50_000_000, "count": 2},
                            timeout=30)
    assert status == 201, body
    eventually(lambda: (lab.http("GET", first, "/services/web")[1] or {}).get("deployment", {}).get("state")
               == "successful", 300, step=3, what="web version 2 rolled out")
    wanted = {t["id"] for t in lab.http("GET", first, "/tasks")[1] if t["desired"] == "run"}
    eventually(lambda: wanted_running(lab, first, wanted), 180, step=3, what="every task running")
    _state.update(wanted=wanted, services=lab.http("GET", first, "/services")[1],
                  versions=lab.http("GET", first, "/services/web/versions")[1])


def test_two_hosts_destroyed_the_survivor_recovers(lab: Lab) -> None:
    if "wanted" not in _state:
        pytest.skip("no workloads (the previous test failed)")
    survivor, *lost = lab.hosts
    kept = eventually(lambda: orion_containers(lab, survivor) or None, 60, what="containers on the survivor")
    _state["kept"] = kept
    for host in lost:
        destroy(lab, host)
    eventually(lambda: lab.http("GET", survivor, "/health")[0] == 503, 60, what="the survivor without a quorum")
    # The runbook's step 2: a copy of what the survivor has, saved without a leader.
    cli(lab, survivor, "operator", "snapshot", "save", "--stale", "/root/before-recover.snap")
    run = run_playbook(lab, "playbooks/recover.yml", "-l", survivor.name, *TIMER)
    assert_ok(run, hosts=1)
    assert "is now the only voter" in run.output, run.output[-4000:]
    status, raft = lab.http("GET", survivor, "/raft")
    assert status == 200 and raft["members"] == [f"{survivor.ip}:7000"], raft
    status, tasks = lab.http("GET", survivor, "/tasks")
    assert {t["id"] for t in tasks} >= _state["wanted"]  # type: ignore[operator]
    assert orion_containers(lab, survivor) == kept


def test_site_brings_the_emptied_hosts_back_as_members(lab: Lab) -> None:
    if "kept" not in _state:
        pytest.skip("no recovery (the previous test failed)")
    survivor = lab.hosts[0]
    run = run_playbook(lab, SITE, *TIMER)
    assert_ok(run, hosts=3)
    eventually(lambda: one_cluster(lab, lab.hosts, 3), 120, what="three voters again")
    eventually(lambda: wanted_running(lab, survivor, _state["wanted"]), 300, step=3,  # type: ignore[arg-type]
               what="every task running again")
    assert lab.http("GET", survivor, "/services/web/versions")[1] == _state["versions"]
    assert [(s["name"], s["version"]) for s in lab.http("GET", survivor, "/services")[1]] == \
        [(s["name"], s["version"]) for s in _state["services"]]  # type: ignore[union-attr]
    # The survivor's workloads never stopped: the same containers, started when they were.
    now = orion_containers(lab, survivor)
    assert {cid: now.get(cid) for cid in _state["kept"]} == _state["kept"]  # type: ignore[union-attr]
    assert "orion-snapshot" in on_host(lab, survivor, "sh", "-c", "ls /root/before-recover.snap && echo orion-snapshot")
