"""An underlay that cannot carry the overlay ends a real agent: exit code 2 and one line naming both MTUs.

One ``orion agent`` bootstraps alone inside a network namespace of its own whose loopback (its
underlay: the advertise address is 127.0.0.1) has an MTU of 1400, with the overlay's MTU set to
1450. It leads, sets the network, then asks for its host's lease: the state machine refuses it
with kind ``mtu`` (orion/state/results.py), the lease loop ends the agent (orion/agent/fatal.py),
and the agent's own stderr says why. Nothing is retried: only the operator can fix the MTU.
The engine is the test engine (its ID is the lease's host key); nothing is created on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from harness import ORION, free_ports  # noqa: E402 - the integration harness, found by path

pytestmark = pytest.mark.netlab

UNDERLAY_MTU = 1400
OVERLAY_MTU = 1450


@pytest.fixture
def netns() -> Iterator[str]:
    if os.environ.get("ORION_TEST_NETLAB", "1") == "0" or os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and iproute2 (a network namespace); ORION_TEST_NETLAB=0 skips")
    name = f"orion-mtu-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "mtu", str(UNDERLAY_MTU), "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_an_underlay_below_the_overlays_mtu_ends_the_agent_with_exit_2_and_one_line(tmp_path, netns) -> None:
    api, gossip, raft = free_ports(3)  # free in the root namespace; the agent's namespace has nothing bound
    (tmp_path / "resolv.conf").write_text("")
    args = ["ip", "netns", "exec", netns, *ORION, "agent", "--id", "mtu1", "--bootstrap", "--bind", "127.0.0.1",
            "--insecure-raft", "--data-dir", str(tmp_path / "data"),
            "--docker-host", os.environ.get("ORION_TEST_DOCKER_HOST", "unix:///run/orion-test/docker.sock"),
            "--port", str(api), "--gossip-port", str(gossip), "--raft-port", str(raft),
            "--network", "--network-mtu", str(OVERLAY_MTU)]
    env = {**os.environ, "ORION_RAFT_SECRET": "mtu-test-secret", "ORION_DNS_RESOLV_CONF": str(tmp_path / "resolv.conf")}
    done = subprocess.run(args, capture_output=True, text=True, timeout=90, env=env)
    assert done.returncode == 2, f"exit {done.returncode}\n{done.stderr[-3000:]}"
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert errors, done.stderr[-3000:]
    line = errors[-1]
    assert line.startswith("Error: no subnet lease for host ") and "(127.0.0.1)" in line, line
    assert f"underlay MTU {UNDERLAY_MTU}" in line and f"overlay's MTU {OVERLAY_MTU} plus 50" in line, line
    assert f"at least {OVERLAY_MTU + 50}" in line, line
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
