"""The fleet rollout, end to end, on three real systemd hosts (issue #5).

The story a newcomer with three Debian servers lives through: site.yml turns
bare hosts into one Orion cluster that asks for a token; running it again
(from an INI inventory, booleans as strings) changes nothing; a task pulled
from the private registry serves on its port; systemd brings a killed agent
back without duplicating the task; Prometheus with a non-default port settles
(a second run changes nothing); rolling restarts, a changed setting through
site.yml and an upgrade restart one host at a time, the Raft leader last, while
the task keeps answering; a rolling restart refuses to start on a degraded
cluster; a same-version upgrade changes nothing; a dead host's task moves; a
host is drained and removed with the token.

Opt-in (ORION_TEST_FLEET=1) and ordered: each test builds on the state the
previous one left, as an operator's day would. Wall times of the playbook runs
are printed (-s or -rA) and written to $ORION_LAB_DIR/timings.json.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fleetlab import REPO, Host, Lab, PlaybookRun, docker, eventually, http, on_host, run_playbook, unit_runs

pytestmark = [pytest.mark.fleet, pytest.mark.timeout(1200)]

SITE = "playbooks/site.yml"
TASK_PORT = "8080"
HELLO = "hello from orion"
# The version upgrade.yml moves to: this tree's agent under a post-release number.
UPGRADE_VERSION = "0.1.0.post1"
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
    status, body = lab.http("GET", host, "/raft")
    return body if status == 200 and isinstance(body, dict) else None


def leader_host(lab: Lab) -> Host:
    leader = eventually(lambda: one_cluster(lab, lab.hosts, 3), 60, what="one cluster of three")
    return next(h for h in lab.hosts if f"{h.ip}:7000" == leader)


@contextmanager
def probing(host: Host | None, period: float = 0.5) -> Iterator[list[float]]:
    """Ask the task on `host` for its page every `period` seconds while the block runs;
    yields the list of times it did not answer (empty: it never failed)."""
    failures: list[float] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(period):
            if host is not None and not serves(host):
                failures.append(time.time())

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield failures
    finally:
        stop.set()
        thread.join()


def restarts_since(lab: Lab, since: float) -> dict[str, tuple[float, float]]:
    """Each host's restart (stop began, start finished) after `since`; at most one each."""
    found: dict[str, tuple[float, float]] = {}
    for host in lab.hosts:
        runs = [r for r in unit_runs(lab, host) if r[0] >= since]
        assert len(runs) <= 1, f"{host.name} restarted {len(runs)} times: {runs}"
        if runs:
            found[host.name] = runs[0]
    return found


def assert_one_at_a_time(restarts: dict[str, tuple[float, float]], leader: Host, hosts: int) -> None:
    """Every host restarted, no two down at once, and the leader last."""
    assert len(restarts) == hosts, restarts
    ordered = sorted(restarts.items(), key=lambda item: item[1][0])
    for (name_a, (_, up_a)), (name_b, (down_b, _)) in zip(ordered, ordered[1:], strict=False):
        assert up_a <= down_b, f"{name_b} went down at {down_b:.1f} before {name_a} was back at {up_a:.1f}"
    assert ordered[-1][0] == leader.name, f"leader {leader.name} was not last: {[n for n, _ in ordered]}"
    print("restarts:", ", ".join(f"{n} {b - a:.1f}s down" for n, (a, b) in ordered))


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
    # Locked down: the role generated a token, and the API refuses a request without it.
    assert lab.token(), f"no api-token in {lab.secrets}"
    status, _ = http("GET", f"{lab.api(lab.hosts[0])}/raft", context=lab.ssl_context())
    assert status == 401
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


def test_second_run_from_an_ini_inventory_changes_nothing(lab: Lab) -> None:
    # The same lab with every setting under [all:vars]: the booleans arrive as strings.
    assert "orion_wheelhouse=true" in lab.inventory_ini.read_text()
    run = run_playbook(lab, SITE, inventory=lab.inventory_ini)
    record(lab, "site.yml second run (INI inventory)", run)
    assert_ok(run, hosts=3)
    assert run.total("changed") == 0, run.output[-6000:]
    for host in lab.hosts:
        config = on_host(lab, host, "cat", "/etc/orion/orion.toml")
        # Restarts keep the containers: SIGTERM does not drain (remove-host.yml drains explicitly).
        assert "leave_on_terminate = false" in config
        assert ("tls_cert" in config) == lab.tls


def test_check_mode_shows_a_change_without_making_it(lab: Lab) -> None:
    run = run_playbook(lab, SITE, "--check", "--diff", "-e", "orion_log_level=debug")
    record(lab, "site.yml --check --diff", run)
    assert_ok(run, hosts=3)
    assert '-log_level = "info"' in run.output and '+log_level = "debug"' in run.output
    for host in lab.hosts:
        assert 'log_level = "info"' in on_host(lab, host, "cat", "/etc/orion/orion.toml")


def test_task_from_the_lab_registry_serves_on_its_port(lab: Lab) -> None:
    status, body = lab.http("POST", lab.hosts[0], "/tasks",
                            {"image": lab.task_image, "memory": 100_000_000, "portBindings": {"80/tcp": TASK_PORT}},
                            timeout=30)
    assert status == 201, body
    node = eventually(lambda: (lab.http("GET", lab.hosts[0], f"/tasks/{body['id']}")[1] or {}).get("nodeId"),
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


def test_a_taken_port_stops_the_agent_at_once_without_a_restart_loop(lab: Lab) -> None:
    """Exit 2 (a start-up the agent refused) is in RestartPreventExitStatus: systemd leaves the
    unit failed, with the agent's one line in the journal, instead of restarting it every 2 s."""
    host = lab.hosts[-1]

    def show(prop: str) -> str:
        return on_host(lab, host, "systemctl", "show", "-p", prop, "--value", "orion").strip()

    on_host(lab, host, "systemctl", "stop", "orion")
    # SO_REUSEADDR: the agent's connections just closed linger in TIME_WAIT on the port.
    hold = ("import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            "s.bind(('0.0.0.0', 8000)); s.listen(); "
            "open('/run/port-holder.pid', 'w').write(str(__import__('os').getpid())); time.sleep(300)")
    on_host(lab, host, "sh", "-c", f"nohup python3 -c \"{hold}\" >/dev/null 2>&1 &")
    try:
        eventually(lambda: on_host(lab, host, "cat", "/run/port-holder.pid", check=False).strip(), 10,
                   step=0.2, what="a process holding port 8000")
        restarts = int(show("NRestarts"))
        on_host(lab, host, "systemctl", "start", "orion", check=False)
        eventually(lambda: show("ActiveState") == "failed", 30, step=0.5, what="the unit failed")
        time.sleep(6)  # three RestartSec periods: a restart loop would have begun
        assert (show("ActiveState"), show("ExecMainStatus"), int(show("NRestarts"))) == ("failed", "2", restarts)
        journal = on_host(lab, host, "journalctl", "-u", "orion", "-n", "30", "--no-pager")
        assert ":8000 (TCP) is already in use" in journal and "--port" in journal, journal
    finally:
        on_host(lab, host, "sh", "-c", "kill $(cat /run/port-holder.pid); rm -f /run/port-holder.pid", check=False)
        on_host(lab, host, "systemctl", "reset-failed", "orion", check=False)
        on_host(lab, host, "systemctl", "start", "orion", check=False, timeout=200)
    eventually(lambda: on_host(lab, host, "systemctl", "is-active", "orion", check=False).strip() == "active",
               120, what="the agent started again once the port is free")
    eventually(lambda: one_cluster(lab, lab.hosts, 3), 60, what="the cluster whole again")


def test_monitoring_with_a_non_default_port_settles(lab: Lab, tmp_path: Path) -> None:
    """Prometheus on orion-1 at port 9091, with a stand-in Grafana (its config dir and a
    unit): the first run installs, the second changes nothing and restarts nothing."""
    host = lab.hosts[0]
    on_host(lab, host, "sh", "-c", "mkdir -p /etc/grafana && printf '%s\\n' '[Service]' "
            "'ExecStart=/bin/sleep infinity' > /etc/systemd/system/grafana-server.service "
            "&& systemctl daemon-reload && systemctl start grafana-server")
    extra = tmp_path / "monitoring.yml"
    extra.write_text(f"monitoring:\n  hosts:\n    {host.name}:\n  vars:\n"
                     "    monitoring_prometheus_listen_address: '0.0.0.0:9091'\n")
    first = run_playbook(lab, SITE, "-i", str(extra))
    record(lab, "site.yml with monitoring (first)", first)
    assert_ok(first, hosts=3)
    grafana_started = on_host(lab, host, "systemctl", "show", "-p", "ExecMainStartTimestampMonotonic", "--value",
                              "grafana-server")
    second = run_playbook(lab, SITE, "-i", str(extra))
    record(lab, "site.yml with monitoring (second)", second)
    assert_ok(second, hosts=3)
    assert second.total("changed") == 0, second.output[-6000:]
    assert on_host(lab, host, "systemctl", "show", "-p", "ExecMainStartTimestampMonotonic", "--value",
                   "grafana-server") == grafana_started, "Grafana was restarted by the second run"
    datasource = on_host(lab, host, "cat", "/etc/grafana/provisioning/datasources/orion.yml")
    assert "url: http://localhost:9091" in datasource
    # Prometheus scrapes the agents with the token (and the CA) the orion role made.
    config = on_host(lab, host, "cat", "/etc/prometheus/prometheus.yml")
    assert "credentials_file: /etc/prometheus/orion-api-token" in config
    assert ("scheme: https" in config) == lab.tls

    def scraped() -> bool:
        out = on_host(lab, host, "python3", "-c", "import urllib.request; print(urllib.request.urlopen("
                      "'http://127.0.0.1:9091/api/v1/targets?state=active').read().decode())", check=False)
        try:
            targets = json.loads(out)["data"]["activeTargets"]
        except (ValueError, KeyError):
            return False
        health = [t["health"] for t in targets if t["labels"].get("job") == "orion"]
        return health == ["up"] * 3

    eventually(scraped, 90, step=3, what="Prometheus scraping the three agents")
    on_host(lab, host, "systemctl", "disable", "--now", "prometheus", "grafana-server")


def test_rolling_restart_one_host_at_a_time_the_leader_last(lab: Lab) -> None:
    leader = leader_host(lab)
    since = time.time()
    with probing(_state.get("host")) as failures:  # type: ignore[arg-type]
        run = run_playbook(lab, "playbooks/rolling-restart.yml")
    record(lab, "rolling-restart.yml", run)
    assert_ok(run, hosts=3)
    assert_one_at_a_time(restarts_since(lab, since), leader, hosts=3)
    eventually(lambda: one_cluster(lab, lab.hosts, 3), 60, what="one cluster of three")
    assert not failures, f"the task did not answer at {failures}"


def test_changed_setting_through_site_rolls_one_host_at_a_time(lab: Lab) -> None:
    leader = leader_host(lab)
    since = time.time()
    with probing(_state.get("host")) as failures:  # type: ignore[arg-type]
        run = run_playbook(lab, SITE, "-e", "orion_log_level=debug")
    record(lab, "site.yml changed setting (rolling)", run)
    assert_ok(run, hosts=3)
    assert_one_at_a_time(restarts_since(lab, since), leader, hosts=3)
    assert not failures, f"the task did not answer at {failures}"
    for host in lab.hosts:
        assert 'log_level = "debug"' in on_host(lab, host, "cat", "/etc/orion/orion.toml")


def test_rolling_restart_refuses_a_degraded_cluster(lab: Lab) -> None:
    down = lab.hosts[-1]
    since = time.time()
    on_host(lab, down, "systemctl", "stop", "orion")
    try:
        run = run_playbook(lab, "playbooks/rolling-restart.yml")
    finally:
        on_host(lab, down, "systemctl", "start", "orion", timeout=200)
    record(lab, "rolling-restart.yml on a degraded cluster", run)
    assert run.rc != 0 and "already degraded" in run.output, run.output[-4000:]
    assert "orion_rolling_force" in run.output
    assert restarts_since(lab, since).keys() <= {down.name}, "a healthy node was restarted"
    eventually(lambda: one_cluster(lab, lab.hosts, 3), 120, what="one cluster of three again")


def build_wheel(lab: Lab, version: str, workdir: Path) -> None:
    """The orion wheel of this tree under another version number, into the lab's wheelhouse."""
    src = workdir / "src"
    shutil.copytree(REPO / "orion", src / "orion", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "README.md", src / "README.md")
    pyproject = (REPO / "pyproject.toml").read_text()
    (src / "pyproject.toml").write_text(re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', pyproject, count=1))
    subprocess.run([str(REPO / ".venv/bin/python"), "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(lab.dir / "wheelhouse"), str(src)], check=True, capture_output=True, timeout=300)


def test_upgrade_rolls_one_host_at_a_time(lab: Lab, tmp_path: Path) -> None:
    build_wheel(lab, UPGRADE_VERSION, tmp_path)
    leader = leader_host(lab)
    since = time.time()
    with probing(_state.get("host")) as failures:  # type: ignore[arg-type]
        run = run_playbook(lab, "playbooks/upgrade.yml", "-e", f"orion_version={UPGRADE_VERSION}")
    record(lab, "upgrade.yml (new version, rolling)", run)
    assert_ok(run, hosts=3)
    assert_one_at_a_time(restarts_since(lab, since), leader, hosts=3)
    assert not failures, f"the task did not answer at {failures}"
    for host in lab.hosts:
        installed = on_host(lab, host, "/opt/orion/venv/bin/python", "-c",
                            "import importlib.metadata as m; print(m.version('orion'))").strip()
        assert installed == UPGRADE_VERSION


def test_upgrade_to_the_installed_version_changes_nothing(lab: Lab) -> None:
    run = run_playbook(lab, "playbooks/upgrade.yml", "-e", f"orion_version={UPGRADE_VERSION}")
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


def task_host(lab: Lab) -> Host | None:
    """The host the test task is placed on now, if there is a task."""
    task = _state.get("task")
    if not task:
        return None
    _, body = lab.http("GET", lab.hosts[0], f"/tasks/{task}")
    node = (body or {}).get("nodeId") if isinstance(body, dict) else None
    return lab.host(node) if node else None


def test_remove_host_drains_and_leaves_two_members(lab: Lab) -> None:
    # The host that runs the task leaves, if there is one: draining must move the task.
    holder = task_host(lab)
    leaving = holder or lab.hosts[-1]
    assert lab.token(), "remove-host.yml is tested with a token set"
    run = run_playbook(lab, "playbooks/remove-host.yml", "-e", f"orion_remove={leaving.name}")
    record(lab, "remove-host.yml", run)
    assert_ok(run, hosts=3)
    # Drained through the API (202) before the agent stopped.
    drain = run.output.partition("TASK [orion : Drain the node")[2].split("TASK [", 1)[0]
    assert f"changed: [{leaving.name}" in drain, run.output[-6000:]
    assert on_host(lab, leaving, "systemctl", "is-active", "orion", check=False).strip() != "active"
    assert on_host(lab, leaving, "systemctl", "is-enabled", "orion", check=False).strip() == "disabled"
    remaining = tuple(h for h in lab.hosts if h != leaving)
    eventually(lambda: one_cluster(lab, remaining, 2), 60, what="two members left")
    if holder is not None:
        eventually(lambda: any(serves(h) for h in remaining), 120, step=3, what="the drained task on a remaining host")
