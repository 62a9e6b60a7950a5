"""The playbooks under every supported ansible-core release, oldest and newest
(tests/fleet/ansible-versions.txt): fast, no lab.

Each release gets its own cached venv (tests/fleet/ensure-ansible-versions.sh,
.venv-ansible-<version>). Under each: every playbook passes --syntax-check with
an INI inventory, and a --check run on the controller generates the fleet's
secrets for real and renders orion.toml, the firewall rules and Prometheus's
scrape config from an INI inventory whose booleans are strings under [all:vars]
(what broke `when: orion_wheelhouse` on 2.19).
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ENSURE = REPO / "tests/fleet/ensure-ansible-versions.sh"
VERSIONS = [line.strip() for line in (REPO / "tests/fleet/ansible-versions.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
PLAYBOOKS = sorted((REPO / "playbooks").glob("*.yml"))


def test_oldest_and_newest_are_pinned() -> None:
    parsed = [tuple(int(part) for part in v.split(".")) for v in VERSIONS]
    assert len(parsed) >= 2 and parsed == sorted(parsed), VERSIONS
    assert parsed[0][:2] == (2, 17), "2.17 is the oldest release the roles support (docs/fleet.md)"


@pytest.fixture(scope="module")
def bins() -> dict[str, Path]:
    """version -> bin dir of its venv (made once by the script, reused afterwards)."""
    proc = subprocess.run([str(ENSURE)], cwd=REPO, text=True, capture_output=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"{ENSURE.name} failed:\n{proc.stderr}")
    dirs = [Path(line) for line in proc.stdout.split()]
    return dict(zip(VERSIONS, dirs, strict=True))


def run(bin_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run([str(bin_dir / "ansible-playbook"), *args], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=timeout)


def ini_inventory(path: Path, secrets: Path, tls: str) -> Path:
    path.write_text(
        "[all:vars]\n"
        "ansible_connection=local\n"
        f"ansible_python_interpreter={REPO / '.venv/bin/python'}\n"
        f"orion_secrets_dir={secrets}\n"
        f"orion_tls={tls}\n"
        "orion_wheelhouse=true\n"
        "orion_firewall_manage=true\n"
        "orion_leave_on_terminate=false\n"
        'orion_admin_networks=["192.0.2.0/24"]\n'
        "[orion_servers]\n"
        "orion-a orion_advertise_address=10.9.0.1 orion_bind_address=10.9.0.1\n"
        "orion-b orion_advertise_address=10.9.0.2 orion_bind_address=0.0.0.0\n")
    return path


@pytest.mark.parametrize("version", VERSIONS)
def test_syntax_check_with_an_ini_inventory(version: str, bins: dict[str, Path], tmp_path: Path) -> None:
    inventory = ini_inventory(tmp_path / "hosts.ini", tmp_path / "secrets", "true")
    proc = run(bins[version], "--syntax-check", "-i", str(inventory), *map(str, PLAYBOOKS),
               "-e", "orion_remove=orion-b")
    assert proc.returncode == 0, f"ansible-core {version}:\n{proc.stdout}{proc.stderr}"
    assert proc.stdout.count("playbook: ") == len(PLAYBOOKS), proc.stdout


def render(bin_dir: Path, tmp_path: Path, tls: str, run_id: str = "") -> tuple[str, Path]:
    out = tmp_path / f"out-{tls}{run_id}"
    out.mkdir()
    inventory = ini_inventory(tmp_path / f"hosts-{tls}.ini", tmp_path / "secrets", tls)
    args = ["--check", "-i", str(inventory), "tests/fleet/render_check.yml", "-e", f"out_dir={out}",
            "-e", "@roles/monitoring/defaults/main.yml", "-e", "@roles/monitoring/vars/main.yml"]
    proc = run(bin_dir, *args)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr
    return proc.stdout, out


@pytest.fixture(scope="module", params=VERSIONS)
def locked_down(request: pytest.FixtureRequest, bins: dict[str, Path],
                tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, dict[str, bytes]]:
    """Two --check runs with orion_tls=true under one release: (out dir, secrets dir,
    second run's output, the secrets after the first run)."""
    tmp_path = tmp_path_factory.mktemp(f"ansible-{request.param}")
    _, out = render(bins[request.param], tmp_path, "true")
    secrets = tmp_path / "secrets"
    first = {p.name: p.read_bytes() for p in secrets.iterdir()}
    second, _ = render(bins[request.param], tmp_path, "true", run_id="-again")
    return out, secrets, second, first


def test_locked_down_config_renders_from_ini_strings(locked_down: tuple[Path, Path, str, dict[str, bytes]]) -> None:
    out, secrets, _, _ = locked_down
    config = tomllib.loads((out / "orion-b-orion.toml").read_text())
    assert config["tls_cert"] == "/etc/orion/tls/node.crt" and config["tls_key"] == "/etc/orion/tls/node.key"
    assert config["tls_ca"] == "/etc/orion/tls/ca.crt"  # peers verify each other's server certificates
    assert "tls_client_ca" not in config, "client certificates are opt-in (orion_tls_verify_clients)"
    assert config["api_token_file"] == "/etc/orion/api-token"
    assert config["raft_secret_file"] == "/etc/orion/raft-secret"
    assert "raft_secret" not in config and "api_token" not in config, "secrets belong in their files"
    assert config["leave_on_terminate"] is False
    assert config["join"] == ["10.9.0.1:8000"] and config["bootstrap"] is False
    # The certificates chain to the fleet CA and name each host's advertise address.
    for host, address in (("orion-a", "10.9.0.1"), ("orion-b", "10.9.0.2")):
        cert = secrets / f"{host}.crt"
        verify = subprocess.run(["openssl", "verify", "-CAfile", str(secrets / "ca.crt"), str(cert)],
                                text=True, capture_output=True)
        assert verify.returncode == 0, verify.stderr
        san = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
                             text=True, capture_output=True).stdout
        assert f"IP Address:{address}" in san and f"DNS:{host}" in san
    assert len((secrets / "api-token").read_text().strip()) == 64
    scrape = yaml.safe_load((out / "orion-a-prometheus.yml").read_text())
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "orion")
    assert job["scheme"] == "https" and job["tls_config"]["ca_file"] == "/etc/prometheus/orion-ca.crt"
    assert job["authorization"]["credentials_file"] == "/etc/prometheus/orion-api-token"
    assert job["static_configs"][0]["targets"] == ["10.9.0.1:8000", "10.9.0.2:8000"]
    # The firewall accepts the members and the admin network, not the world.
    rules = (out / "orion-a-firewall.rules").read_text()
    assert "-s 10.9.0.1 " in rules and "-s 10.9.0.2 " in rules and "-s 192.0.2.0/24 " in rules
    assert "0.0.0.0/0" not in rules


@pytest.mark.parametrize("version", VERSIONS)
def test_tls_off_renders_inline_secrets(version: str, bins: dict[str, Path], tmp_path: Path) -> None:
    # "false" from [all:vars] is a non-empty string: only | bool makes it false.
    output, out = render(bins[version], tmp_path, "false")
    config = tomllib.loads((out / "orion-a-orion.toml").read_text())
    assert not {"tls_cert", "tls_key", "tls_client_ca", "api_token_file", "raft_secret_file"} & set(config)
    assert len(config["api_token"]) == 64 and len(config["raft_secret"]) == 64
    assert config["bootstrap"] is True and config["leave_on_terminate"] is False
    assert not (tmp_path / "secrets" / "ca.crt").exists(), "no CA without orion_tls"
    scrape = yaml.safe_load((out / "orion-a-prometheus.yml").read_text())
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "orion")
    assert "scheme" not in job and "tls_config" not in job


def test_second_run_keeps_the_secrets(locked_down: tuple[Path, Path, str, dict[str, bytes]]) -> None:
    _, secrets, output, first = locked_down
    assert {p.name: p.read_bytes() for p in secrets.iterdir()} == first
    assert "TASK [orion : Generate the fleet CA once]" in output
    for task in ("Generate the fleet CA once", "Sign this host's certificate", "Generate the API token"):
        # ansible.cfg hides skipped tasks: a missing header means it was skipped.
        block = output.partition(f"TASK [orion : {task}")[2].split("TASK [", 1)[0]
        assert "changed:" not in block, f"{task} ran again:\n{block}"
