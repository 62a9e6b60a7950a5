"""The datapath's kernel adapter: reads and changes the VXLAN device, FDB, neighbours, routes
and the Docker bridge's ports' hairpin mode of the current network namespace over netlink
(pyroute2), and the sysctls under /proc/sys/net. Netlink needs CAP_NET_ADMIN only: the fleet's
unit keeps /proc/sys and /sys read-only (ProtectKernelTunables), so the role sets the sysctls
and a planner that finds them right writes nothing there.

The agent runs in the host's namespace; the tests run this inside one namespace per lab host.
Each call opens its own netlink socket, so there is no long-lived socket to go stale and
nothing to close. Deletes are idempotent: an entry already gone is what a delete wanted.
"""

from __future__ import annotations

import errno
import socket
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ndmsg import NTF_SELF, NUD_PERMANENT
from pyroute2.netlink.rtnl.rtmsg import RTNH_F_ONLINK

from orion.network.datapath import wanted_sysctls
from orion.network.datapath_state import (
    AddAddress,
    BridgePort,
    Change,
    CreateDevice,
    FdbEntry,
    NeighEntry,
    ObservedDevice,
    ObservedKernel,
    RemoveAddress,
    RemoveFdb,
    RemoveNeighbour,
    RemoveRoute,
    ReplaceDevice,
    RouteEntry,
    SetFdb,
    SetHairpin,
    SetMtu,
    SetNeighbour,
    SetRoute,
    SetSysctl,
    SetUp,
    VxlanSpec,
)
from orion.network.overlay import OverlaySettings, normal_mac

MAIN_TABLE = 254
IFF_UP = 0x1
GONE = {errno.ENOENT, errno.ESRCH, errno.ENODEV, errno.EADDRNOTAVAIL}
PROC_SYS = Path("/proc/sys")


class KernelError(Exception):
    """A netlink or sysctl operation failed; the message names the change and the errno."""


class NetlinkKernel:
    """``observe()`` and ``apply(change)`` for one overlay's VXLAN device, in this namespace."""

    def __init__(self, settings: OverlaySettings, proc_sys: Path = PROC_SYS) -> None:
        self.settings = settings
        self.proc_sys = proc_sys

    # -- reading ----------------------------------------------------------------------------

    def observe(self) -> ObservedKernel:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=self.settings.vxlan)
            sysctls = self._sysctls()
            ports = self._bridge_ports(ipr)
            if not found:
                return ObservedKernel(sysctls=sysctls, bridge_ports=ports)
            index = found[0]
            device = self._device(ipr, index)
            fdb = frozenset(
                FdbEntry(normal_mac(n.get("NDA_LLADDR")), IPv4Address(n.get("NDA_DST")))
                for n in ipr.fdb("dump", ifindex=index)
                if n["ifindex"] == index and n.get("NDA_DST") and n.get("NDA_LLADDR"))
            neighbours = frozenset(
                NeighEntry(IPv4Address(n.get("NDA_DST")),
                           normal_mac(n.get("NDA_LLADDR")) if n.get("NDA_LLADDR") else None,
                           bool(n["state"] & NUD_PERMANENT))
                for n in ipr.neigh("dump", ifindex=index, family=socket.AF_INET)
                if n["ifindex"] == index and n.get("NDA_DST"))
            routes = frozenset(
                RouteEntry(IPv4Network(f"{r.get('RTA_DST') or '0.0.0.0'}/{r['dst_len']}"),
                           IPv4Address(r.get("RTA_GATEWAY")) if r.get("RTA_GATEWAY") else None,
                           bool(r["flags"] & RTNH_F_ONLINK))
                for r in ipr.route("dump", family=socket.AF_INET, table=MAIN_TABLE)
                if r.get("RTA_OIF") == index and r.get("RTA_TABLE") == MAIN_TABLE)
            return ObservedKernel(device, fdb, neighbours, routes, sysctls, ports)

    def _device(self, ipr: IPRoute, index: int) -> ObservedDevice:
        link = ipr.get_links(index)[0]
        info = link.get("IFLA_LINKINFO")
        kind = info.get("IFLA_INFO_KIND") if info else ""
        addresses = frozenset(IPv4Interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}")
                              for a in ipr.get_addr(index=index, family=socket.AF_INET))
        common = {"name": link.get("IFLA_IFNAME"), "kind": kind or "", "mac": normal_mac(link.get("IFLA_ADDRESS")),
                  "mtu": link.get("IFLA_MTU"), "up": bool(link["flags"] & IFF_UP), "addresses": addresses}
        if kind != "vxlan":
            return ObservedDevice(**common)
        data = info.get("IFLA_INFO_DATA")
        local = data.get("IFLA_VXLAN_LOCAL")
        return ObservedDevice(**common, vni=data.get("IFLA_VXLAN_ID"), local=IPv4Address(local) if local else None,
                              port=data.get("IFLA_VXLAN_PORT"), learning=bool(data.get("IFLA_VXLAN_LEARNING")))

    def _sysctls(self) -> tuple[tuple[str, str], ...]:
        out = []
        for key, _ in wanted_sysctls(self.settings):
            try:
                out.append((key, (self.proc_sys / key).read_text().strip()))
            except OSError:
                out.append((key, ""))
        return tuple(out)

    def _bridge_ports(self, ipr: IPRoute) -> frozenset[BridgePort]:
        """The Docker bridge's ports and their hairpin mode (IFLA_BRPORT_MODE); none while the
        bridge does not exist."""
        found = ipr.link_lookup(ifname=self.settings.bridge)
        if not found:
            return frozenset()
        ports = []
        for link in ipr.get_links():
            if link.get_attr("IFLA_MASTER") != found[0]:
                continue
            info = link.get_attr("IFLA_LINKINFO")
            data = info.get_attr("IFLA_INFO_SLAVE_DATA") if info else None
            mode = data.get_attr("IFLA_BRPORT_MODE") if data else None
            ports.append(BridgePort(link.get_attr("IFLA_IFNAME"), bool(mode)))
        return frozenset(ports)

    # -- changing ---------------------------------------------------------------------------

    def apply(self, change: Change) -> None:
        """Carry out one change; raise KernelError naming it if the kernel refuses."""
        try:
            if isinstance(change, SetSysctl):
                (self.proc_sys / change.key).write_text(change.value + "\n")
                return
            with IPRoute() as ipr:
                self._apply(ipr, change)
        except NetlinkError as e:
            if e.code in GONE and isinstance(change, RemoveFdb | RemoveNeighbour | RemoveRoute | RemoveAddress):
                return
            raise KernelError(f"{change}: {errno.errorcode.get(e.code, e.code)} {e}") from e
        except OSError as e:
            raise KernelError(f"{change}: {e}") from e

    def _index(self, ipr: IPRoute) -> int:
        found = ipr.link_lookup(ifname=self.settings.vxlan)
        if not found:
            raise NetlinkError(errno.ENODEV, f"no device {self.settings.vxlan}")
        return found[0]

    @staticmethod
    def _create(ipr: IPRoute, spec: VxlanSpec) -> None:
        ipr.link("add", ifname=spec.name, kind="vxlan", vxlan_id=spec.vni, vxlan_local=str(spec.local),
                 vxlan_port=spec.port, vxlan_learning=0, address=spec.mac, mtu=spec.mtu)
        index = ipr.link_lookup(ifname=spec.name)[0]
        ipr.link("set", index=index, state="up")

    def _apply(self, ipr: IPRoute, change: Change) -> None:
        match change:
            case CreateDevice(spec=spec):
                self._create(ipr, spec)
            case ReplaceDevice(spec=spec):
                for index in ipr.link_lookup(ifname=spec.name):
                    ipr.link("del", index=index)
                self._create(ipr, spec)
            case SetMtu(mtu=mtu):
                ipr.link("set", index=self._index(ipr), mtu=mtu)
            case SetUp():
                ipr.link("set", index=self._index(ipr), state="up")
            case AddAddress(address=a):
                ipr.addr("add", index=self._index(ipr), address=str(a.ip), prefixlen=a.network.prefixlen)
            case RemoveAddress(address=a):
                ipr.addr("del", index=self._index(ipr), address=str(a.ip), prefixlen=a.network.prefixlen)
            case SetFdb(mac=mac, dst=dst):
                ipr.neigh("replace", family=socket.AF_BRIDGE, ifindex=self._index(ipr), lladdr=mac, dst=str(dst),
                          state=NUD_PERMANENT, flags=NTF_SELF)
            case RemoveFdb(mac=mac, dst=dst):
                ipr.neigh("del", family=socket.AF_BRIDGE, ifindex=self._index(ipr), lladdr=mac, dst=str(dst),
                          flags=NTF_SELF)
            case SetNeighbour(ip=ip, mac=mac):
                ipr.neigh("replace", ifindex=self._index(ipr), dst=str(ip), lladdr=mac, state=NUD_PERMANENT)
            case RemoveNeighbour(ip=ip):
                ipr.neigh("del", ifindex=self._index(ipr), dst=str(ip))
            case SetRoute(dst=dst, gateway=gw):
                ipr.route("replace", dst=str(dst), gateway=str(gw), oif=self._index(ipr), flags=RTNH_F_ONLINK,
                          table=MAIN_TABLE)
            case RemoveRoute(dst=dst):
                ipr.route("del", dst=str(dst), oif=self._index(ipr), table=MAIN_TABLE)
            case SetHairpin(port=port):
                for index in ipr.link_lookup(ifname=port):  # a port gone since the read needs nothing
                    ipr.link("set", index=index, kind="bridge_slave", mode=1)
            case _:
                raise TypeError(f"not a datapath change: {change!r}")


def interface_mtu(address: str) -> int | None:
    """The MTU of the interface that holds ``address`` in this namespace (the underlay's, for
    the advertise address), or None when no interface holds it."""
    with IPRoute() as ipr:
        for addr in ipr.get_addr(family=socket.AF_INET):
            if addr.get_attr("IFA_ADDRESS") == address or addr.get_attr("IFA_LOCAL") == address:
                links = ipr.get_links(addr["index"])
                return int(links[0].get_attr("IFLA_MTU")) if links else None
    return None
