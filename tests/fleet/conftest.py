"""The fleet lab as a fixture, and the agents' journals on any failure.

Only tests marked `fleet` get the lab, and only with ORION_TEST_FLEET=1: it
boots three systemd hosts and installs docker.io in each (a few minutes).
ORION_FLEET_KEEP=1 leaves the lab up afterwards for a look around
(tests/fleet/lab.sh down removes it); ORION_FLEET_REUSE=1 runs against a lab
that is already up instead of making a new one (to re-run the later tests of
the story while working on them: -k ...; the earlier tests' state is gone).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleetlab import Lab, journal, lab_sh

LAB_ENABLED = os.environ.get("ORION_TEST_FLEET") == "1"
_active: list[Lab] = []


def _why_not() -> str | None:
    if not LAB_ENABLED:
        return "fleet lab is opt-in: set ORION_TEST_FLEET=1 (boots 3 systemd hosts, a few minutes)"
    for tool in ("docker", "debootstrap", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"fleet lab needs {tool} on the controller"
    return None


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    name = os.environ.get("ORION_LAB_NAME", "orion-fleet")
    lab_dir = os.environ.get("ORION_LAB_DIR", f"/tmp/{name}")
    if not (os.environ.get("ORION_FLEET_REUSE") == "1" and (Path(lab_dir) / "lab.json").exists()):
        lab_sh("down")  # a lab left behind by an interrupted run
        up = lab_sh("up")
        if up.returncode != 0:
            lab_sh("down")
            pytest.fail(f"lab.sh up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
    the_lab = Lab.load(Path(lab_dir) / "lab.json")
    _active.append(the_lab)
    try:
        yield the_lab
    finally:
        _active.remove(the_lab)
        if os.environ.get("ORION_FLEET_KEEP") != "1":
            down = lab_sh("down")
            assert down.returncode == 0, down.stderr


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.failed and _active and item.get_closest_marker("fleet"):
        lab = _active[-1]
        for host in lab.hosts:
            try:
                text = journal(lab, host)
            except Exception as exc:  # a stopped host has no journal to read
                text = f"(no journal: {exc})"
            # Shown under the failure, like captured output.
            report.sections.append((f"journalctl -u orion on {host.name}", text))
    return report
