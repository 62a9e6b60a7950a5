"""What every command shares: its declaration, its JSON form in the Raft log, and the handler mark.

A command is declared once, with :func:`command` over its class: that makes it a frozen
dataclass, registers it under its ``TYPE`` for :func:`decode`, and its log codec is derived
from its fields' types (``str``, ``int``, ``float``, ``bool``, enums with ``parse``, values
with ``to_dict``/``from_dict``, tuples and optionals of those). Its handler, wherever it
lives in the machine, says which commands it applies with :func:`handles`; the machine
gathers the marks into its one dispatch table and refuses to start if a declared command
has no handler or two (``orion/state/machine.py``). Adding a command is its declaration
plus its handler.

The log form is a JSON object ``{"type": ..., "v": ..., <every field>}`` with sorted keys
and no spaces, never a pickled class, so nodes of different versions read each other's
log. A field declared :func:`optional` may be missing from an entry (one written before
the field existed) and reads as its default; every other field must be there, or the
entry is malformed. A field a later log format added to a command that existed before it
(``ReportTaskState.ip``) is also written only when set (``optional(when_set=True)``): the
entries of the format before re-encode byte for byte, and a node of that format meets
the field only once the feature that sets it is in use. A node that meets a type it does
not know, or a newer version of one it knows (a newer node wrote it during a rolling
upgrade), raises :class:`UnknownCommand`, which the machine turns into a refusal instead of
a crash.

``request_id`` makes a command idempotent: the state machine remembers recent request
ids and answers a repeat with the first result, so a client or the write path may retry
after a leader died mid-commit without doing it twice.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields
from functools import cache
from typing import Any, ClassVar, TypeVar, Union, dataclass_transform, get_args, get_origin, get_type_hints

C = TypeVar("C", bound="Command")
F = TypeVar("F", bound=Callable[..., Any])

# Every declared command by its log name; filled by :func:`command` as the modules load.
COMMAND_TYPES: dict[str, type[Command]] = {}
# Marks a field an entry may lack, and one written only when set (see :func:`optional`).
_OPTIONAL = "orion.optional"
_WHEN_SET = "orion.when_set"


@dataclass(frozen=True)
class Command:
    """Base of every command. ``TYPE``/``VERSION`` name it in the log."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    # An entry the stores unwrap (``Batch``), not a command the machine handles.
    ENTRY_ONLY: ClassVar[bool] = False
    request_id: str = field(default="", metadata={_OPTIONAL: True})


class UnknownCommand(ValueError):
    """The log holds a command this version cannot read."""


def optional(default: Any = MISSING, *, default_factory: Any = MISSING, when_set: bool = False) -> Any:
    """A field an entry may lack (written before the field existed): it reads as its default.
    ``when_set``: the field is left out of the entry while it holds its default (see above)."""
    return field(default=default, default_factory=default_factory, metadata={_OPTIONAL: True, _WHEN_SET: when_set})


@dataclass_transform(frozen_default=True, field_specifiers=(field, optional))
def command(cls: type[C]) -> type[C]:
    """Declare ``cls`` a command: a frozen dataclass, registered under its ``TYPE``."""
    cls = dataclass(frozen=True)(cls)
    if not cls.TYPE or cls.TYPE in COMMAND_TYPES:
        raise TypeError(f"{cls.__name__}: a command needs a TYPE of its own (got {cls.TYPE!r})")
    COMMAND_TYPES[cls.TYPE] = cls
    return cls


def handles(*commands: type[Command]) -> Callable[[F], F]:
    """Mark a machine method as the handler of ``commands`` (``handler(command, index)``)."""
    def mark(fn: F) -> F:
        fn.__handles__ = commands  # type: ignore[attr-defined]
        return fn

    return mark


def handler_table(*parts: object) -> dict[str, Callable[[Any, int], Any]]:
    """The machine's one dispatch table: every ``@handles`` method of ``parts``, bound, by command
    type. Raises TypeError when a declared command has no handler, or two: checked whenever a
    machine is built, so a command cannot be declared and forgotten."""
    table: dict[str, Callable[[Any, int], Any]] = {}
    for part in parts:
        for name, commands in _marked(type(part)):
            for cmd in commands:
                if cmd.TYPE in table:
                    raise TypeError(f"two handlers for {cmd.__name__}: {table[cmd.TYPE]} and {name}")
                table[cmd.TYPE] = getattr(part, name)
    missing = sorted(t for t, cls in COMMAND_TYPES.items() if not cls.ENTRY_ONLY and t not in table)
    if missing:
        raise TypeError(f"declared commands without a handler: {', '.join(missing)}")
    return table


@cache
def _marked(cls: type) -> tuple[tuple[str, tuple[type[Command], ...]], ...]:
    """(method name, the commands it handles) for each ``@handles`` method of ``cls``."""
    seen: dict[str, tuple[type[Command], ...]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if hasattr(value, "__handles__"):
                seen[name] = value.__handles__
    return tuple(seen.items())


# -- the log form ---------------------------------------------------------------------------------


def _to_plain(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value  # str (a StrEnum writes its value), numbers, bools, None


def encode(command: Command) -> str:
    """Serialise a command for the Raft log (JSON text, sorted keys)."""
    body: dict[str, Any] = {"type": command.TYPE, "v": command.VERSION}
    for f in fields(command):
        value = getattr(command, f.name)
        if f.metadata.get(_WHEN_SET) and value == (f.default_factory() if f.default is MISSING else f.default):
            continue
        body[f.name] = _to_plain(value)
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def decode(text: str) -> Command:
    """Parse a log entry back into its command; raise UnknownCommand if unreadable."""
    try:
        body = json.loads(text)
        cls = COMMAND_TYPES[body["type"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise UnknownCommand(f"unreadable command: {text[:80]!r}") from exc
    if int(body.get("v", 1)) > cls.VERSION:
        raise UnknownCommand(f"{cls.TYPE} v{body['v']} is newer than this node understands (v{cls.VERSION})")
    try:
        return cls(**{name: read(body) for name, read in _readers(cls)})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UnknownCommand(f"malformed {cls.TYPE}: {exc.__class__.__name__} {exc}") from exc


@cache
def _readers(cls: type[Command]) -> tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...]:
    """For each field of ``cls``: how to read it from an entry's body (derived once per type)."""
    hints = get_type_hints(cls)
    return tuple((f.name, _field_reader(f, _value_reader(hints[f.name]))) for f in fields(cls))


def _field_reader(f: Field, read: Callable[[Any], Any]) -> Callable[[dict[str, Any]], Any]:
    if not f.metadata.get(_OPTIONAL):
        return lambda body: read(body[f.name])
    default = f.default_factory if f.default is MISSING else (lambda: f.default)
    return lambda body: read(body[f.name]) if f.name in body else default()


def _value_reader(hint: Any) -> Callable[[Any], Any]:
    """How a JSON value becomes a value of type ``hint``."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        read = _value_reader(inner)
        return lambda v: None if v is None else read(v)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _value_reader(args[0])
            return lambda v: tuple(item(x) for x in v or ())
        parts = [_value_reader(a) for a in args]
        return lambda v: tuple(read(x) for read, x in zip(parts, v, strict=True))
    if hint in (str, int, float, bool):
        return hint
    if hasattr(hint, "parse"):  # an enum that reads an unknown value as its fallback (NoFitKind)
        return hint.parse
    if hasattr(hint, "from_dict"):
        return hint.from_dict
    raise TypeError(f"no log form for a field of type {hint!r}")
