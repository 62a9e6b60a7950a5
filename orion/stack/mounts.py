"""A compose service's ``ports`` and ``volumes`` as Orion's port bindings and mounts.

Ports, short (``"8080:80"``, ``"80"``, ``"53:53/udp"``, ranges of equal length)
and long syntax (``target``, ``published``, ``protocol``, ``mode``), become
``portBindings``: the container port published on a host port of the node that
runs each replica (``""``: a port the engine picks). That is Swarm's ``mode:
host``. Swarm's default, the routing mesh (``mode: ingress``: the port open on
every node), is not a port binding: such a port is published the same way and a
note says so. A host IP to bind, a host port range for one container port, or
a container port published twice cannot be expressed and are listed.

Volumes: a named volume declared at the top level is a docker volume
(``type: volume``), named ``<stack>_<volume>`` as Swarm names it (its ``name``,
or an ``external`` one's name, as written); it lives on whichever node runs the
replica. One declared with ``x-orion-host-volume: NAME`` (or ``true``: its own
name) is Orion's host volume ``NAME``, a directory the nodes declare
(``--host-volume``), placed only where it exists. A bind of a host path is
listed: a replica may land on any node, where the path means something else, and
the API refuses raw host paths for that reason (docs/api.md, "Volumes").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from orion.stack.findings import Findings, key_path

HOST_VOLUME_KEY = "x-orion-host-volume"
BIND_HINT = ("a host path: a replica may land on any node, where it means something else; declare the directory "
             f"as a host volume on the nodes (--host-volume NAME=PATH) and mount a top-level volume with "
             f"`{HOST_VOLUME_KEY}: NAME`")
_VOLUME_DRIVERS = ("local",)
_MODES_OF_NO_CONSEQUENCE = ("rw", "consistent", "cached", "delegated")


def _span(text: str) -> list[int] | None:
    """``"80"`` -> [80]; ``"8000-8002"`` -> [8000, 8001, 8002]; anything else None."""
    low, _, high = text.partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        return None
    first, last = int(low), int(high or low)
    return list(range(first, last + 1)) if first <= last else None


def _short(item: str, path: str, findings: Findings) -> Iterator[tuple[str, str, bool]]:
    spec, _, proto = item.partition("/")
    ip = ""
    if spec.startswith("["):  # an IPv6 host address
        ip, _, spec = spec[1:].partition("]")
        spec = spec.removeprefix(":")
    parts = spec.rsplit(":", 2)
    if len(parts) == 3:
        ip, parts = parts[0], parts[1:]
    if ip:
        findings.cannot(path, f"binds host address {ip}: Orion publishes on every address of the node; "
                        "the port is left out")
        return
    host, container = (parts if len(parts) == 2 else ["", parts[0]])
    yield from _expand(host, container, proto or "tcp", path, findings, ingress=False)


def _expand(host: str, container: str, proto: str, path: str, findings: Findings,
            ingress: bool) -> Iterator[tuple[str, str, bool]]:
    targets, hosts = _span(container), _span(host) if host else None
    if targets is None or (host and hosts is None):
        findings.bad(path, f"{host + ':' if host else ''}{container} is not [HOST:]CONTAINER[/PROTOCOL]")
        return
    if proto not in ("tcp", "udp"):
        findings.cannot(path, f"protocol {proto}: Orion publishes tcp and udp")
        return
    if hosts is not None and len(hosts) != len(targets):
        findings.cannot(path, f"host ports {host} for container ports {container}: Orion binds one host port "
                        "to each container port (ranges of equal length)")
        return
    for i, target in enumerate(targets):
        yield f"{target}/{proto}", str(hosts[i]) if hosts else "", ingress


def _long(item: Mapping[str, Any], path: str, findings: Findings) -> Iterator[tuple[str, str, bool]]:
    if item.get("host_ip"):
        findings.cannot(key_path(path, "host_ip"), f"binds host address {item['host_ip']}: Orion publishes on "
                        "every address of the node; the port is left out")
        return
    if "target" not in item:
        findings.bad(key_path(path, "target"), "is required: the port inside the container")
        return
    published = str(item.get("published", "") or "")
    mode = item.get("mode", "ingress")
    if mode not in ("ingress", "host"):
        findings.bad(key_path(path, "mode"), f"{mode!r} is not host or ingress")
        return
    yield from _expand(published, str(item["target"]), str(item.get("protocol", "tcp")), path, findings,
                       ingress=mode == "ingress")


def port_bindings(ports: list[Any], prefix: str, findings: Findings) -> dict[str, str]:
    """``portBindings`` for a service's ``ports``; what cannot be expressed is recorded."""
    bindings: dict[str, str] = {}
    ingress = []
    for i, item in enumerate(ports or ()):
        path = key_path(prefix, "ports", i)
        entries = _long(item, path, findings) if isinstance(item, dict) else _short(str(item), path, findings)
        for key, host, mesh in entries:
            if key in bindings:
                findings.cannot(path, f"container port {key} is already published: Orion binds one host port "
                                "per container port")
                continue
            bindings[key] = host
            if mesh and host:
                ingress.append(host)
    if ingress:
        findings.note(key_path(prefix, "ports"), f"mode ingress ({', '.join(ingress)}): published on the node "
                      "that runs each replica (Swarm's mode: host), not on every node")
    return bindings


# -- volumes --------------------------------------------------------------------------------------


def check_declarations(volumes: Mapping[str, Any], findings: Findings) -> None:
    """The top-level volumes' keys Orion cannot honour (a driver, its options, labels)."""
    for name, decl in (volumes or {}).items():
        decl = decl or {}
        path = key_path("volumes", name)
        if decl.get("driver") not in (None, *_VOLUME_DRIVERS):
            findings.cannot(key_path(path, "driver"), f"volume driver {decl['driver']!r}: Orion's replicas get "
                            "local docker volumes or host volumes")
        if decl.get("driver_opts"):
            findings.cannot(key_path(path, "driver_opts"), "driver options: Orion creates plain local volumes "
                            f"(a bind in disguise is a host volume: `{HOST_VOLUME_KEY}`)")
        if decl.get("labels"):
            findings.cannot(key_path(path, "labels"), "volume labels: Orion does not label volumes")


def _is_external(decl: Mapping[str, Any]) -> bool:
    external = decl.get("external")
    return external is True or external == "true" or isinstance(external, dict)


def named_source(name: str, volumes: Mapping[str, Any], stack: str, path: str,
                 findings: Findings) -> dict[str, Any] | None:
    """The mount source of top-level volume ``name``: {"source", "type"}; None when undeclared."""
    if name not in (volumes or {}):
        findings.bad(path, f"volume {name!r} is not declared in the top-level volumes")
        return None
    decl = volumes[name] or {}
    host = decl.get(HOST_VOLUME_KEY)
    if host:
        return {"source": name if host is True else str(host), "type": "host"}
    external = decl.get("external") if isinstance(decl.get("external"), dict) else {}
    given = decl.get("name") or external.get("name")
    return {"source": given or (name if _is_external(decl) else f"{stack}_{name}"), "type": "volume"}


def _is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or "/" in source or "\\" in source


def _short_mount(item: str, path: str, volumes: Mapping[str, Any], stack: str,
                 findings: Findings) -> dict[str, Any] | None:
    parts = item.split(":")
    if len(parts) == 1:
        findings.cannot(path, "an anonymous volume: name it in the top-level volumes")
        return None
    source, target, modes = parts[0], parts[1], (parts[2].split(",") if len(parts) > 2 else [])
    if _is_path(source):
        findings.cannot(path, BIND_HINT)
        return None
    mount = named_source(source, volumes, stack, path, findings)
    if mount is None:
        return None
    for mode in modes:
        if mode not in ("ro", *_MODES_OF_NO_CONSEQUENCE):
            findings.cannot(path, f"mount option {mode!r}: Orion mounts read-write or read-only")
    return {**mount, "target": target, "readOnly": "ro" in modes}


def _long_mount(item: Mapping[str, Any], path: str, volumes: Mapping[str, Any], stack: str,
                findings: Findings) -> dict[str, Any] | None:
    kind = item.get("type")
    if kind == "bind":
        findings.cannot(path, BIND_HINT)
        return None
    if kind == "tmpfs":
        findings.cannot(key_path(path, "type"), "a tmpfs mount here: write it as the service's tmpfs "
                        "(\"/run:size=64M,mode=1777\"), which Orion passes")
        return None
    if kind != "volume":
        findings.cannot(key_path(path, "type"), f"a {kind} mount: Orion mounts named and host volumes")
        return None
    if not item.get("source"):
        findings.cannot(path, "an anonymous volume: name it in the top-level volumes")
        return None
    for key in ("volume", "bind", "tmpfs", "image"):
        if item.get(key):
            findings.cannot(key_path(path, key), f"{key} options: Orion mounts a volume as it is")
    mount = named_source(str(item["source"]), volumes, stack, path, findings)
    if mount is None:
        return None
    read_only = item.get("read_only", False)
    return {**mount, "target": item.get("target"), "readOnly": read_only is True or read_only == "true"}


def mounts(items: list[Any], prefix: str, volumes: Mapping[str, Any], stack: str,
           findings: Findings) -> list[dict[str, Any]]:
    """``volumes`` of Orion's body for a service's ``volumes``; what cannot be expressed is recorded."""
    out = []
    for i, item in enumerate(items or ()):
        path = key_path(prefix, "volumes", i)
        mount = (_long_mount(item, path, volumes, stack, findings) if isinstance(item, dict)
                 else _short_mount(str(item), path, volumes, stack, findings))
        if mount is not None:
            out.append(mount)
    return out
