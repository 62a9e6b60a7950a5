"""The parsers of the container settings' fields (``orion/api/schema/container.py`` declares the
fields with them): each reads what a Compose file or a person writes and refuses with our own words,
naming the item below the field (``capAdd[1]``, ``ulimits.nofile``, ``sysctls.kernel.pid_max``).
Split from the body model by role: these are values in, values out."""

from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Any

from orion.api.schema import fields as f
from orion.api.schema.problems import Problem, kind_of
from orion.defaults import MAX_STOP_GRACE
from orion.domain.container import (
    CAPABILITIES,
    MAX_CPU_SHARES,
    MAX_SIGNAL,
    MIN_CPU_SHARES,
    SIGNALS,
    TMPFS_FLAGS,
    ULIMITS,
    Device,
    Tmpfs,
    Ulimit,
    sysctl_problem,
)

_USER_PART = r"([A-Za-z_][A-Za-z0-9_.-]{0,31}|[0-9]{1,10})"
_USER_RE = re.compile(rf"^{_USER_PART}(:{_USER_PART})?$")
_MAX_ID = (1 << 32) - 2  # uids and gids are 32 bits; -1 means "unchanged" to the kernel
_HOST_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^{_HOST_LABEL}(\.{_HOST_LABEL})*$")
MAX_HOSTNAME = 63  # the kernel's HOST_NAME_MAX is 64 with its NUL
DRIVER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
MAX_ULIMIT = (1 << 63) - 1
RESERVED_LABELS = "orion."  # the runtime's own labels (orion.task, orion.node, ...) live here


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list):
        raise Problem(f"must be a list of {what}, not {kind_of(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise Problem(f"must be a string, not {kind_of(item)}", f"[{i}]")
    return value


def _path(value: str, sub: str = "", root: bool = True) -> str:
    if not value.startswith("/") or "\0" in value or ".." in value.split("/") or (not root and value == "/"):
        raise Problem(f"{value!r} must be an absolute path without '..'", sub)
    return posixpath.normpath(value)


# -- the process -------------------------------------------------------------------------------
def parse_user(value: Any) -> str:
    """``"postgres"``, ``"1000"``, ``"1000:1000"``, ``"app:staff"``."""
    if not isinstance(value, str) or not _USER_RE.match(value):
        raise Problem(f"{value!r} is not a user; write USER[:GROUP], each a name or a numeric id, e.g. \"1000:1000\"")
    if any(part.isdigit() and int(part) > _MAX_ID for part in value.split(":")):
        raise Problem(f"{value!r}: a numeric id is at most {_MAX_ID}")
    return value


def parse_working_dir(value: Any) -> str:
    if not isinstance(value, str):
        raise Problem(f"must be an absolute path in the container, not {kind_of(value)}")
    return _path(value)


def parse_entrypoint(value: Any) -> tuple[str, ...]:
    """Like ``command``; ``[]`` or ``""`` clears the image's entrypoint (Compose's rule)."""
    if value in ("", []):
        return ()
    parsed = f.parse_command(value)
    return parsed or ()


def parse_signal(value: Any) -> str:
    """``"SIGTERM"``, ``"TERM"``, ``"sigusr1"``, ``"SIGRTMIN+3"`` or a number 1-64: ``"SIGTERM"``, ``"10"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise Problem(f"must be a signal name like \"SIGTERM\", not {kind_of(value)}")
    if value.isascii() and value.isdigit():
        if not 1 <= int(value) <= MAX_SIGNAL:
            raise Problem(f"{value} is not a signal number (1-{MAX_SIGNAL})")
        return str(int(value))
    name = value.upper().removeprefix("SIG")
    if name not in SIGNALS:
        raise Problem(f"{value!r} is not a Linux signal; e.g. SIGTERM, SIGINT, SIGQUIT, SIGUSR1")
    return "SIG" + name


def parse_grace(value: Any) -> float:
    seconds = f.parse_duration(value)
    if seconds > MAX_STOP_GRACE:
        raise Problem(f"{value!r} is longer than {f.duration_text(MAX_STOP_GRACE)}: the node waits for the stop")
    return seconds


def parse_hostname(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_HOSTNAME or not _HOSTNAME_RE.match(value):
        raise Problem(f"{value!r} is not a hostname; letters, digits and '-' in dot-separated labels, "
                      f"at most {MAX_HOSTNAME} characters")
    return value


# -- security ----------------------------------------------------------------------------------
def parse_capabilities(value: Any) -> tuple[str, ...]:
    """``["NET_ADMIN", "CAP_SYS_TIME", "all"]`` -> Docker's names, sorted, each once."""
    seen: dict[str, int] = {}
    for i, item in enumerate(_strings(value, "capability names like \"NET_ADMIN\"")):
        name = item.upper().removeprefix("CAP_")
        if name not in CAPABILITIES:
            raise Problem(f"{item} is not a Linux capability; e.g. NET_ADMIN, SYS_TIME, CHOWN (or ALL)", f"[{i}]")
        if name in seen:
            raise Problem(f"{name} is already listed at [{seen[name]}]", f"[{i}]")
        seen[name] = i
    return tuple(sorted(seen))


def _device(item: Any, sub: str) -> Device:
    if isinstance(item, str):
        parts = item.split(":")
        if len(parts) == 2 and not parts[1].startswith("/"):  # "/dev/fuse:rw": docker's shorthand
            parts = [parts[0], parts[0], parts[1]]
        if len(parts) > 3:
            raise Problem(f"{item!r}: write HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]]", sub)
        source = parts[0]
        target = parts[1] if len(parts) > 1 else source
        perms = parts[2] if len(parts) > 2 else "rwm"
    elif isinstance(item, dict):
        unknown = set(item) - {"source", "target", "permissions"}
        if unknown or "source" not in item:
            raise Problem("must be {\"source\", \"target\", \"permissions\"} (source required)", sub)
        source, target, perms = item["source"], item.get("target", item["source"]), item.get("permissions", "rwm")
        if not all(isinstance(x, str) for x in (source, target, perms)):
            raise Problem("source, target and permissions are strings", sub)
    else:
        raise Problem(f"must be \"/dev/HOST[:/dev/CONTAINER[:rwm]]\" or an object, not {kind_of(item)}", sub)
    if not perms or len(set(perms)) != len(perms) or not set(perms) <= set("rwm"):
        raise Problem(f"permissions {perms!r} must be some of r, w, m, each once", sub)
    perms = "".join(sorted(perms, key="rwm".index))
    return Device(_path(source, sub, root=False), _path(target, sub, root=False), perms)


def parse_devices(value: Any) -> tuple[Device, ...]:
    if not isinstance(value, list):
        raise Problem(f"must be a list of \"HOST_PATH[:CONTAINER_PATH[:rwm]]\", not {kind_of(value)}")
    devices: dict[str, int] = {}
    out = []
    for i, item in enumerate(value):
        device = _device(item, f"[{i}]")
        if device.target in devices:
            raise Problem(f"{device.target} is already the target of [{devices[device.target]}]", f"[{i}]")
        devices[device.target] = i
        out.append(device)
    return tuple(sorted(out))


def parse_sysctls(value: Any) -> tuple[tuple[str, str], ...]:
    """``{"net.core.somaxconn": 1024}``: namespaced sysctls only (``sysctl_problem``); values as text."""
    if not isinstance(value, dict):
        raise Problem(f"must be an object like {{\"net.core.somaxconn\": \"1024\"}}, not {kind_of(value)}")
    out = {}
    for key, val in value.items():
        problem = sysctl_problem(key)
        if problem:
            raise Problem(problem, f".{key}")
        if isinstance(val, bool) or not isinstance(val, str | int):
            raise Problem(f"must be a string or an integer, not {kind_of(val)}", f".{key}")
        if isinstance(val, str) and (not val.strip() or "\0" in val):
            raise Problem("must be a non-empty value", f".{key}")
        out[key] = str(val)
    return tuple(sorted(out.items()))


# -- resources ---------------------------------------------------------------------------------
def _limit(value: Any, sub: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= MAX_ULIMIT:
        raise Problem(f"{value!r} must be an integer from -1 (unlimited) up", sub)
    return value


def parse_ulimits(value: Any) -> tuple[Ulimit, ...]:
    """``{"nofile": {"soft": 1024, "hard": 4096}, "nproc": 512}`` (one number: soft and hard)."""
    if not isinstance(value, dict):
        raise Problem(f"must be an object like {{\"nofile\": {{\"soft\": 1024, \"hard\": 4096}}}}, "
                      f"not {kind_of(value)}")
    out = []
    for name, limit in value.items():
        sub = f".{name}"
        if name not in ULIMITS:
            raise Problem(f"{name!r} is not a ulimit; one of {', '.join(sorted(ULIMITS))}", sub)
        if isinstance(limit, dict):
            if set(limit) != {"soft", "hard"}:
                raise Problem("must be {\"soft\": N, \"hard\": N}", sub)
            soft, hard = _limit(limit["soft"], sub + ".soft"), _limit(limit["hard"], sub + ".hard")
        else:
            soft = hard = _limit(limit, sub)
        if hard != -1 and (soft == -1 or soft > hard):
            raise Problem(f"soft {soft} is above hard {hard}", sub)
        out.append(Ulimit(name, soft, hard))
    return tuple(sorted(out))


def _tmpfs(item: Any, sub: str) -> Tmpfs:
    if isinstance(item, dict):
        unknown = set(item) - {"target", "size", "mode", "flags"}
        if unknown or not isinstance(item.get("target"), str):
            raise Problem("must be {\"target\", \"size\", \"mode\", \"flags\"} (target required)", sub)
        target, options = item["target"], []
        if item.get("size") is not None:
            options.append(("size", item["size"]))
        if item.get("mode") is not None:
            options.append(("mode", item["mode"]))
        options += [(flag, None) for flag in _strings(item.get("flags") or [], "tmpfs flags")]
    elif isinstance(item, str):
        target, _, text = item.partition(":")
        options = [(k, v if sep else None) for k, sep, v in (o.partition("=") for o in text.split(",") if o)]
    else:
        raise Problem(f"must be \"/PATH[:size=64M,mode=1777]\" or an object, not {kind_of(item)}", sub)
    size, mode, flags = 0, None, []
    for key, val in options:
        if key == "size" and val is not None:
            try:
                size = f.parse_size(val)
            except Problem as exc:
                raise Problem(f"size: {exc.message}", sub) from None
        elif key == "mode" and val is not None:
            # "1777", or 1777 as a YAML file writes it: the digits are octal either way.
            text = str(val) if isinstance(val, str) or (isinstance(val, int) and not isinstance(val, bool)) else None
            if text is None or not re.fullmatch(r"0?[0-7]{3,4}", text):
                raise Problem(f"mode {val!r} must be octal permission bits as a string, like \"1777\"", sub)
            mode = int(text, 8)
        elif key in TMPFS_FLAGS and val is None:
            flags.append(key)
        else:
            raise Problem(f"tmpfs option {key!r} is not one of size, mode, {', '.join(TMPFS_FLAGS)}", sub)
    return Tmpfs(_path(target, sub, root=False), size, mode, tuple(sorted(set(flags))))


def parse_tmpfs(value: Any) -> tuple[Tmpfs, ...]:
    """One path, or a list of ``"/run:size=64M,mode=1777,noexec"`` strings or objects."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise Problem(f"must be a path or a list of \"/PATH[:OPTIONS]\", not {kind_of(value)}")
    seen: dict[str, int] = {}
    out = []
    for i, item in enumerate(items):
        sub = f"[{i}]" if isinstance(value, list) else ""
        mount = _tmpfs(item, sub)
        if mount.target in seen:
            raise Problem(f"{mount.target} is already mounted by [{seen[mount.target]}]", sub)
        seen[mount.target] = i
        out.append(mount)
    return tuple(sorted(out))


def parse_cpu_shares(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_CPU_SHARES <= value <= MAX_CPU_SHARES:
        raise Problem(f"{value!r} must be an integer from {MIN_CPU_SHARES} to {MAX_CPU_SHARES} "
                      "(a relative weight; 1024 is the engine's default)")
    return value


# -- metadata ----------------------------------------------------------------------------------
def label_key(key: str) -> str | None:
    if not key.strip() or "\0" in key:
        return "a label key must be non-empty"
    if key.lower().startswith(RESERVED_LABELS):
        return f"labels under {RESERVED_LABELS}* are Orion's own (they say which task a container is)"
    return None


def _extra_host(item: str, sub: str) -> tuple[str, str]:
    host, sep, ip = item.partition("=") if "=" in item else item.partition(":")
    if not sep:
        raise Problem(f"{item!r}: write HOST:IP (or HOST=IP)", sub)
    if not _HOSTNAME_RE.match(host) or len(host) > 253:
        raise Problem(f"{host!r} is not a host name", sub)
    if ip != "host-gateway":
        try:
            ip = str(ipaddress.ip_address(ip.strip("[]")))
        except ValueError:
            raise Problem(f"{ip!r} is not an IP address (or host-gateway)", sub) from None
    return host, ip


def parse_extra_hosts(value: Any) -> tuple[tuple[str, str], ...]:
    """``["db:10.0.0.5"]``, ``["db=10.0.0.5"]`` or ``{"db": "10.0.0.5"}``: lines added to /etc/hosts."""
    if isinstance(value, dict):
        pairs = []
        for host, ip in value.items():
            if not isinstance(ip, str):
                raise Problem(f"must be an IP address as a string, not {kind_of(ip)}", f".{host}")
            pairs.append(_extra_host(f"{host}={ip}", f".{host}"))
    else:
        pairs = [_extra_host(item, f"[{i}]") for i, item in enumerate(_strings(value, "\"HOST:IP\" entries"))]
    return tuple(sorted(set(pairs)))

def parse_driver(value: Any) -> str:
    if not isinstance(value, str) or not DRIVER_RE.match(value):
        raise Problem(f"{value!r} is not a log driver name, like \"json-file\", \"local\" or \"syslog\"")
    return value
