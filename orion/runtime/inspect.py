"""What the Docker engine's answers mean to Orion, as pure functions: ``docker inspect``
output as a :class:`ContainerState`, and a task's volumes as the engine's mounts.
Split from ``docker.py`` (the adapter that makes the calls) so they are read and tested
without an engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from docker.types import Mount

from orion.domain.model import Volume
from orion.domain.secrets import registry_of
from orion.runtime import (
    FINISHED_STATUSES,
    LABEL_GENERATION,
    LABEL_NETWORK,
    LABEL_TASK,
    ContainerState,
    RuntimeFailure,
)


def parse_ports(ports: dict[str, Any] | None) -> tuple[tuple[str, int], ...]:
    """``NetworkSettings.Ports`` -> (("80/tcp", 49153), ...). Prefers the IPv4
    binding: the engine lists the same port once per address family."""
    out: dict[str, int] = {}
    for key, bindings in (ports or {}).items():
        if not bindings:
            continue
        chosen = next((b for b in bindings if ":" not in (b.get("HostIp") or "")), bindings[0])
        try:
            out[key] = int(chosen["HostPort"])
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(sorted(out.items()))


def state_from_inspect(attrs: dict[str, Any]) -> ContainerState:
    """Turn ``docker inspect`` output into a ContainerState (pure; unit-testable)."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    state = attrs.get("State") or {}
    status = str(state.get("Status") or "unknown")
    error = str(state.get("Error") or "")
    if state.get("OOMKilled"):
        error = "; ".join(filter(None, ["killed: out of memory", error]))
    try:
        generation = int(labels.get(LABEL_GENERATION, -1))
    except ValueError:
        generation = -1
    grace = (attrs.get("Config") or {}).get("StopTimeout")
    return ContainerState(
        container_id=str(attrs.get("Id", "")),
        task_id=str(labels.get(LABEL_TASK, "")),
        generation=generation,
        status=status,
        exit_code=int(state.get("ExitCode", 0)) if status in FINISHED_STATUSES else None,
        host_ports=parse_ports((attrs.get("NetworkSettings") or {}).get("Ports")),
        error=error,
        name=str(attrs.get("Name", "")).lstrip("/"),
        ip=overlay_ip(attrs, labels.get(LABEL_NETWORK, "")),
        stop_grace=float(grace) if isinstance(grace, int) and not isinstance(grace, bool) else None,
    )


def overlay_ip(attrs: dict[str, Any], network: str) -> str:
    """The container's address on the network it was attached to for the overlay ("" when it
    was not, or holds none: a stopped container keeps no address)."""
    if not network:
        return ""
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return str((networks.get(network) or {}).get("IPAddress") or "")


def mounts_for(volumes: Sequence[Volume], host_volumes: Mapping[str, str], node_id: str) -> list[Mount]:
    """The engine's mounts for a task's volumes: a host volume is a bind mount of the path this
    node declares under its name; a docker volume is the engine's named volume. A host volume
    this node does not declare (its config changed since the task was placed) is a failure."""
    mounts = []
    for vol in volumes:
        if vol.type == "host":
            if vol.source not in host_volumes:
                raise RuntimeFailure(f"host volume {vol.source} is not declared on node {node_id} "
                                     "(host_volumes in its config)")
            mounts.append(Mount(vol.target, host_volumes[vol.source], type="bind", read_only=vol.read_only))
        else:
            mounts.append(Mount(vol.target, vol.source, type="volume", read_only=vol.read_only))
    return mounts


# What engines and registries say when a pull lacks (valid) credentials: Docker Hub's "pull access
# denied ... may require 'docker login'", distribution's "no basic auth credentials" and
# "unauthorized: authentication required", and a 401/403 from the registry's token service.
_AUTH_WORDS = ("no basic auth credentials", "unauthorized", "authentication required", "pull access denied",
               "denied: requested access", "401 unauthorized", "403 forbidden", "may require 'docker login'")


def auth_refused(error: str) -> bool:
    """Did the pull fail for want of (valid) credentials?"""
    text = error.lower()
    return any(word in text for word in _AUTH_WORDS)


def auth_sentence(image: str, auth: Mapping[str, str] | None, error: str) -> str:
    """The one line a task shows when its registry wants credentials: what to do, then the registry's
    own words (short), never a stack trace."""
    server = registry_of(image)
    if auth is None:
        return (f"authentication required for {server}: add credentials with `orion registry login {server}` "
                f"({error[:120]})")
    return (f"authentication failed for {server} as {auth.get('username', '?')}: the stored credentials "
            f"were refused; update them with `orion registry login {server}` ({error[:120]})")
