"""The datapath loop's pass over in-memory hosts: the kernel model, a firewall and a network
that remember what was applied. (The real pass runs in tests/netlab.)"""

from __future__ import annotations

import threading
from ipaddress import IPv4Network

from kernel_model import apply

from orion.network.bridge_network import ObservedNetwork, RecreateNetwork
from orion.network.datapath import DatapathInputs
from orion.network.datapath_loop import DatapathLoop
from orion.network.datapath_state import ObservedKernel
from orion.network.firewall import ApplyTable, ObservedFirewall
from orion.network.overlay import OverlaySettings, lease_of

SETTINGS = OverlaySettings(cluster_cidr=IPv4Network("10.42.0.0/16"), vni=1, port=4789, mtu=1450,
                           bridge="orion0", vxlan="orion.1")
A = lease_of("a", "10.42.1.0/24", "10.77.0.1")
B = lease_of("b", "10.42.2.0/24", "10.77.0.2")


class ModelKernel:
    def __init__(self) -> None:
        self.state = ObservedKernel()
        self.refuse: str = ""

    def observe(self) -> ObservedKernel:
        return self.state

    def apply(self, change) -> None:
        if self.refuse and self.refuse in str(change):
            raise OSError("EPERM")
        self.state = apply(self.state, change)


class MemoryFirewall:
    def __init__(self) -> None:
        self.seen = ObservedFirewall(None, docker_user=True)

    def observe(self) -> ObservedFirewall:
        return self.seen

    def apply(self, change) -> None:
        if isinstance(change, ApplyTable):
            self.seen = ObservedFirewall(change.rules.digest, change.rules.rule_counts, True,
                                         self.seen.docker_user_rule)
        else:
            self.seen = ObservedFirewall(self.seen.digest, self.seen.rule_counts, True, True)


class MemoryNetworks:
    def __init__(self) -> None:
        self.net: ObservedNetwork | None = None

    def observe(self, name: str) -> ObservedNetwork | None:
        return self.net

    def apply(self, decision) -> None:
        s = decision.spec
        self.net = ObservedNetwork("n1", "bridge", s.subnet, s.gateway, tuple(sorted(s.options)), 0)


def loop_for(kernel: ModelKernel, peers=(B,)) -> DatapathLoop:
    return DatapathLoop(lambda: DatapathInputs(SETTINGS, A, peers), kernel, MemoryFirewall(), MemoryNetworks(), 5.0)


def test_a_first_pass_builds_everything_in_order_and_the_next_changes_nothing():
    loop = loop_for(ModelKernel())
    first = loop.run_pass()
    lines = [str(c) for c in first.applied]
    assert lines[0] == "network orion 10.42.1.0/24 create"
    assert lines[1:3] == ["nft table ip orion applied (absent)", "iptables DOCKER-USER: accept mark 0x4200000 inserted"]
    assert lines[3].startswith("create orion.1") and lines[-1].startswith("route 10.42.2.0/24")
    assert not first.failed
    second = loop.run_pass()
    assert second.converged and str(second) == "converged"


def test_a_fresh_loop_on_a_converged_host_changes_nothing():
    kernel = ModelKernel()
    old = loop_for(kernel)
    old.run_pass()
    new = DatapathLoop(old.inputs, kernel, old.firewall, old.networks, 5.0)
    assert new.run_pass().applied == ()


def test_a_refused_change_is_reported_and_the_rest_of_the_pass_still_runs():
    kernel = ModelKernel()
    kernel.refuse = "fdb"
    loop = loop_for(kernel)
    result = loop.run_pass()
    assert [str(f) for f in result.failed] == ["datapath: fdb 0e:42:0a:2a:02:00 dst 10.77.0.2 set (b): EPERM"]
    assert str(result.applied[-1]).startswith("route 10.42.2.0/24")
    kernel.refuse = ""
    assert [str(c) for c in loop.run_pass().applied] == ["fdb 0e:42:0a:2a:02:00 dst 10.77.0.2 set (b)"]


def test_no_lease_yet_means_no_change():
    loop = DatapathLoop(lambda: None, ModelKernel(), MemoryFirewall(), MemoryNetworks(), 5.0)
    assert loop.run_pass().notes == ("no lease yet",)


def test_a_network_with_the_old_subnet_is_recreated():
    loop = loop_for(ModelKernel())
    loop.run_pass()
    assert loop.networks is not None
    loop.networks.net = ObservedNetwork("old", "bridge", IPv4Network("10.42.7.0/24"), None, (), 0)
    assert isinstance(loop.run_pass().applied[0], RecreateNetwork)


def test_wake_runs_a_pass_and_stop_leaves_the_kernel_as_it_is():
    kernel = ModelKernel()
    passes: list = []
    done = threading.Event()
    loop = DatapathLoop(lambda: DatapathInputs(SETTINGS, A, (B,)), kernel, MemoryFirewall(), MemoryNetworks(),
                        interval_s=3600, on_pass=lambda r: (passes.append(r), done.set()))
    loop.start()
    assert done.wait(5)  # the first pass runs at once
    done.clear()
    loop.wake()
    assert done.wait(5)
    loop.stop()
    assert len(passes) == 2 and passes[1].converged
    assert kernel.state.routes  # nothing torn down
