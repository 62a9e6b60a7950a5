"""Reading the state machine's typed results in tests (``orion/state/results.py``)."""

from __future__ import annotations

from typing import Any

from orion.state.results import RefusalKind, Refused


def accepted(result: Any) -> Any:
    """``result``, which must not be a refusal (the refusal is the failure message)."""
    if isinstance(result, Refused):
        raise AssertionError(f"refused ({result.kind}): {result.detail}")
    return result


def refused(result: Any, kind: RefusalKind) -> Refused:
    """``result``, which must be a refusal of ``kind``."""
    if not isinstance(result, Refused) or result.kind != kind:
        raise AssertionError(f"expected a refusal of kind {kind}, got {result!r}")
    return result
