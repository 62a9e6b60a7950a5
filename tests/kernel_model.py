"""A model of the kernel's datapath for the planner's tests: ``ObservedKernel`` values that
changes are applied to, with the kernel's rules that matter to the planner (a deleted device
takes its addresses, entries and per-device sysctls with it; "replace" creates or overwrites;
a route or neighbour on a missing device fails; the bridge's ports are not the device's)."""

from __future__ import annotations

from dataclasses import replace

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
)


class NoDevice(Exception):
    pass


def _fresh(k: ObservedKernel, change: CreateDevice | ReplaceDevice) -> ObservedKernel:
    s = change.spec
    dev = ObservedDevice(name=s.name, kind="vxlan", mac=s.mac, mtu=s.mtu, up=True, vni=s.vni, local=s.local,
                         port=s.port, learning=False)
    sysctls = tuple((key, v) for key, v in k.sysctls if "/conf/" not in key)
    return ObservedKernel(device=dev, sysctls=sysctls, bridge_ports=k.bridge_ports)


def apply(k: ObservedKernel, change: Change) -> ObservedKernel:
    if isinstance(change, CreateDevice | ReplaceDevice):
        if isinstance(change, CreateDevice) and k.device is not None:
            raise FileExistsError(change.spec.name)
        return _fresh(k, change)
    if isinstance(change, SetHairpin):
        ports = {p for p in k.bridge_ports if p.name != change.port}
        return replace(k, bridge_ports=frozenset(ports | {BridgePort(change.port, True)}))
    if isinstance(change, SetSysctl):
        return replace(k, sysctls=tuple(sorted({**dict(k.sysctls), change.key: change.value}.items())))
    if k.device is None:
        raise NoDevice(str(change))
    dev = k.device
    match change:
        case SetMtu(mtu=mtu):
            return replace(k, device=replace(dev, mtu=mtu))
        case SetUp():
            return replace(k, device=replace(dev, up=True))
        case AddAddress(address=a):
            return replace(k, device=replace(dev, addresses=dev.addresses | {a}))
        case RemoveAddress(address=a):
            return replace(k, device=replace(dev, addresses=dev.addresses - {a}))
        case SetFdb(mac=mac, dst=dst):
            # `bridge fdb replace` overwrites the MAC's (first) destination or creates it.
            kept = {e for e in k.fdb if e.mac != mac}
            others = sorted((e for e in k.fdb if e.mac == mac), key=lambda e: e.dst)[1:]
            return replace(k, fdb=frozenset(kept | set(others) | {FdbEntry(mac, dst)}))
        case RemoveFdb(mac=mac, dst=dst):
            return replace(k, fdb=k.fdb - {FdbEntry(mac, dst)})
        case SetNeighbour(ip=ip, mac=mac):
            kept = {n for n in k.neighbours if n.ip != ip}
            return replace(k, neighbours=frozenset(kept | {NeighEntry(ip, mac, True)}))
        case RemoveNeighbour(ip=ip):
            return replace(k, neighbours=frozenset(n for n in k.neighbours if n.ip != ip))
        case SetRoute(dst=dst, gateway=gw):
            kept = {r for r in k.routes if r.dst != dst}
            return replace(k, routes=frozenset(kept | {RouteEntry(dst, gw, True)}))
        case RemoveRoute(dst=dst):
            return replace(k, routes=frozenset(r for r in k.routes if r.dst != dst))
    raise TypeError(f"unknown change {change!r}")


def apply_all(k: ObservedKernel, changes: tuple[Change, ...]) -> ObservedKernel:
    for c in changes:
        k = apply(k, c)
    return k
