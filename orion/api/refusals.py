"""What the API answers when the state machine refuses a write: one table from the refusal's
kind (``orion/state/results.py``) to the HTTP status, and the one way a route turns a
``Refused`` into its answer (the route says what it tried, the machine says why not).
"""

from __future__ import annotations

from orion.api.http import ApiError
from orion.state.machine import StateMachine
from orion.state.results import RefusalKind, Refused

# What the API answers when the state machine refuses a write, by kind: the one table. All 409, on
# purpose: every route parses the request (400) and looks its target up (404) before it submits, so a
# refusal at apply time is a conflict with the state as committed: the target went or changed in between
# (not_found, wrong_state, stale), a name is taken (exists), or a rule only the machine checks against the
# replicated state (invalid: a host port asked twice, a count; no_fit; a published port another service
# publishes, port_taken; no VIP left, exhausted; a node of an older release still reads the log,
# log_version), or a secret or config a service reads (in_use: the 409 the issue asks for, naming the
# services). A node reads what it wrote, and only a release before kinds remembers an answer without
# one (unreadable, other), so those two are not expected; nor is mtu, which only an agent's lease meets.
REFUSAL_STATUS: dict[RefusalKind, int] = {
    RefusalKind.INVALID: 409,
    RefusalKind.NOT_FOUND: 409,
    RefusalKind.EXISTS: 409,
    RefusalKind.WRONG_STATE: 409,
    RefusalKind.STALE: 409,
    RefusalKind.NO_FIT: 409,
    RefusalKind.IN_USE: 409,
    RefusalKind.UNREADABLE: 409,
    RefusalKind.LOG_VERSION: 409,
    RefusalKind.EXHAUSTED: 409,
    RefusalKind.PORT_TAKEN: 409,
    RefusalKind.MTU: 409,
    RefusalKind.OTHER: 409,
}
# A refusal about one field of the request, whichever route submitted it: the field it names.
REFUSAL_FIELD: dict[RefusalKind, str] = {RefusalKind.PORT_TAKEN: "publish"}


def refusal(refused: Refused, what: str = "", field: str | None = None) -> ApiError:
    """The answer to a write the machine refused: ``what`` the route tried (if it says), then the
    machine's reason; the field the kind names (``REFUSAL_FIELD``), else the route's."""
    return ApiError(REFUSAL_STATUS[refused.kind], f"{what}: {refused.detail}" if what else refused.detail,
                    REFUSAL_FIELD.get(refused.kind, field))


def format_gate(m: StateMachine, version: int, what: str, field: str) -> None:
    """Refuse ``what`` (409 naming ``field``) until every node reads log format ``version``: during a
    rolling upgrade an older node would refuse or misread the entry, and its replica would diverge."""
    if m.log_version() < version:
        raise ApiError(409, f"{what} needs every node on a release that reads log format {version} "
                            f"(the oldest registered node reads {m.log_version()}); finish the upgrade first", field)
