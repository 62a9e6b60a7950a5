"""The datapath loop as a lab host's agent runs it: a process inside the host's namespace.

    ip netns exec onl0-a python tests/netlab/lab_agent.py CONFIG once     # one pass, one JSON line
    ip netns exec onl0-a python tests/netlab/lab_agent.py CONFIG serve S  # a pass every S s, on SIGUSR1,
                                                                          # a JSON line each; SIGTERM stops
    ip netns exec onl0-a python tests/netlab/lab_agent.py CONFIG observe  # the kernel as the planner sees it

CONFIG is JSON: {"settings": {...}, "own": LEASE, "peers": [LEASE...], "docker_host": "unix://..."},
LEASE = {"node_id", "subnet", "underlay_ip"} (the VTEP MAC is derived, as the state machine
will). It is read again before every pass: a test changes the leases by rewriting the file.
The state machine's half (where leases come from) is not here; this is the kernel's half.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import asdict
from ipaddress import IPv4Network
from pathlib import Path

import docker

from orion.network.bridge_network import DockerNetworks
from orion.network.datapath import DatapathInputs
from orion.network.datapath_loop import DatapathLoop, DatapathPass
from orion.network.kernel import NetlinkKernel
from orion.network.nft import NftFirewall
from orion.network.overlay import OverlaySettings, lease_of


def load(path: Path) -> tuple[DatapathInputs, str]:
    raw = json.loads(path.read_text())
    s = raw["settings"]
    settings = OverlaySettings(cluster_cidr=IPv4Network(s["cluster_cidr"]), vni=s["vni"], port=s["port"],
                               mtu=s["mtu"], bridge=s["bridge"], vxlan=s["vxlan"])
    own = lease_of(**raw["own"])
    peers = tuple(lease_of(**p) for p in raw["peers"])
    return DatapathInputs(settings, own, peers), raw["docker_host"]


def as_json(result: DatapathPass) -> str:
    return json.dumps({"applied": [str(c) for c in result.applied], "failed": [str(f) for f in result.failed],
                       "notes": list(result.notes), "converged": result.converged})


def main(argv: list[str]) -> int:
    path, mode = Path(argv[1]), argv[2]
    inputs, docker_host = load(path)
    kernel = NetlinkKernel(inputs.settings)
    if mode == "observe":
        k = kernel.observe()
        entries = {name: sorted((asdict(e) for e in getattr(k, name)), key=str)
                   for name in ("fdb", "neighbours", "routes")}
        print(json.dumps({"device": asdict(k.device) if k.device else None, **entries, "sysctls": dict(k.sysctls)},
                         default=str))
        return 0
    client = docker.DockerClient(base_url=docker_host, timeout=30)
    out = sys.stdout

    def emit(result: DatapathPass) -> None:
        out.write(as_json(result) + "\n")
        out.flush()

    loop = DatapathLoop(lambda: load(path)[0], kernel, NftFirewall(), DockerNetworks(client),
                        interval_s=float(argv[3]) if mode == "serve" else 5.0, on_pass=emit)
    if mode == "once":
        emit(loop.run_pass())
        return 0
    stopped = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: loop.wake())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    loop.start()
    stopped.wait()
    loop.stop()  # the datapath stays as it is
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
