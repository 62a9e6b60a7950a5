"""``POST /cluster/members`` bodies: a joiner asking to be admitted (``orion/membership/join.py`` sends them)."""

from __future__ import annotations

from typing import Any

import pydantic

from orion.api.schema.fields import typed
from orion.api.schema.problems import Body, Problem, kind_of, refusal


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise Problem(f"must be a non-empty string, not {kind_of(value)}")
    return value


Text = typed(str, _text, {"type": "string", "minLength": 1})


class AdmitRequest(Body):
    """Who asks (``nodeId``, for the log), where its Raft listens, and the join proof:
    an HMAC of ``raftAddr`` under the shared Raft secret."""

    EXAMPLE = '{"nodeId": "n2", "raftAddr": "10.0.0.2:7000", "proof": "<hex>"}'
    ALIASES = {"node_id": "nodeId", "raft_addr": "raftAddr", "id": "nodeId", "addr": "raftAddr"}

    node_id: Text = "?"
    raft_addr: Text
    proof: Text


def parse_admit_request(body: Any) -> AdmitRequest:
    try:
        return AdmitRequest.model_validate(body)
    except pydantic.ValidationError as exc:
        raise refusal(exc) from None
