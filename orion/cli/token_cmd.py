"""``orion token new NAME --scope S`` and ``orion token hash``: lines for the agents' tokens file.

Nothing here talks to a cluster: a token is made (or read) locally and only its
SHA-256 goes into ``api_tokens_file`` (docs/api.md, "Tokens and scopes"), which the
operator deploys to every agent (the fleet role, or by hand).
"""

from __future__ import annotations

import json
import secrets
import sys

import click

from orion.api.scopes import Scope
from orion.api.tokens import NAME_RE, token_hash
from orion.cli.common import examples

# 32 random bytes: a token that no one guesses, so a plain hash of it is safe to publish.
TOKEN_BYTES = 32


@click.group("token")
def token() -> None:
    """Make API tokens for the agents' api_tokens_file."""


@token.command("new", epilog=examples("orion token new ci --scope write",
                                      "orion token new grafana --scope read -o json"))
@click.argument("name")
@click.option("--scope", required=True, type=click.Choice([s.label for s in Scope]),
              help="read: GET only; write: tasks and services; admin: everything.")
@click.option("-o", "--output", type=click.Choice(["toml", "json"]), default="toml", show_default=True,
              help="How to print the entry for the tokens file.")
def new(name: str, scope: str, output: str) -> None:
    """Print a fresh token for NAME, then the entry to add to api_tokens_file.

    The token is shown once: the file keeps only its hash."""
    if not NAME_RE.fullmatch(name):
        raise click.BadParameter(f"{name!r} must be 1-64 of letters, digits, '_.@-'", param_hint="NAME")
    value = secrets.token_urlsafe(TOKEN_BYTES)
    entry = {"name": name, "scope": scope, "sha256": token_hash(value)}
    click.echo(value)
    click.echo(f"# the token above is for {name} (shown once); add this to every agent's api_tokens_file:",
               err=True)
    click.echo(_entry(entry, output))


@token.command("hash", epilog=examples("printf %s \"$TOKEN\" | orion token hash"))
def hash_() -> None:
    """Print the SHA-256 of a token read from stdin (a trailing newline is dropped)."""
    value = sys.stdin.read().rstrip("\r\n")
    if not value:
        raise click.UsageError("no token on stdin")
    click.echo(token_hash(value))


def _entry(entry: dict[str, str], output: str) -> str:
    if output == "json":
        return json.dumps(entry)
    return "[[token]]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in entry.items())
