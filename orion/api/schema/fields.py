"""The field types of request bodies: each is its parser and its JSON Schema, side by side.

A field is an ``Annotated`` type: a ``BeforeValidator`` that reads what people
type (``"512M"``, cpu ``"500m"`` or ``0.5``, ``"1m30s"``, ``"sh -c 'x'"``) and
refuses with our own words, plus the JSON Schema the OpenAPI document shows for
it. The schema is never stricter than the parser (a fuzzer that sends what the
schema calls invalid must be refused; what the parser refuses beyond it, like an
image grammar, is still a 400 with the field named).
"""

from __future__ import annotations

import functools
import math
import re
import shlex
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from orion.api.schema.problems import Problem, ValidationError, kind_of
from orion.domain.model import PortBinding

# Docker refuses containers below 6 MiB of memory (daemon: "Minimum memory limit allowed is 6MB").
MIN_MEMORY = 6 * 1024 * 1024
# The engine stores limits as int64 bytes.
MAX_MEMORY = (1 << 63) - 1
# Long enough for any registry path; docker itself caps a repository name at 255.
MAX_IMAGE_LEN = 255

# Docker reference grammar (distribution/reference), restricted to sha256 digests.
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"^{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?$")
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)  # docker's \w is ASCII: "nginx:é" never pulls
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"
_NAME_RE = re.compile(NAME_PATTERN)
_MEMORY_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$", re.ASCII)
# Docker's convention (`docker run -m 100M` is 100 MiB): K/M/G are binary, like Ki/Mi/Gi.
_MEMORY_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "ki": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mi": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gi": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "ti": 1 << 40, "tib": 1 << 40,
}
# Durations: a number and a unit, Go-style ("1m30s"); a bare number is refused (services.py says why).
_DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)", re.ASCII)
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Around a value, ASCII white space only, in the parsers and the patterns alike (str.strip() and a
# pattern's \s also take Unicode spaces, and the two would disagree about "\x1f30s").
SPACE = " \t\n\r\f\v"
DURATION_SCHEMA = {"type": "string", "pattern": rf"^[{SPACE}]*([0-9]+(\.[0-9]+)?(ms|s|m|h))+[{SPACE}]*$",
                   "examples": ["10s"]}


def typed(kind: Any, parse: Callable[[Any], Any], schema: dict[str, Any]) -> Any:
    """``parse`` makes the value and ``schema`` documents it. ``kind`` is the Python type for readers;
    pydantic is told Any, so it does not check again what ``parse`` built (tuples of dataclasses)."""
    del kind
    return Annotated[Any, BeforeValidator(parse), WithJsonSchema(schema)]


def _port_number(text: str) -> int | None:
    """1-65535 from ASCII digits only (``"²".isdigit()`` is true, and int() refuses it)."""
    return int(text) if text.isascii() and text.isdigit() and 1 <= int(text) <= 65535 else None


def parse_image(value: Any) -> str:
    """A docker image reference: ``[registry[:port]/]path[:tag][@sha256:<64 hex>]``."""
    if not isinstance(value, str) or not value:
        raise Problem(f"must be a non-empty string like \"nginx:1.25\", not {kind_of(value)}")
    return _image(value)


# A cluster runs a few images many times: a reference checked once is known good (bounded; a
# refusal raises, so it is never cached). bench/api_validation.py measures both cases.
@functools.lru_cache(maxsize=4096)
def _image(value: str) -> str:
    if len(value) > MAX_IMAGE_LEN:
        raise Problem(f"is {len(value)} characters; an image reference has at most 255")
    rest, digest = value, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise Problem(f"digest {digest!r} is not sha256:<64 lowercase hex digits>")
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise Problem(f"tag {tag!r} is not valid; a tag is letters, digits, '_', '.', '-' (max 128)")
    parts = rest.split("/")
    first = parts[0]
    # Docker's rule: the first component is a registry if it has '.' or ':', is localhost, or has capitals.
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN_RE.match(first):
            raise Problem(f"registry {first!r} is not a valid host[:port]")
        parts = parts[1:]
    for part in parts:
        if part != part.lower() and _PATH_COMPONENT_RE.match(part.lower()):
            raise Problem(f"repository name {rest!r} must be lowercase")
        if not _PATH_COMPONENT_RE.match(part):
            raise Problem(f"{value!r} is not a valid reference: path component {part!r} must be lowercase "
                          "letters and digits separated by '.', '_', '__' or '-'")
    return value


def parse_memory(value: Any) -> int:
    """Bytes from an integer or a string with a unit ("100M", "1Gi", "512k"); at least 6 MiB."""
    return parse_size(value, MIN_MEMORY, "the engine's minimum of 6 MiB; ask for at least 6M")


def parse_size(value: Any, low: int = 1, minimum: str = "1 byte") -> int:
    """Bytes from an integer or a string with a unit; at least ``low`` (``minimum`` says it)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Problem(f"must be bytes (integer) or a string like \"100M\", not {kind_of(value)}")
    if isinstance(value, int):
        size, shown = value, f"{value} bytes"
    else:
        match = _MEMORY_RE.match(value)
        unit = match.group(2).lower() if match else ""
        if not match or unit not in _MEMORY_UNITS:
            raise Problem(f"{value!r} is not a size; use bytes or a number with K, M, G (or Ki, Mi, Gi), e.g. \"100M\"")
        size, shown = int(float(match.group(1)) * _MEMORY_UNITS[unit]), repr(value)
    if size < low:
        raise Problem(f"{shown} is below {minimum}")
    if size > MAX_MEMORY:
        raise Problem(f"{shown} is beyond what the engine can represent (int64 bytes)")
    return size


def parse_cpu(value: Any) -> int | None:
    """Millicores from a number of cores (0.5 -> 500) or a string ("0.5", "500m"); null: none asked."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Problem(f"must be a number of cores like 0.5, not {kind_of(value)}")
    try:
        if isinstance(value, str) and value.strip().endswith("m"):
            millis = float(value.strip()[:-1])
        else:
            millis = float(value) * 1000
    except (ValueError, OverflowError):
        raise Problem(f"{value!r} is not a number of cores; use e.g. 0.5 or \"500m\"") from None
    if not math.isfinite(millis) or millis <= 0:
        raise Problem(f"{value!r} must be a positive number of cores, e.g. 0.5; or omit it")
    if round(millis) < 1:
        raise Problem(f"{value!r} is below one millicore (0.001); ask for at least 0.001")
    return int(round(millis))


def parse_name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise Problem(f"{value!r} is not a valid name; use letters, digits, '_', '.', '-' "
                      "(start alphanumeric, max 63)")
    return value


def _optional_name(value: Any) -> str:
    return "" if value in (None, "") else parse_name(value)


def parse_command(value: Any) -> tuple[str, ...] | None:
    """A list of strings, or one string split like a shell would (without running one)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            args = shlex.split(value)
        except ValueError as exc:
            raise Problem(f"cannot split {value!r}: {exc}") from None
    elif isinstance(value, list):
        for i, arg in enumerate(value):
            if not isinstance(arg, str):
                raise Problem(f"must be a string, not {kind_of(arg)}", f"[{i}]")
        args = list(value)
    else:
        raise Problem(f"must be a list of strings or a string, not {kind_of(value)}")
    if not args:
        raise Problem("is empty; omit it to run the image's default command")
    if any("\0" in a for a in args):
        raise Problem("contains a NUL byte")
    return tuple(args)


def string_map(key_problem: Callable[[str], str | None]) -> Callable[[Any], tuple[tuple[str, str], ...]]:
    def parse(value: Any) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise Problem(f"must be an object of string to string, not {kind_of(value)}")
        for key, val in value.items():
            problem = key_problem(key)
            if problem:
                raise Problem(problem, f".{key}")
            if not isinstance(val, str):
                raise Problem(f"must be a string, not {kind_of(val)}; quote it, e.g. \"{val}\"", f".{key}")
            if "\0" in val:
                raise Problem("contains a NUL byte", f".{key}")
        return tuple(sorted(value.items()))
    return parse


def _env_key_problem(key: str) -> str | None:
    if not key or "=" in key or "\0" in key:
        return "an environment variable name must be non-empty and contain no '=' or NUL"
    return None


def _selector_key_problem(key: str) -> str | None:
    return "a label key must be non-empty" if not key.strip() else None


def _port(text: str, what: str, sub: str) -> int:
    port = _port_number(text)
    if port is None:
        raise Problem(f"{what} {text!r} must be a port number 1-65535", sub)
    return port


def parse_port_bindings(value: Any) -> tuple[PortBinding, ...]:
    """``{"80/tcp": "8080"}``; "" / null / 0 asks for a dynamic host port; protocol tcp (default) or udp."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise Problem(f"must be an object like {{\"80/tcp\": \"8080\"}}, not {kind_of(value)}")
    bindings: list[PortBinding] = []
    seen_container: dict[tuple[int, str], str] = {}
    seen_host: dict[tuple[int, str], str] = {}
    for key, host in value.items():
        sub = f".{key}"
        port_text, _, proto = key.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp"):
            raise Problem(f"protocol {proto!r} is not supported; use tcp or udp", sub)
        container_port = _port(port_text, "container port", sub)
        if (container_port, proto) in seen_container:
            raise Problem(f"publishes the same container port as {seen_container[(container_port, proto)]!r}", sub)
        seen_container[(container_port, proto)] = key
        if host is None or host == "" or host == 0:
            host_port = None
        elif isinstance(host, int) and not isinstance(host, bool):
            host_port = _port(str(host), "host port", sub)
        elif isinstance(host, str):
            host_port = _port(host.strip(), "host port", sub)
        else:
            raise Problem(f"host port must be a string or integer, not {kind_of(host)}", sub)
        if host_port is not None:
            if (host_port, proto) in seen_host:
                raise Problem(f"host port {host_port}/{proto} is already bound by {seen_host[(host_port, proto)]!r}; "
                              "a host port can be published once", sub)
            seen_host[(host_port, proto)] = key
        bindings.append(PortBinding(container_port, proto, host_port))
    return tuple(sorted(bindings))


def parse_duration(value: Any) -> float:
    """Seconds from ``"500ms"``, ``"2s"``, ``"1m30s"``, ``"1h"``."""
    if not isinstance(value, str):
        raise Problem(f"must be a duration string with a unit like \"10s\" or \"500ms\", not {kind_of(value)}")
    text = value.strip(SPACE)
    parts = _DURATION_PART_RE.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise Problem(f"{value!r} is not a duration; use a number and a unit (ms, s, m, h), e.g. \"10s\"")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def refuse_as(field: str, parse: Callable[[Any], Any], value: Any) -> Any:
    """A field parser used outside a body (a query parameter): refusals name ``field``."""
    try:
        return parse(value)
    except Problem as exc:
        raise ValidationError(field + exc.sub, exc.message) from None


def duration_text(seconds: float) -> str:
    """``"500ms"``, ``"10s"``, ``"1m30s"``, ``"5m"``: what :func:`parse_duration` reads back."""
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours:g}h" if hours else "", f"{minutes:g}m" if minutes else "", f"{secs:g}s" if secs else ""]
    return "".join(parts) or "0s"


def int_range(low: int, high: int) -> Any:
    """An integer from ``low`` to ``high`` (a JSON ``true`` or ``2.0`` is not one)."""
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Problem(f"{value!r} must be an integer from {low} to {high}")
        return value
    return typed(int, parse, {"type": "integer", "minimum": low, "maximum": high})


def one_of(choices: tuple[str, ...]) -> Any:
    def parse(value: Any) -> str:
        if value not in choices:
            raise Problem(f"{value!r} is not one of {', '.join(choices)}")
        return str(value)
    return typed(str, parse, {"type": "string", "enum": list(choices)})


def parse_flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Problem(f"must be true or false, not {kind_of(value)}")
    return value


STRING_MAP_SCHEMA = {"anyOf": [{"type": "object", "additionalProperties": {"type": "string"}}, {"type": "null"}]}

Image = typed(str, parse_image, {"type": "string", "minLength": 1, "maxLength": MAX_IMAGE_LEN,
                                 "pattern": "^[a-zA-Z0-9][a-zA-Z0-9._:/@-]*$", "examples": ["nginx:1.25"]})
Memory = typed(int, parse_memory, {
    "anyOf": [{"type": "integer", "minimum": MIN_MEMORY, "maximum": MAX_MEMORY},
              {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*([kKmMgGtT][iI]?[bB]?|[bB])?\s*$"}],
    "description": "bytes, or a size with K/M/G/T (binary, like docker) or Ki/Mi/Gi/Ti; at least 6M",
    "examples": ["512M"]})
Cpu = typed(int | None, parse_cpu, {
    "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "minLength": 1}, {"type": "null"}],
    "description": "cores (0.5) or millicores (\"500m\"); at least one millicore", "examples": [0.5]})
Name = typed(str, parse_name, {"type": "string", "pattern": NAME_PATTERN})
OptionalName = typed(str, _optional_name, {"anyOf": [{"type": "string"}, {"type": "null"}],
                                            "description": "empty or null: none"})
Command = typed(tuple[str, ...] | None, parse_command, {
    "anyOf": [{"type": "array", "items": {"type": "string"}, "minItems": 1},
              {"type": "string", "minLength": 1, "description": "split like a shell would"}, {"type": "null"}]})
Env = typed(tuple[tuple[str, str], ...], string_map(_env_key_problem), STRING_MAP_SCHEMA)
Labels = typed(tuple[tuple[str, str], ...], string_map(_selector_key_problem), STRING_MAP_SCHEMA)
PortBindings = typed(tuple[PortBinding, ...], parse_port_bindings, {
    "anyOf": [{"type": "object", "propertyNames": {"pattern": r"^[0-9]+(/[a-z]*)?$"},
               "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0,
                                                                       "maximum": 65535}, {"type": "null"}]}},
              {"type": "null"}],
    "description": "\"80/tcp\" -> host port (\"8080\" or 8080), or \"\" for a dynamic one",
    "examples": [{"80/tcp": "8080"}]})
Duration = typed(float, parse_duration, DURATION_SCHEMA)
Flag = typed(bool, parse_flag, {"type": "boolean"})
