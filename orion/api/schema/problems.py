"""Refusals: one error type for every bad request, and the bridge from pydantic's errors to it.

Every refusal is a :class:`ValidationError` naming the field (``env.PATH``,
``volumes[0].target``, ``update.maxParallel``) and the fix, because the person
reading it is at a terminal and the CLI prints it as is. The field validators
(``orion/api/schema/fields.py``) raise :class:`Problem` with our own words;
pydantic records where in the body it happened (its ``loc``), and
:func:`refusal` joins the two into the answer ``{"error", "field"}``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pydantic
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel


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


class Problem(ValueError):
    """Raised inside a validator: pydantic adds where (``loc``); ``sub`` goes below it
    (a map's key ``.PATH``, a list's index ``[1]``)."""

    def __init__(self, message: str, sub: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.sub = sub


def kind_of(value: Any) -> str:
    """How a JSON value reads in an error message ("an object", "a string")."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null", int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def field_path(loc: Sequence[Any], sub: str = "") -> str | None:
    """``("volumes", 0, "target")`` -> ``volumes[0].target``; ``sub`` is appended the same way."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if sub:
        path = path + sub if path else sub.lstrip(".")
    return path or None


def _rank(error: Mapping[str, Any]) -> int:
    """Which of several problems to report: a missing required field before a wrong one."""
    return 0 if error["type"] == "missing" else 1


def refusal(exc: pydantic.ValidationError) -> ValidationError:
    """The one problem to report for a refused body (pydantic lists all; a person fixes one at a time)."""
    errors = exc.errors(include_url=False, include_input=False)
    error = min(errors, key=_rank)  # stable: the first in body order among the most important
    found = (error.get("ctx") or {}).get("error")
    if isinstance(found, Problem):
        return ValidationError(field_path(error["loc"], found.sub), found.message)
    if error["type"] == "missing":
        return ValidationError(field_path(error["loc"]), "is required")
    return ValidationError(field_path(error["loc"]), error["msg"][:1].lower() + error["msg"][1:])


def unknown(key: str, known: Sequence[str], aliases: Mapping[str, str], what: str = "field") -> str:
    """"unknown field; did you mean 'portBindings'?": the alias people bring, else the closest name."""
    alias = aliases.get(key)
    guess = alias if alias in known else next(iter(difflib.get_close_matches(key, known, n=1)), None)
    hint = f"; did you mean {guess!r}?" if guess else (f"; known {what}s: {', '.join(known)}" if known else
                                                       f"; this operation takes no {what}")
    return f"unknown {what}{hint}"


class Body(BaseModel):
    """A JSON object of camelCase fields; an unknown field is refused naming the likely intent.

    ``ALIASES`` maps spellings people bring from Docker, Swarm, Nomad or our own
    snake_case model to the field meant; otherwise the closest known name is offered.
    """

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)
    ALIASES: ClassVar[Mapping[str, str]] = {}
    EXAMPLE: ClassVar[str] = "{...}"
    WHAT: ClassVar[str] = "field"  # what an unknown name is called in the refusal
    KNOWN: ClassVar[tuple[str, ...]] = ()  # the wire names, in order: set once per class
    _KNOWN_SET: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.KNOWN = tuple(f.alias or name for name, f in cls.model_fields.items())
        cls._KNOWN_SET = frozenset(cls.KNOWN)

    @classmethod
    def not_an_object(cls, value: Any) -> Problem:
        return Problem(f"must be an object like {cls.EXAMPLE}, not {kind_of(value)}")

    @model_validator(mode="before")
    @classmethod
    def _known_fields_only(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise cls.not_an_object(data)
        if not cls._KNOWN_SET.issuperset(data):
            key = next(str(k) for k in data if k not in cls._KNOWN_SET)
            raise Problem(unknown(key, cls.KNOWN, cls.ALIASES, cls.WHAT), f".{key}")
        return data
