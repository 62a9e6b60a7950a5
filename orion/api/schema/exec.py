"""``POST /tasks/<id>/exec``'s body: the process to start in the task's container.

The session itself (the upgrade, the frames) is ``orion/api/exec_wire.py``; this is
only what the request asks for, validated before anything is upgraded.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pydantic
from pydantic import Field

from orion.api.schema import fields as f
from orion.api.schema.problems import Body, Problem, refusal
from orion.runtime import ExecSpec


def _command(value: Any) -> tuple[str, ...]:
    if value in ([], "") or (isinstance(value, str) and not value.strip()):
        raise Problem("is empty: give the program to run and its arguments, e.g. [\"sh\"]")
    parsed = f.parse_command(value)
    if parsed is None:
        raise Problem("is required: the program to run and its arguments, e.g. [\"sh\"]")
    return parsed


def _path_or_empty(value: Any) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value:
        raise Problem(f"{value!r} must be an absolute path inside the container")
    return value


def _user(value: Any) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or len(value) > 64 or any(c in value for c in "\0\n"):
        raise Problem(f"{value!r} is not a user: a name or uid, optionally :group")
    return value


Command = f.typed(tuple[str, ...], _command, {
    "anyOf": [{"type": "array", "items": {"type": "string"}, "minItems": 1},
              {"type": "string", "minLength": 1, "description": "split like a shell would"}]})
Workdir = f.typed(str, _path_or_empty, {"anyOf": [{"type": "string"}, {"type": "null"}]})
User = f.typed(str, _user, {"anyOf": [{"type": "string", "maxLength": 64}, {"type": "null"}]})
TermSize = f.int_range(1, 65535)


class ExecRequest(Body):
    """``{"command": ["sh"], "tty": true, "stdin": true, "rows": 40, "cols": 120}``: ``rows`` and
    ``cols`` are the terminal's size when it starts (with ``tty``); ``env``, ``user`` and
    ``workdir`` as ``docker exec`` takes them."""

    EXAMPLE = '{"command": ["sh", "-c", "echo hi"]}'
    ALIASES: ClassVar = {"cmd": "command", "interactive": "stdin", "workingDir": "workdir"}

    command: Command
    tty: f.Flag = False
    stdin: f.Flag = False
    rows: TermSize | None = None
    cols: TermSize | None = None
    env: f.Env = Field((), json_schema_extra=lambda schema: schema.pop("default", None))  # null or absent: none
    user: User = ""
    workdir: Workdir = ""

    def spec(self) -> ExecSpec:
        return ExecSpec(command=self.command, tty=self.tty, stdin=self.stdin, rows=self.rows or 0,
                        cols=self.cols or 0, env=self.env, user=self.user, workdir=self.workdir)


def parse_exec_request(body: Any) -> ExecSpec:
    try:
        return ExecRequest.model_validate(body).spec()
    except pydantic.ValidationError as exc:
        raise refusal(exc) from None
