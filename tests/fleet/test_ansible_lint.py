"""Static checks of the fleet rollout: fast, no lab needed.

- ansible-lint's production profile over the playbooks and roles;
- every playbook passes ansible-playbook --syntax-check;
- each role's meta/argument_specs.yml documents exactly its defaults/main.yml;
- systemd/orion.service is the role's template rendered with the defaults;
- the unit passes `systemd-analyze verify` and its `systemd-analyze security`
  exposure is at most 4.0 (systemd's "OK" band starts below 4.0... we hold 4.0
  as the ceiling the issue sets, and print the measured figure).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fleetlab import parse_recap
from render_unit import REFERENCE, REPO, render_unit

VENV_BIN = REPO / ".venv/bin"
ROLES = ("docker_engine", "orion")
PLAYBOOKS = sorted((REPO / "playbooks").glob("*.yml"))
EXPOSURE_CEILING = 4.0


def tool(name: str) -> str:
    found = VENV_BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (.venv/bin/pip install ansible-core ansible-lint)")
    return path


def test_ansible_lint_production_profile() -> None:
    lint = tool("ansible-lint")
    proc = subprocess.run([lint, "--offline", "--profile", "production", "--nocolor", "playbooks", "roles"],
                          cwd=REPO, text=True, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: p.name)
def test_playbook_syntax(playbook: Path, tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"orion_servers": {"hosts": {"a": None}}}}}))
    proc = subprocess.run([tool("ansible-playbook"), "--syntax-check", "-i", str(inventory), str(playbook),
                           "-e", "orion_remove=a"], cwd=REPO, text=True, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_document_exactly_the_defaults(role: str) -> None:
    defaults = yaml.safe_load((REPO / f"roles/{role}/defaults/main.yml").read_text())
    spec = yaml.safe_load((REPO / f"roles/{role}/meta/argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    assert sorted(options) == sorted(defaults)
    for name, option in options.items():
        assert option.get("default") == defaults[name], name
        assert option.get("description"), f"{name} has no description"
        assert name.startswith(f"{role}_"), f"{name} lacks the role prefix"


def test_reference_unit_is_the_rendered_template() -> None:
    assert REFERENCE.read_text() == render_unit(), "run: .venv/bin/python tests/fleet/render_unit.py --write"


def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_unit_has_what_the_issue_asks_for() -> None:
    unit = unit_settings(REFERENCE.read_text())
    expected = {
        "Type": "notify", "NotifyAccess": "all", "Restart": "on-failure", "User": "orion",
        "SupplementaryGroups": "docker", "StateDirectory": "orion", "NoNewPrivileges": "yes",
        "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/orion", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "RestrictRealtime": "yes", "CapabilityBoundingSet": "CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
        "AmbientCapabilities": "CAP_NET_ADMIN CAP_NET_BIND_SERVICE", "StandardOutput": "journal",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK", "LimitNOFILE": "65536",
    }
    assert {key: unit.get(key, [None])[0] for key in expected} == expected
    assert "@system-service" in unit["SystemCallFilter"]
    # Long enough for a graceful leave, which the agent bounds well below this.
    assert int(unit["TimeoutStopSec"][0].rstrip("s")) >= 30


def systemd_root(tmp_path: Path) -> Path:
    """A root with the controller's systemd units and a stand-in for the agent binary, so
    `systemd-analyze verify` can load the unit without Orion installed or systemd running."""
    units = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                  if (p / "sysinit.target").exists()), None)
    if shutil.which("systemd-analyze") is None or units is None:
        pytest.skip("no systemd-analyze and systemd units on this machine (apt-get install systemd)")
    root = tmp_path / "root"
    shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/orion.service").write_text(REFERENCE.read_text())
    binary = root / "opt/orion/venv/bin/orion"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    return root


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    root = systemd_root(tmp_path)
    proc = subprocess.run(["systemd-analyze", "verify", f"--root={root}", "orion.service"],
                          text=True, capture_output=True, timeout=60)
    # verify exits 0 on unknown keys and bad values, and only warns: any word about orion.service counts.
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if "orion.service" in line]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr


def test_systemd_analyze_security_exposure(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze on this machine (apt-get install systemd)")
    unit = tmp_path / "orion.service"
    unit.write_text(REFERENCE.read_text())
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                          text=True, capture_output=True, timeout=60)
    match = re.search(r"Overall exposure level for orion\.service: ([0-9.]+)", proc.stdout)
    if match is None and "offline" in proc.stderr:
        pytest.skip(f"this systemd-analyze cannot analyse a unit file offline: {proc.stderr.strip()}")
    assert match, proc.stdout + proc.stderr
    exposure = float(match[1])
    print(f"\nsystemd-analyze security exposure of orion.service: {exposure}")
    assert exposure <= EXPOSURE_CEILING, proc.stdout


def test_recap_parser_reads_counts_per_host() -> None:
    output = """PLAY RECAP *********
orion-1                    : ok=43   changed=0    unreachable=0    failed=0    skipped=3    rescued=0    ignored=0
orion-2                    : ok=40   changed=2    unreachable=0    failed=1    skipped=6    rescued=0    ignored=0
"""
    recap = parse_recap(output)
    assert recap["orion-1"]["changed"] == 0 and recap["orion-2"]["changed"] == 2
    assert recap["orion-2"]["failed"] == 1 and sorted(recap) == ["orion-1", "orion-2"]
