"""Driving lab_agent.py (the datapath loop) on lab hosts, and getting into containers' namespaces."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from netlab_kit import LabHost, in_netns

AGENT = Path(__file__).with_name("lab_agent.py")
SETTINGS = {"cluster_cidr": "10.42.0.0/16", "vni": 1, "port": 4789, "mtu": 1450, "bridge": "orion0", "vxlan": "orion.1"}


def lease(node_id: str, subnet: str, underlay_ip: object) -> dict:
    return {"node_id": node_id, "subnet": subnet, "underlay_ip": str(underlay_ip)}


class Agents:
    """One config file per host; ``set_leases`` rewrites them, ``once``/``serve`` run the loop."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.configs: dict[str, Path] = {}

    def set_leases(self, host: LabHost, own: dict, peers: list[dict]) -> None:
        path = self.workdir / f"agent-{host.name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"settings": SETTINGS, "own": own, "peers": peers, "docker_host": host.docker_host}))
        tmp.replace(path)
        self.configs[host.name] = path

    def _argv(self, host: LabHost, *mode: str) -> list[str]:
        return ["ip", "netns", "exec", host.netns, sys.executable, str(AGENT), str(self.configs[host.name]), *mode]

    def once(self, host: LabHost) -> dict:
        out = subprocess.run(self._argv(host, "once"), capture_output=True, text=True, timeout=120, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"agent pass on {host.netns} failed:\n{out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def observe(self, host: LabHost) -> dict:
        out = subprocess.run(self._argv(host, "observe"), capture_output=True, text=True, timeout=60, check=True)
        return json.loads(out.stdout)

    def serve(self, host: LabHost, interval_s: float) -> Served:
        log = self.workdir / f"agent-{host.name}-{time.monotonic_ns()}.jsonl"
        with open(log, "w") as f:
            proc = subprocess.Popen(self._argv(host, "serve", str(interval_s)), stdout=f,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return Served(proc, log)


class Served:
    """A running agent process: its passes as they are printed, wake and stop."""

    def __init__(self, proc: subprocess.Popen, log: Path) -> None:
        self.proc = proc
        self.log = log

    def passes(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def wait_passes(self, n: int, timeout_s: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while len(self.passes()) < n:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}:\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{n} passes not seen in {timeout_s}s:\n{self.log.read_text()}")
            time.sleep(0.05)
        return self.passes()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def in_netns_of(pid: int, fn):
    """Run ``fn()`` in a thread that joined the network namespace of ``pid`` (a container's
    init); a socket made there stays in that namespace when used from any thread later."""
    return in_netns(f"/proc/{pid}/ns/net", fn)


def connect_from(pid: int, addr: tuple[str, int], timeout_s: float = 5) -> socket.socket:
    """A TCP connection opened from inside the container whose init is ``pid``."""
    def dial() -> socket.socket:
        return socket.create_connection(addr, timeout=timeout_s)
    return in_netns_of(pid, dial)
