"""Driving the fleet lab from tests: the lab's description, commands on its
hosts, HTTP to its agents, and ansible-playbook runs with their recap.

The lab itself is made and removed by tests/fleet/lab.sh (so a person can
bring it up by hand and look around); this module only reads what `up` wrote
to lab.json and talks to the hosts it lists.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
LAB_SH = REPO / "tests/fleet/lab.sh"
ANSIBLE_PLAYBOOK = REPO / ".venv/bin/ansible-playbook"
T = TypeVar("T")


@dataclass(frozen=True)
class Host:
    name: str  # inventory name and Orion node id
    container: str
    ip: str


@dataclass(frozen=True)
class Lab:
    name: str
    dir: Path
    inventory: Path
    inventory_ini: Path  # the same lab, every setting under [all:vars]
    registry: str
    task_image: str
    docker_host: str
    hosts: tuple[Host, ...]
    tls: bool  # orion_tls in the inventories
    secrets: Path  # the orion role's orion_secrets_dir: api-token, ca.crt

    @classmethod
    def load(cls, lab_json: Path) -> Lab:
        raw = json.loads(lab_json.read_text())
        return cls(name=raw["name"], dir=Path(raw["dir"]), inventory=Path(raw["inventory"]),
                   inventory_ini=Path(raw["inventory_ini"]), registry=raw["registry"],
                   task_image=raw["task_image"], docker_host=raw["docker_host"],
                   hosts=tuple(Host(**h) for h in raw["hosts"]), tls=bool(raw["tls"]),
                   secrets=Path(raw["secrets"]))

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def api(self, host: Host) -> str:
        return f"{'https' if self.tls else 'http'}://{host.ip}:8000"

    def token(self) -> str | None:
        """The API token the orion role generated (none before site.yml ran)."""
        path = self.secrets / "api-token"
        return path.read_text().strip() if path.exists() else None

    def ssl_context(self) -> ssl.SSLContext | None:
        """With TLS, a client context that trusts the fleet CA the orion role made."""
        return ssl.create_default_context(cafile=str(self.secrets / "ca.crt")) if self.tls else None

    def http(self, method: str, host: Host, path: str, body: Any = None, timeout: float = 5) -> tuple[int, Any]:
        """One exchange with an agent's API, with the cluster's token and, with TLS, its CA."""
        return http(method, f"{self.api(host)}{path}", body, timeout, token=self.token(), context=self.ssl_context())


@dataclass(frozen=True)
class PlaybookRun:
    rc: int
    seconds: float
    output: str
    recap: dict[str, dict[str, int]]

    def total(self, key: str) -> int:
        return sum(counts.get(key, 0) for counts in self.recap.values())


RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$")


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP block of ansible-playbook's output, host -> {ok, changed, failed, ...}."""
    _, sep, tail = output.rpartition("PLAY RECAP")
    if not sep:
        return {}
    recap: dict[str, dict[str, int]] = {}
    for line in tail.splitlines()[1:]:
        match = RECAP_LINE.match(line.strip())
        if match:
            pairs = (item.split("=") for item in match["counts"].split())
            recap[match["host"]] = {key: int(value) for key, value in pairs}
    return recap


def lab_env(lab_docker_host: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["DOCKER_HOST"] = lab_docker_host or env.get("ORION_TEST_DOCKER_HOST") \
        or env.get("DOCKER_HOST", "unix:///run/orion-test/docker.sock")
    return env


def lab_sh(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LAB_SH), *args], cwd=REPO, env=lab_env(), text=True,
                          capture_output=True, timeout=timeout)


def run_playbook(lab: Lab, playbook: str, *args: str, timeout: float = 900,
                 inventory: Path | None = None) -> PlaybookRun:
    """Run a playbook from the repository root (so ansible.cfg applies), as a user would."""
    env = lab_env(lab.docker_host)
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    started = time.monotonic()
    proc = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(inventory or lab.inventory), playbook, *args], cwd=REPO,
                          env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout)
    return PlaybookRun(rc=proc.returncode, seconds=time.monotonic() - started, output=proc.stdout,
                       recap=parse_recap(proc.stdout))


def on_host(lab: Lab, host: Host, *cmd: str, check: bool = True, timeout: float = 60) -> str:
    """Run a command on a lab host (docker exec: works even when its sshd or agent does not)."""
    proc = subprocess.run(["docker", "exec", host.container, *cmd], env=lab_env(lab.docker_host),
                          text=True, capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{host.name}: {' '.join(cmd)} -> {proc.returncode}: {proc.stderr}{proc.stdout}")
    return proc.stdout


def docker(lab: Lab, *args: str, timeout: float = 120) -> str:
    proc = subprocess.run(["docker", *args], env=lab_env(lab.docker_host), text=True,
                          capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} -> {proc.returncode}: {proc.stderr}")
    return proc.stdout


def http(method: str, url: str, body: Any = None, timeout: float = 5, token: str | None = None,
         context: ssl.SSLContext | None = None) -> tuple[int, Any]:
    """One HTTP exchange with an agent; JSON in and out. Connection errors are status 0."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    except (urllib.error.URLError, OSError):
        return 0, None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def eventually(probe: Callable[[], T | None], timeout: float, step: float = 1.0, what: str = "") -> T:
    """Poll until probe returns something truthy; fail with what was last seen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or probe}; last: {last!r}")


def unit_runs(lab: Lab, host: Host, unit: str = "orion") -> list[tuple[float, float]]:
    """Each restart of the unit as (stop began, start finished), in seconds since the epoch
    (the lab's hosts share the controller's clock), read from systemd's own journal lines
    ("Stopping orion.service ...", "Started orion.service ...")."""
    out = on_host(lab, host, "journalctl", "-u", unit, "-o", "json", "--no-pager",
                  "--output-fields=MESSAGE,_PID", check=False)
    downs: list[tuple[float, float]] = []
    stopping: float | None = None
    for line in out.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("_PID") != "1":  # the agent's own lines
            continue
        when = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
        message = entry.get("MESSAGE") or ""
        if isinstance(message, list):  # journald sends non-UTF-8 messages as byte lists
            message = bytes(message).decode(errors="replace")
        if message.startswith("Stopping "):
            stopping = when
        elif message.startswith("Started ") and stopping is not None:
            downs.append((stopping, when))
            stopping = None
    return downs


def journal(lab: Lab, host: Host, lines: int = 150) -> str:
    proc = subprocess.run(["docker", "exec", host.container, "journalctl", "-u", "orion", "--no-pager",
                           "-n", str(lines)], env=lab_env(lab.docker_host), text=True, capture_output=True,
                          timeout=30)
    return proc.stdout + proc.stderr
