"""How values are written for people: no-fit reasons, refusals, the CLI.

Plain functions of the values in ``orion/domain/model.py`` (bytes, millicores, ports,
selectors), kept beside it in the lowest layer so every part words a figure the
same way.
"""

from __future__ import annotations

from collections.abc import Iterable

_GiB = 1 << 30
_MiB = 1 << 20
_KiB = 1 << 10


def format_bytes(n: int) -> str:
    """``7.1 GiB``, ``512.0 MiB``: one decimal, the largest unit that is >= 1."""
    for unit, size in (("GiB", _GiB), ("MiB", _MiB), ("KiB", _KiB)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def format_cpu(millis: int) -> str:
    """``1.5 CPUs``, ``1 CPU``, ``0.25 CPUs`` from millicores."""
    cores = millis / 1000
    return f"{cores:g} CPU" + ("" if cores == 1 else "s")


def format_ports(ports: Iterable[tuple[int, str]]) -> str:
    return ", ".join(f"{port}/{proto}" for port, proto in sorted(ports))


def format_selectors(selectors: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(selectors))


def format_volumes(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))
