"""What every client command shares: the group's settings and how a failure is reported.

Exit codes (docs/cli.md): 0 done; 1 the cluster refused or could not be reached
(the message says why and what to do); 2 the command line itself is wrong
(click's usage errors, and ``orion agent`` settings that cannot work).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import click

from orion.cli.client import DEFAULT_ADDR, DEFAULT_TIMEOUT, ClientError, OrionClient


@dataclass(frozen=True)
class Settings:
    addr: str
    token: str | None
    as_json: bool
    timeout: float
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

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


def settings_of(ctx: click.Context, as_json: bool = False) -> Settings:
    """The group's settings (``--addr``, ``--token``, ...), with a command's own ``--json``."""
    base: Settings = ctx.find_object(Settings) or Settings(DEFAULT_ADDR, None, False, DEFAULT_TIMEOUT)
    return replace(base, as_json=base.as_json or as_json)


def examples(*lines: str) -> str:
    """A command's help epilog: examples kept as written (click rewraps other text)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
