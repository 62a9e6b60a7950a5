"""Turn a POST /tasks body into a TaskSpec, or say exactly what is wrong.

Pure code: no Flask, no store. Every refusal is a :class:`ValidationError`
naming the field (``env.PATH``, ``portBindings.80/tcp``) and the fix, because
the person reading it is at a terminal and the CLI prints it as is.

What is *not* checked here, on purpose: whether any node can hold the task. A
task bigger than every node is a valid request; the scheduler keeps it pending
with a no-fit reason, so it runs once a big enough node joins.
"""

from __future__ import annotations

import difflib
import math
import posixpath
import re
import shlex
from collections.abc import Callable
from typing import Any

from orion.model import MAX_SCALE, PULL_POLICIES, RESTART_POLICIES, TaskSpec
from orion.resources import VOLUME_NAME_RE, VOLUME_TYPES, PortBinding, Volume

# Docker refuses containers below 6 MiB of memory (daemon: "Minimum memory limit allowed is 6MB").
MIN_MEMORY = 6 * 1024 * 1024
# The engine stores limits as int64 bytes.
MAX_MEMORY = (1 << 63) - 1
# Long enough for any registry path; docker itself caps a repository name at 255.
MAX_IMAGE_LEN = 255

FIELDS = (
    "image", "memory", "cpu", "name", "command", "env", "portBindings",
    "nodeSelectors", "restartPolicy", "pullPolicy", "count", "volumes",
)
# Spellings people bring from docker/kubernetes/our own model: named in the "did you mean".
_ALIASES = {
    "ports": "portBindings", "port_bindings": "portBindings", "node_selectors": "nodeSelectors",
    "restart_policy": "restartPolicy", "pull_policy": "pullPolicy", "replicas": "count",
    "cpus": "cpu", "cpu_millis": "cpu", "mem": "memory", "cmd": "command", "environment": "env",
    "mounts": "volumes",
}
# A mount: ``source`` (or ``name``, as Nomad's host_volume is addressed) names the volume.
VOLUME_FIELDS = ("source", "name", "target", "readOnly", "type")
_VOLUME_ALIASES = {"read_only": "readOnly", "readonly": "readOnly", "destination": "target", "src": "source",
                   "dst": "target", "volume": "source"}

# Docker reference grammar (distribution/reference), restricted to sha256 digests.
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"^{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?$")
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
_MEMORY_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
# Docker's convention (`docker run -m 100M` is 100 MiB): K/M/G are binary, like Ki/Mi/Gi.
_MEMORY_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "ki": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mi": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gi": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "ti": 1 << 40, "tib": 1 << 40,
}


class ValidationError(ValueError):
    """A request the API refuses; ``field`` names what to fix, ``status`` the HTTP code."""

    def __init__(self, field: str | None, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.status = status

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": str(self)}
        if self.field:
            body["field"] = self.field
        return body


def kind_of(value: Any) -> str:
    """How a JSON value reads in an error message ("an object", "a string"): shared by every body parser."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null", int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def parse_image(value: Any) -> str:
    """Check a docker image reference: ``[registry[:port]/]path[:tag][@sha256:<64 hex>]``."""
    if not isinstance(value, str) or not value:
        raise ValidationError("image", f"must be a non-empty string like \"nginx:1.25\", not {kind_of(value)}")
    if len(value) > MAX_IMAGE_LEN:
        raise ValidationError("image", f"is {len(value)} characters; an image reference has at most 255")
    rest, digest = value, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise ValidationError("image", f"digest {digest!r} is not sha256:<64 lowercase hex digits>")
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise ValidationError(
                "image", f"tag {tag!r} is not valid; a tag is letters, digits, '_', '.', '-' (max 128)"
            )
    parts = rest.split("/")
    first = parts[0]
    # Docker's rule: the first component is a registry if it has '.' or ':', is localhost, or has capitals.
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN_RE.match(first):
            raise ValidationError("image", f"registry {first!r} is not a valid host[:port]")
        parts = parts[1:]
    for part in parts:
        if part != part.lower() and _PATH_COMPONENT_RE.match(part.lower()):
            raise ValidationError("image", f"repository name {rest!r} must be lowercase")
        if not _PATH_COMPONENT_RE.match(part):
            raise ValidationError(
                "image",
                f"{value!r} is not a valid reference: path component {part!r} must be lowercase "
                "letters and digits separated by '.', '_', '__' or '-'",
            )
    return value


def parse_memory(value: Any) -> int:
    """Bytes from an integer or a string with a unit ("100M", "1Gi", "512k"); at least 6 MiB."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError(
            "memory", f"must be bytes (integer) or a string like \"100M\", not {kind_of(value)}"
        )
    if isinstance(value, int):
        size = value
        shown = f"{value} bytes"
    else:
        match = _MEMORY_RE.match(value)
        unit = match.group(2).lower() if match else ""
        if not match or unit not in _MEMORY_UNITS:
            raise ValidationError(
                "memory",
                f"{value!r} is not a size; use bytes or a number with K, M, G (or Ki, Mi, Gi), e.g. \"100M\"",
            )
        size = int(float(match.group(1)) * _MEMORY_UNITS[unit])
        shown = repr(value)
    if size < MIN_MEMORY:
        raise ValidationError(
            "memory", f"{shown} is below the engine's minimum of 6 MiB; ask for at least 6M"
        )
    if size > MAX_MEMORY:
        raise ValidationError("memory", f"{shown} is beyond what the engine can represent (int64 bytes)")
    return size


def parse_cpu(value: Any) -> int:
    """Millicores from a number of cores (0.5 -> 500) or a string ("0.5", "500m")."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationError("cpu", f"must be a number of cores like 0.5, not {kind_of(value)}")
    try:
        if isinstance(value, str) and value.strip().endswith("m"):
            millis = float(value.strip()[:-1])
        else:
            millis = float(value) * 1000
    except ValueError:
        raise ValidationError("cpu", f"{value!r} is not a number of cores; use e.g. 0.5 or \"500m\"") \
            from None
    if not math.isfinite(millis) or millis <= 0:
        raise ValidationError("cpu", f"{value!r} must be a positive number of cores, e.g. 0.5; or omit it")
    if round(millis) < 1:
        raise ValidationError("cpu", f"{value!r} is below one millicore (0.001); ask for at least 0.001")
    return int(round(millis))


def parse_name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ValidationError(
            "name",
            f"{value!r} is not a valid name; use letters, digits, '_', '.', '-' (start alphanumeric, max 63)",
        )
    return value


def parse_command(value: Any) -> tuple[str, ...] | None:
    """A list of strings, or one string split like a shell would (without running one)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            args = shlex.split(value)
        except ValueError as exc:
            raise ValidationError("command", f"cannot split {value!r}: {exc}") from None
    elif isinstance(value, list):
        for i, arg in enumerate(value):
            if not isinstance(arg, str):
                raise ValidationError(f"command[{i}]", f"must be a string, not {kind_of(arg)}")
        args = list(value)
    else:
        raise ValidationError("command", f"must be a list of strings or a string, not {kind_of(value)}")
    if not args:
        raise ValidationError("command", "is empty; omit it to run the image's default command")
    if any("\0" in a for a in args):
        raise ValidationError("command", "contains a NUL byte")
    return tuple(args)


def _string_map(
    field_name: str, value: Any, key_ok: Callable[[str], str | None]
) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ValidationError(field_name, f"must be an object of string to string, not {kind_of(value)}")
    for key, val in value.items():
        problem = key_ok(key)
        if problem:
            raise ValidationError(f"{field_name}.{key}", problem)
        if not isinstance(val, str):
            raise ValidationError(
                f"{field_name}.{key}", f"must be a string, not {kind_of(val)}; quote it, e.g. \"{val}\""
            )
        if "\0" in val:
            raise ValidationError(f"{field_name}.{key}", "contains a NUL byte")
    return tuple(sorted(value.items()))


def _env_key_problem(key: str) -> str | None:
    if not key or "=" in key or "\0" in key:
        return "an environment variable name must be non-empty and contain no '=' or NUL"
    return None


def _selector_key_problem(key: str) -> str | None:
    return "a label key must be non-empty" if not key.strip() else None


def _parse_port(field_name: str, text: str, what: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValidationError(field_name, f"{what} {text!r} must be a port number 1-65535")
    return int(text)


def parse_port_bindings(value: Any) -> tuple[PortBinding, ...]:
    """``{"80/tcp": "8080"}``; "" / null / 0 asks for a dynamic host port; protocol tcp (default) or udp."""
    if not isinstance(value, dict):
        raise ValidationError(
            "portBindings", f"must be an object like {{\"80/tcp\": \"8080\"}}, not {kind_of(value)}"
        )
    bindings: list[PortBinding] = []
    seen_container: dict[tuple[int, str], str] = {}
    seen_host: dict[tuple[int, str], str] = {}
    for key, host in value.items():
        field_name = f"portBindings.{key}"
        port_text, _, proto = key.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp"):
            raise ValidationError(field_name, f"protocol {proto!r} is not supported; use tcp or udp")
        container_port = _parse_port(field_name, port_text, "container port")
        if (container_port, proto) in seen_container:
            other = seen_container[(container_port, proto)]
            raise ValidationError(field_name, f"publishes the same container port as {other!r}")
        seen_container[(container_port, proto)] = key
        if host is None or host == "" or host == 0:
            host_port = None
        elif isinstance(host, int) and not isinstance(host, bool):
            host_port = _parse_port(field_name, str(host), "host port")
        elif isinstance(host, str):
            host_port = _parse_port(field_name, host.strip(), "host port")
        else:
            raise ValidationError(field_name, f"host port must be a string or integer, not {kind_of(host)}")
        if host_port is not None:
            if (host_port, proto) in seen_host:
                raise ValidationError(
                    field_name,
                    f"host port {host_port}/{proto} is already bound by {seen_host[(host_port, proto)]!r}; "
                    "a host port can be published once",
                )
            seen_host[(host_port, proto)] = key
        bindings.append(PortBinding(container_port, proto, host_port))
    return tuple(sorted(bindings))


def _choice(field_name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValidationError(field_name, f"{value!r} is not one of {', '.join(choices)}")
    return str(value)


def parse_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SCALE:
        raise ValidationError("count", f"{value!r} must be an integer from 1 to {MAX_SCALE}")
    return value


def parse_volume(index: int, value: Any) -> Volume:
    """``{"source": "data", "target": "/data", "readOnly": false, "type": "host"}``.

    Never a raw host path: a task may land on any node, and a path from the API would
    be root on the host. ``type`` host names a host volume that nodes declare in their
    config (the scheduler places the task only where it exists); ``type`` volume is a
    docker named volume the node's engine creates.
    """
    where = f"volumes[{index}]"
    if not isinstance(value, dict):
        raise ValidationError(where, f"must be an object like {{\"source\": \"data\", \"target\": \"/data\"}}, "
                              f"not {kind_of(value)}")
    for key in value:
        if key not in VOLUME_FIELDS:
            guess = _VOLUME_ALIASES.get(str(key)) or next(
                iter(difflib.get_close_matches(str(key), VOLUME_FIELDS, n=1)), None)
            hint = f"; did you mean {guess!r}?" if guess else f"; known fields: {', '.join(VOLUME_FIELDS)}"
            raise ValidationError(f"{where}.{key}", f"unknown field{hint}")
    if "source" in value and "name" in value:
        raise ValidationError(f"{where}.name", "names the volume like source; give one of them")
    key = "name" if "name" in value else "source"
    for required, given in ((key, key in value), ("target", "target" in value)):
        if not given:
            raise ValidationError(f"{where}.{required}", "is required")
    kind = _choice(f"{where}.type", value.get("type", "host"), VOLUME_TYPES)
    source = value[key]
    if isinstance(source, str) and (source.startswith(("/", ".", "~")) or "/" in source):
        raise ValidationError(
            f"{where}.{key}", f"{source!r} is a host path; mount a host volume the nodes declare by name "
            "(type \"host\") or a docker volume (type \"volume\"), so every node means the same thing by it")
    if not isinstance(source, str) or not VOLUME_NAME_RE.match(source):
        raise ValidationError(f"{where}.{key}", f"{source!r} is not a volume name; use letters, digits, "
                              "'_', '.', '-' (start alphanumeric, at least two characters)")
    target = value["target"]
    if (not isinstance(target, str) or not target.startswith("/") or target.strip("/") == ""
            or "\0" in target or ".." in target.split("/")):
        raise ValidationError(f"{where}.target", f"{target!r} must be an absolute path inside the container, "
                              "not '/', without '..'")
    read_only = value.get("readOnly", False)
    if not isinstance(read_only, bool):
        raise ValidationError(f"{where}.readOnly", f"must be true or false, not {kind_of(read_only)}")
    return Volume(source, posixpath.normpath(target), read_only, kind)


def parse_volumes(value: Any) -> tuple[Volume, ...]:
    """A list of mounts (:func:`parse_volume`), no two on one target."""
    if not isinstance(value, list):
        raise ValidationError("volumes", f"must be a list of {{\"source\", \"target\"}} objects, not {kind_of(value)}")
    volumes = [parse_volume(i, v) for i, v in enumerate(value)]
    seen: dict[str, int] = {}
    for i, vol in enumerate(volumes):
        if vol.target in seen:
            raise ValidationError(f"volumes[{i}].target",
                                  f"{vol.target!r} is already mounted by volumes[{seen[vol.target]}]")
        seen[vol.target] = i
    return tuple(volumes)


def _unknown_field(key: Any) -> ValidationError:
    key = str(key)
    guess = _ALIASES.get(key) or next(iter(difflib.get_close_matches(key, FIELDS, n=1)), None)
    hint = f"; did you mean {guess!r}?" if guess else f"; known fields: {', '.join(FIELDS)}"
    return ValidationError(key, f"unknown field{hint}")


def parse_task_request(body: Any) -> TaskSpec:
    """Validate a POST /tasks body (camelCase JSON) and build the TaskSpec it asks for."""
    if not isinstance(body, dict):
        raise ValidationError(
            None, f"body must be a JSON object like {{\"image\": ..., \"memory\": ...}}, not {kind_of(body)}"
        )
    for key in body:
        if key not in FIELDS:
            raise _unknown_field(key)
    for required in ("image", "memory"):
        if required not in body:
            raise ValidationError(required, "is required")
    return TaskSpec(
        image=parse_image(body["image"]),
        memory=parse_memory(body["memory"]),
        cpu_millis=parse_cpu(body["cpu"]) if body.get("cpu") is not None else 0,
        name=parse_name(body["name"]) if body.get("name") not in (None, "") else "",
        command=parse_command(body.get("command")),
        env=_string_map("env", body["env"], _env_key_problem) if body.get("env") is not None else (),
        ports=parse_port_bindings(body["portBindings"]) if body.get("portBindings") is not None else (),
        node_selectors=(
            _string_map("nodeSelectors", body["nodeSelectors"], _selector_key_problem)
            if body.get("nodeSelectors") is not None else ()
        ),
        restart_policy=_choice("restartPolicy", body.get("restartPolicy", "never"), RESTART_POLICIES),
        pull_policy=_choice("pullPolicy", body.get("pullPolicy", "if-not-present"), PULL_POLICIES),
        count=parse_count(body.get("count", 1)),
        volumes=parse_volumes(body["volumes"]) if body.get("volumes") is not None else (),
    )
