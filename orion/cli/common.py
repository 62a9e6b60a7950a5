"""What every client command shares: the global options, the settings they make, and how a
failure is reported.

The global options (``--addr``, ``--token``, ``--ca-cert``, ``--client-cert``, ``--client-key``,
``--json``, ``-o``, ``--timeout``) are declared once here. ``orion`` takes them before the
command, and every command that talks to the API takes them after it too (``orion ps --addr
URL``), as kubectl and nomad do: people type the command first. Given after the command, a
value overrides the one before it (and the environment).

Exit codes (docs/cli.md): 0 done; 1 the cluster refused or could not be reached
(the message says why and what to do); 2 the command line itself is wrong
(click's usage errors, and ``orion agent`` settings that cannot work).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import click

from orion.cli.client import DEFAULT_ADDR, DEFAULT_TIMEOUT, ClientError, OrionClient

_PEM = click.Path(exists=True, dir_okay=False, readable=True)
# Every format some command prints: a command's own -o says which of them it takes.
FORMATS = ("table", "wide", "json", "yaml", "text")


@dataclass(frozen=True)
class GlobalOption:
    """One global option: its spellings, the ``Settings`` field it sets, and how it reads."""

    decls: tuple[str, ...]
    name: str
    help: str
    envvar: str | None = None
    default: Any = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def for_group(self) -> Callable[[Any], Any]:
        """The option on ``orion`` itself: with its environment variable and default."""
        return click.option(*self.decls, self.name, envvar=self.envvar, default=self.default,
                            show_default=self.default is not None and self.default is not False,
                            help=self.help, **self.kwargs)

    def for_command(self) -> click.Option:
        """The same option after a command: no default (absent leaves the group's value), hidden
        from the command's help (``orion -h`` lists them), and it only updates the settings."""
        kwargs = {k: v for k, v in self.kwargs.items() if k != "is_flag"}
        flag = {"is_flag": True, "default": None, "flag_value": True} if self.kwargs.get("is_flag") else {}
        return click.Option([*self.decls, self.name], expose_value=False, hidden=True, callback=self._override,
                            **({"default": None} | flag | kwargs))

    def _override(self, ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.obj = replace(_settings(ctx), **{self.name: value})
        return value


GLOBAL_OPTIONS = (
    GlobalOption(("--addr",), "addr", "Any node's API address (ORION_ADDR).", "ORION_ADDR", DEFAULT_ADDR),
    GlobalOption(("--token",), "token", "API bearer token (ORION_API_TOKEN).", "ORION_API_TOKEN"),
    GlobalOption(("--ca-cert",), "ca_cert", "CA verifying an https agent's certificate (ORION_CACERT).",
                 "ORION_CACERT", kwargs={"type": _PEM}),
    GlobalOption(("--client-cert",), "client_cert",
                 "Client certificate for an agent that requires one (ORION_CLIENT_CERT).", "ORION_CLIENT_CERT",
                 kwargs={"type": _PEM}),
    GlobalOption(("--client-key",), "client_key", "Private key of --client-cert (ORION_CLIENT_KEY).",
                 "ORION_CLIENT_KEY", kwargs={"type": _PEM}),
    GlobalOption(("--json",), "as_json", "Print the API's JSON answer (for a listing: -o json).", default=False,
                 kwargs={"is_flag": True}),
    GlobalOption(("-o", "--output"), "output", "Output format for the commands that take one (-o json: any "
                 "command's JSON).", kwargs={"type": click.Choice(FORMATS)}),
    GlobalOption(("--timeout",), "timeout", "Seconds to wait for an answer.", default=DEFAULT_TIMEOUT,
                 kwargs={"type": click.FloatRange(min=0.1)}),
)


_GLOBALS_HERE = "\n\n\b\nThe global options (--addr, --token, -o...: orion -h) work here too."


def accept_global_options(command: click.Command) -> click.Command:
    """Let ``command`` (and, for a group, every command in it) take the global options after its
    name; an option it has of its own (a listing's ``-o``, a command's ``--json``) stays its own."""
    if getattr(command, "orion_offline", False) or getattr(command, "orion_globals", False):
        return command
    taken = {opt for param in command.params for opt in param.opts}
    command.params.extend(g.for_command() for g in GLOBAL_OPTIONS if taken.isdisjoint(g.decls))
    command.orion_globals = True  # type: ignore[attr-defined]
    if not isinstance(command, click.Group):
        command.epilog = (command.epilog or "") + _GLOBALS_HERE
    for sub in getattr(command, "commands", {}).values():
        accept_global_options(sub)
    return command


def offline(command: click.Command) -> click.Command:
    """Mark a command that never calls the API (it reads a file or a data dir): no global options."""
    command.orion_offline = True  # type: ignore[attr-defined]
    return command


@dataclass(frozen=True)
class Settings:
    """The global options' values (``GLOBAL_OPTIONS``: one field each)."""

    addr: str = DEFAULT_ADDR
    token: str | None = None
    as_json: bool = False
    timeout: float = DEFAULT_TIMEOUT
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    output: str | None = None

    def client(self) -> OrionClient:
        return OrionClient(self.addr, self.token, self.timeout, ca_cert=self.ca_cert,
                           client_cert=self.client_cert, client_key=self.client_key)


class OrionError(click.ClickException):
    """An expected failure: printed as ``Error: ...`` with exit code 1, no traceback."""

    exit_code = 1


def fail(exc: ClientError, not_found: str = "") -> OrionError:
    """The API's refusal as one line; ``not_found`` is the hint added to a 404
    (e.g. which command lists the ids)."""
    text = exc.message
    if exc.field and not text.startswith(f"{exc.field}:"):
        text += f" (field: {exc.field})"
    if exc.status == 404 and not_found:
        text += f"; {not_found}"
    return OrionError(text)


def _settings(ctx: click.Context) -> Settings:
    return ctx.find_object(Settings) or Settings()


def settings_of(ctx: click.Context, as_json: bool = False) -> Settings:
    """The global options as given (before the command or after it), with a command's own ``--json``.
    A command without an ``-o`` of its own prints JSON for ``-o json`` and refuses any other format."""
    base = _settings(ctx)
    if base.client_key and not base.client_cert:
        raise click.UsageError("--client-key needs --client-cert (ORION_CLIENT_CERT)")
    if base.output not in (None, "json") and not _own_output(ctx):
        raise click.BadParameter(f"{base.output!r}: `{ctx.command_path}` prints text, or JSON with -o json",
                                 param_hint="-o")
    return replace(base, as_json=base.as_json or as_json or base.output == "json")


def _own_output(ctx: click.Context) -> click.Parameter | None:
    return next((p for p in ctx.command.params if p.name == "output" and p.expose_value), None)


def output_of(ctx: click.Context, output: str | None) -> str | None:
    """A command's ``-o``: its own if given, else the global one (before or after the command),
    refused when the command does not print that format."""
    if output is not None:
        return output
    given = _settings(ctx).output
    own = _own_output(ctx)
    if given is None or own is None:
        return None
    choices = getattr(own.type, "choices", ())
    if given not in choices:
        raise click.BadParameter(f"{given!r}: `{ctx.command_path}` prints {', '.join(choices)}", param_hint="-o")
    return given


def examples(*lines: str) -> str:
    """A command's help epilog: examples kept as written (click rewraps other text)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
