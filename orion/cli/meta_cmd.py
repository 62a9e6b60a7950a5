"""``orion version`` (client and server) and ``orion completion bash|zsh|fish``."""

from __future__ import annotations

import platform
from typing import Any

import click
from click.shell_completion import get_completion_class

from orion.cli.client import ClientError
from orion.cli.common import OrionError, examples, fail, offline, output_of, settings_of
from orion.cli.output import dump
from orion.version import orion_version

SHELLS = ("bash", "zsh", "fish")
# Where each shell looks for a completion script (shown in the help).
_INSTALL = {
    "bash": "orion completion bash > /etc/bash_completion.d/orion   # or: eval \"$(orion completion bash)\"",
    "zsh": "orion completion zsh > \"${fpath[1]}/_orion\"             # or: eval \"$(orion completion zsh)\"",
    "fish": "orion completion fish > ~/.config/fish/completions/orion.fish",
}


@click.command(epilog=examples("orion version", "orion --addr https://10.0.0.5:8000 version -o json"))
@click.option("-o", "--output", type=click.Choice(("text", "json", "yaml")), default=None,
              help="text (the default), json or yaml.")
@click.pass_context
def version(ctx: click.Context, output: str | None) -> None:
    """Print the client's version and the server's (from GET /health of --addr).

    The client's line is printed even when the server cannot be reached (then exit 1)."""
    fmt = output_of(ctx, output)
    settings = settings_of(ctx)
    fmt = fmt or ("json" if settings.as_json else "text")
    client: dict[str, Any] = {"version": orion_version(), "python": platform.python_version()}
    server: dict[str, Any] | None = None
    error: OrionError | None = None
    api = settings.client()
    try:
        _, health = api.health()
        server = {"version": health.get("version"), "node": health.get("node"), "addr": api.addr}
    except ClientError as exc:
        error = fail(exc)
    if fmt == "text":
        click.echo(f"client: {orion_version()} (python {client['python']})")
        if server is not None:
            shown = server["version"] or "unknown (this agent's /health reports no version: an older Orion)"
            click.echo(f"server: {shown} (node {server['node']} at {api.addr})")
    else:
        click.echo(dump({"client": client, "server": server}, fmt))
    if error is not None:
        raise error


@offline
@click.command(epilog="\b\nInstall:\n" + "\n".join(f"  {line}" for line in _INSTALL.values()))
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL (commands, options, choices)."""
    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - click ships all three
        raise click.UsageError(f"no completion for {shell}")
    # The script calls `orion` back with _ORION_COMPLETE set, which click answers itself.
    click.echo(cls(ctx.find_root().command, {}, "orion", "_ORION_COMPLETE").source())
