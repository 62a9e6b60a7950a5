"""What a setting of the agent is: one declaration from which every spelling follows.

A setting is a field of ``AgentConfig`` (``orion/config/agent.py``) made with
``setting(...)``: its name and type are the field's, and the declaration holds
the rest — the shipped default and the reason for it, one line of help, the
value checks, whether it has a flag, whether it is a secret, and which parts
take it. From that one place follow the ``orion agent`` flag (``--gossip-port``),
the environment variable (``ORION_GOSSIP_PORT``), the TOML key (``gossip_port``),
the values each part is built with (``AgentConfig.part``), the shipped values
the tests build parts with (``shipped``) and docs/settings.md.

Nothing here reads a file or the environment: parsing a value and checking it
are functions of the value (``orion/config/load.py`` does the layering).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, get_type_hints

# The key of a field's metadata that holds its declaration.
_KEY = "orion.setting"

# What a secret's file companion (``raft_secret_file``) is for; the same for every secret.
SECRET_FILE_WHY = ("Secrets from a file (mode 0600, readable by the agent alone) or the environment, never "
                   "argv: a command line is world-readable in ps and /proc. Trailing newlines are dropped.")

Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Setting:
    """One setting, declared once. ``name`` and ``kind`` come from the ``AgentConfig`` field."""

    default: Any
    help: str  # one line, capitalised: the flag's --help and the docs' "what"
    why: str  # the reason for the default: what the comment beside the number used to say
    has_flag: bool = False  # an ``orion agent`` flag besides ORION_* and TOML
    flag_name: str = ""  # the flag when it is not --<name> (``--label`` for labels)
    metavar: str = ""  # how one item of a repeatable KEY=VALUE flag is written
    choices: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()  # each returns what is wrong with one value, or None
    parts: tuple[str, ...] = ()  # "restart.delay": the part's config value this setting becomes
    secret: bool = False  # has a <name>_file companion; given as a flag, the agent warns
    file_of: str = ""  # set on a secret's companion: the secret it reads
    name: str = ""
    kind: Any = str

    @property
    def flag(self) -> str:
        """The ``orion agent`` option, for a setting declared with a flag."""
        return self.flag_name or "--" + self.name.replace("_", "-")

    @property
    def named(self) -> str:
        """How a message names it: the flag if it has one, else its TOML key."""
        return self.flag if self.has_flag else self.name

    @property
    def env(self) -> str:
        return "ORION_" + self.name.upper()

    @property
    def toml(self) -> str:
        return self.name

    def fresh_default(self) -> Any:
        """The default as a new value (a dict default must not be shared between configs)."""
        return dict(self.default) if isinstance(self.default, dict) else self.default

    def parse(self, where: str, value: Any) -> Any:
        """``value`` (a string from the environment, a TOML value, a flag's value) as this
        setting's type, checked; a ``ConfigError`` naming ``where`` (the spelling it came by)."""
        try:
            parsed = _PARSERS[self.kind](value, self.metavar)
        except (TypeError, ValueError) as exc:
            detail = str(exc) if isinstance(exc, ItemError) else f"{value!r} is not a valid {_KIND_NAMES[self.kind]}"
            raise ConfigError(f"{where}: {detail}") from exc
        problem = self.problem(parsed)
        if problem:
            raise ConfigError(f"{where}: {problem}")
        return parsed

    def problem(self, value: Any) -> str | None:
        if self.choices and value not in self.choices:
            return f"{value!r} is not {_either(self.choices)}"
        for check in self.checks:
            problem = check(value)
            if problem:
                return problem
        return None

    def flag_help(self) -> str:
        """``--help``: the line, the default when it says something, a secret's warning."""
        text = self.help
        if self.secret:
            return f"{text} itself: visible in ps; prefer {self.flag}-file."
        if self.file_of:
            return f"{text} (or {'ORION_' + self.file_of.upper()})."
        if self.default not in ("", (), {}, None, False):
            return f"{text} (default {self.default})."
        return text + "."


def setting(default: Any, help: str, why: str, *, flag: bool | str = False, metavar: str = "",
            choices: tuple[str, ...] = (), checks: tuple[Check, ...] = (), parts: tuple[str, ...] = (),
            secret: bool = False) -> Any:
    """A field of ``AgentConfig`` that declares a setting. ``flag``: True for ``--<name>``, a
    string for another flag name, False for ORION_* and TOML only. ``parts``: "part.value" for
    each part that takes it (``AgentConfig.part``). The field has no dataclass default: every
    ``AgentConfig`` is built by ``load_config``, which starts from these declarations."""
    declared = Setting(default=default, help=help, why=why, has_flag=bool(flag),
                       flag_name=flag if isinstance(flag, str) else "", metavar=metavar, choices=choices,
                       checks=checks, parts=parts, secret=secret)
    return field(metadata={_KEY: declared})


def declarations(cls: type) -> tuple[Setting, ...]:
    """Every setting of ``cls`` in declaration order, each secret followed by its file companion."""
    hints = get_type_hints(cls)
    out: list[Setting] = []
    for f in fields(cls):
        declared = f.metadata.get(_KEY)
        if declared is None:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with setting()")
        if hints[f.name] not in _PARSERS:
            raise TypeError(f"{cls.__name__}.{f.name}: no parser for {hints[f.name]}")
        declared = replace(declared, name=f.name, kind=hints[f.name])
        out.append(declared)
        if declared.secret:
            holding = declared.help[0].lower() + declared.help[1:]
            out.append(Setting(default="", help=f"File holding {holding}", why=SECRET_FILE_WHY,
                               has_flag=declared.has_flag, file_of=declared.name, name=f"{declared.name}_file"))
    return tuple(out)


def part_values(settings: tuple[Setting, ...], values: Mapping[str, Any], part: str) -> dict[str, Any]:
    """The values ``part`` is built with: ``{"delay": ...}`` for each setting declared ``part.delay``."""
    out = {}
    for declared in settings:
        for target in declared.parts:
            name, _, key = target.partition(".")
            if name == part:
                out[key] = values[declared.name]
    if not out:
        raise KeyError(f"no setting is declared for part {part!r}")
    return out


class ConfigError(ValueError):
    """A setting is wrong; the message names it and says what to do."""


class ItemError(ValueError):
    """One item of a KEY=VALUE list is not written as such: the message says how."""


# -- parsing: a string (environment), a TOML value or a flag's value -> the declared type --------
_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}


def _bool(value: Any, _: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _BOOL_TRUE:
        return True
    if text in _BOOL_FALSE:
        return False
    raise ValueError(value)


def _number(kind: type) -> Callable[[Any, str], Any]:
    def parse(value: Any, _: str) -> Any:
        if isinstance(value, bool):  # TOML's true is not 1 second or 1 port
            raise ValueError(value)
        return kind(value)
    return parse


def _list(value: Any, _: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, Mapping):
        raise TypeError(value)
    return tuple(str(v) for v in value)


def _table(value: Any, metavar: str) -> dict[str, str]:
    """A TOML table, ``"k=v,k2=v2"`` (environment) or repeated ``k=v`` items (a repeatable flag)."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    items = [p for p in value.split(",") if p.strip()] if isinstance(value, str) else list(value)
    out = {}
    for item in items:
        key, sep, val = str(item).partition("=")
        if not sep or not key.strip():
            raise ItemError(f"{str(item).strip()!r} is not {metavar or 'KEY=VALUE'}")
        out[key.strip()] = val.strip()
    return out


_PARSERS: dict[Any, Callable[[Any, str], Any]] = {
    str: lambda value, _: str(value), int: _number(int), float: _number(float), bool: _bool,
    tuple[str, ...]: _list, dict[str, str]: _table,
}
_KIND_NAMES: dict[Any, str] = {str: "str", int: "int", float: "float", bool: "bool",
                               tuple[str, ...]: "list", dict[str, str]: "table"}


def _either(choices: tuple[str, ...]) -> str:
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


# -- value checks a declaration names ----------------------------------------------------------------
def port_number(value: int) -> str | None:
    return None if 1 <= value <= 65535 else f"{value} is outside 1-65535"


def positive(value: float) -> str | None:
    return None if value > 0 else f"{value} must be above 0"


def at_least(low: float, because: str = "") -> Check:
    def check(value: float) -> str | None:
        return None if value >= low else f"{value} is below {low}" + (f" ({because})" if because else "")
    return check
