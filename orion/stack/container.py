"""A compose service's container settings as Orion's (``orion/domain/container.py``), key by key.

The API spells its settings after the Compose Specification (``docs/api.md``, "Container
settings"), so most keys map as they are written; what differs is the shape Compose allows
and the API does not: ``labels`` and ``sysctls`` as ``KEY=VALUE`` lists, ``extra_hosts`` as a
map of a host to several addresses, and the strings an interpolated value leaves where a
number or a flag belongs (``"true"``, ``"512"``). Those are reshaped here, then each key is
read by the API's own parser (``ContainerFields``) alone, so every bad value is named at its
own key path (``services.web.cap_add[1]``), in the API's words, and the others still map.

=====================  =================  =============================================
compose                Orion              reshaped here
=====================  =================  =============================================
``user``               ``user``
``working_dir``        ``workingDir``
``entrypoint``         ``entrypoint``     (a string is split as a shell would; "" clears)
``cap_add/cap_drop``   ``capAdd/capDrop``
``devices``            ``devices``        a CDI name (``vendor.com/gpu=all``) is listed
``labels``             ``labels``         ``KEY=VALUE`` items, non-string values as text
``logging``            ``logging``        option values as text; no driver is listed
``stop_signal``        ``stopSignal``
``stop_grace_period``  ``stopGracePeriod``
``init``               ``init``           ``"true"``/``"false"`` (YAML 1.1 words) as flags
``ulimits``            ``ulimits``        numbers written as strings
``read_only``          ``readOnly``       as ``init``
``tmpfs``              ``tmpfs``
``hostname``           ``hostname``
``extra_hosts``        ``extraHosts``     a host with a list of addresses: one line each
``shm_size``           ``shmSize``
``sysctls``            ``sysctls``        ``KEY=VALUE`` items
``cpu_shares``         ``cpuShares``      a number written as a string
``privileged``         ``privileged``     as ``init``
=====================  =================  =============================================

Whether a node hands out a device or runs privileged containers is placement's question
(the node's ``host_devices`` and ``allow_privileged``), as with host volumes: the file is
converted, and a note says where such replicas can go.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic

from orion.api.schema.container import ContainerFields
from orion.api.schema.problems import refusal
from orion.stack.findings import Findings, key_path

# Compose key -> the API's field (camelCase, as ContainerFields names it on the wire).
FIELDS = {"user": "user", "working_dir": "workingDir", "entrypoint": "entrypoint", "cap_add": "capAdd",
          "cap_drop": "capDrop", "devices": "devices", "labels": "labels", "logging": "logging",
          "stop_signal": "stopSignal", "stop_grace_period": "stopGracePeriod", "init": "init",
          "ulimits": "ulimits", "read_only": "readOnly", "tmpfs": "tmpfs", "hostname": "hostname",
          "extra_hosts": "extraHosts", "shm_size": "shmSize", "sysctls": "sysctls", "cpu_shares": "cpuShares",
          "privileged": "privileged"}
# Compose reads these words as booleans where a flag belongs (compose-go's toBoolean: YAML 1.1's set).
_TRUE = frozenset({"y", "yes", "true", "on"})
_FALSE = frozenset({"n", "no", "false", "off"})
_FLAGS = ("init", "read_only", "privileged")


def _text(value: Any) -> str:
    """A map value Compose allows as a number, a boolean or null, as the text the engine gets."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: Any) -> Any:
    """``"512"`` (an interpolated number) as 512; anything else as it is, for the parser to judge."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


def _pairs(value: Any) -> Any:
    """Compose's ``KEY=VALUE`` list form as a map (a bare ``KEY``: an empty value, as Compose)."""
    if isinstance(value, list):
        return {k: v for k, _, v in (str(item).partition("=") for item in value)}
    if isinstance(value, dict):
        return {k: _text(v) for k, v in value.items()}
    return value


def _reshape(key: str, value: Any, path: str, findings: Findings) -> Any:
    """``value`` in the shape the API reads, or None when it cannot map (recorded)."""
    if key in _FLAGS and isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if key in ("labels", "sysctls"):
        return _pairs(value)
    if key == "cpu_shares":
        return _number(value)
    if key == "ulimits" and isinstance(value, dict):
        return {name: {k: _number(v) for k, v in limit.items()} if isinstance(limit, dict) else _number(limit)
                for name, limit in value.items()}
    if key == "extra_hosts" and isinstance(value, dict) and any(isinstance(v, list) for v in value.values()):
        return [f"{host}={ip}" for host, ips in value.items() for ip in (ips if isinstance(ips, list) else [ips])]
    if key == "logging" and isinstance(value, dict):
        if not value.get("driver"):
            findings.cannot(path, "log options without a driver: Orion passes the driver with its options; name "
                            "it (json-file is Docker's default)")
            return None
        options = {k: _text(v) for k, v in (value.get("options") or {}).items()}
        return {"driver": value["driver"], **({"options": options} if options else {})}
    if key == "devices" and isinstance(value, list):
        cdi = [i for i, item in enumerate(value) if isinstance(item, str) and not item.startswith("/")]
        for i in cdi:
            findings.cannot(key_path(path, i), f"{value[i]!r}: a CDI device name; Orion hands out host device "
                            "paths (/dev/...)")
        return [item for i, item in enumerate(value) if i not in cdi] or None
    return value


def _refused(key: str, value: Any, reshaped: Any, path: str, exc: pydantic.ValidationError) -> tuple[str, str]:
    """(key path, message) of the API's refusal of one field: the item below the key is kept in
    the path when the file's shape is the API's, so the path names a real key of the file."""
    error = refusal(exc)
    field = error.field or ""
    below = field[len(FIELDS[key]):] if field.startswith(FIELDS[key]) else ""
    same_shape = type(value) is type(reshaped) and (not isinstance(value, list) or len(value) == len(reshaped))
    if below and same_shape:
        return path + below, error.message
    if below.startswith("."):  # a key of a map the file wrote as a list: say which
        return path, f"{below[1:]}: {error.message}"
    return path, error.message  # an item of a list the file wrote otherwise: the message quotes it


def container_fields(svc: Mapping[str, Any], prefix: str, findings: Findings) -> tuple[dict[str, Any], dict[str, str]]:
    """The API fields of ``svc``'s container settings that Orion's parser accepts, and where each came
    from (the API field -> its key path); every other value is recorded in ``findings``."""
    body: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, field in FIELDS.items():
        if svc.get(key) is None:
            continue
        path = key_path(prefix, key)
        value = _reshape(key, svc[key], path, findings)
        if value is None:
            continue
        try:
            ContainerFields.model_validate({field: value})
        except pydantic.ValidationError as exc:
            findings.bad(*_refused(key, svc[key], value, path, exc))
            continue
        body[field], origin[field] = value, path
    if body.get("devices"):
        findings.note(key_path(prefix, "devices"), "replicas are placed only on nodes that hand out each device "
                      "(an agent's --host-device)")
    if body.get("privileged") is True:
        findings.note(key_path(prefix, "privileged"), "replicas are placed only on nodes that run privileged "
                      "containers (an agent's --allow-privileged)")
    return body, origin
