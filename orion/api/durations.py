"""Durations in request bodies and query strings: a number and a unit, Go-style ("1m30s"),
one parser for every field that takes one (health checks, updates, ``wait``, ``since``)."""

from __future__ import annotations

import re
from typing import Any

from orion.api.validation import ValidationError, kind_of

# Durations in request bodies and query strings: a number and a unit, Go-style ("1m30s").
_DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(field_name: str, value: Any) -> float:
    """Seconds from ``"500ms"``, ``"2s"``, ``"1m30s"``, ``"1h"``."""
    if not isinstance(value, str):
        raise ValidationError(
            field_name, f"must be a duration string with a unit like \"10s\" or \"500ms\", not {kind_of(value)}"
        )
    text = value.strip()
    parts = _DURATION_PART_RE.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValidationError(
            field_name, f"{value!r} is not a duration; use a number and a unit (ms, s, m, h), e.g. \"10s\""
        )
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
