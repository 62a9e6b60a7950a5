"""``orion secret|config|registry ...``: secrets, configs and registry credentials (docs/secrets.md).

A value is read from a file or stdin (``-f -``), sent base64 in the body and never printed: what
comes back and what these commands show is metadata (version, size, keyed digest, the key that
seals it, the services that read it). Registered by ``orion/cli/main.py``.
"""

from __future__ import annotations

import base64
import datetime
import json
import sys
from typing import Any

import click

from orion.cli.client import ClientError, OrionClient
from orion.cli.common import OrionError, examples, fail, settings_of
from orion.cli.output import Column, emit, output_format, output_options, render
from orion.domain.sealing import new_key


def _when(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def _short(digest: str) -> str:
    kind, _, hexed = digest.partition(":")
    return f"{kind}:{hexed[:16]}" if hexed else digest


OBJECT_COLUMNS: tuple[Column, ...] = (
    Column("NAME", lambda o: o["name"]),
    Column("VERSION", lambda o: o["version"]),
    Column("SIZE", lambda o: o["size"]),
    Column("CREATED", lambda o: _when(o["created"])),
    Column("USED BY", lambda o: ",".join(o["usedBy"]) or "-"),
    Column("DIGEST", lambda o: _short(o["digest"]), wide_only=True, wide_cell=lambda o: o["digest"]),
    Column("KEY", lambda o: o.get("keyId") or "-", wide_only=True),
)
REGISTRY_COLUMNS: tuple[Column, ...] = (
    Column("SERVER", lambda r: r["server"]),
    Column("USERNAME", lambda r: r["username"]),
    Column("CREATED", lambda r: _when(r["created"])),
    Column("KEY", lambda r: r["keyId"], wide_only=True),
)


def _client(ctx: click.Context) -> OrionClient:
    return settings_of(ctx).client()


def _call(client: OrionClient, method: str, path: str, body: Any = None, not_found: str = "") -> Any:
    try:
        return client.request(method, path, body=body)[1]
    except ClientError as exc:
        raise fail(exc, not_found) from None


def _read(path: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()  # noqa: SIM115
    except OSError as exc:
        raise OrionError(f"cannot read {path}: {exc.strerror}") from None


def _echo(ctx: click.Context, as_json: bool, data: Any, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if settings_of(ctx, as_json).as_json else text)


def _written(kind: str, answer: dict[str, Any]) -> str:
    if not answer["changed"]:
        return f"{kind} {answer['name']}: same value, still version {answer['version']}"
    text = f"{kind} {answer['name']} version {answer['version']} ({answer['size']} bytes, {_short(answer['digest'])})"
    if answer.get("rolled"):
        text += f"; rolling service(s) {', '.join(answer['rolled'])} to it"
    return text


def _group(kind: str) -> click.Group:
    """``create``, ``update``, ``ls``, ``inspect``, ``rm`` for secrets or configs."""
    listing = f"`orion {kind} ls` lists the {kind}s"

    @click.group(name=kind, help=f"Create, update, list and delete {kind}s (docs/secrets.md)." + (
        " A secret's value is never shown." if kind == "secret" else " A config reads back."))
    def group() -> None:
        pass

    def body(name: str | None, path: str, template: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"data": base64.b64encode(_read(path)).decode()}
        if name is not None:
            out["name"] = name
        if kind == "config":
            out["template"] = template
        return out

    template_opt = click.option("--template", is_flag=True, help="Render it on the node with the task's values "
                                "(${service}, ${slot}, ${node}, ${endpoints:NAME}...).") if kind == "config" \
        else (lambda fn: fn)
    file_opt = click.option("-f", "--file", "path", required=True, help=f"The {kind}'s content; - reads stdin.")

    @group.command(epilog=examples(f"orion {kind} create db -f password.txt", f"printf %s \"$PW\" | orion {kind} "
                                   "create db -f -") if kind == "secret" else
                   examples("orion config create app.conf -f app.conf"))
    @click.argument("name")
    @file_opt
    @template_opt
    @click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
    @click.pass_context
    def create(ctx: click.Context, name: str, path: str, as_json: bool, template: bool = False) -> None:
        """Create NAME (version 1) from a file or stdin."""
        answer = _call(_client(ctx), "POST", f"/{kind}s", body(name, path, template))
        _echo(ctx, as_json, answer, _written(kind, answer))

    @group.command()
    @click.argument("name")
    @file_opt
    @template_opt
    @click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
    @click.pass_context
    def update(ctx: click.Context, name: str, path: str, as_json: bool, template: bool = False) -> None:
        """NAME's next version; the services that read it roll to it with their update settings."""
        answer = _call(_client(ctx), "PUT", f"/{kind}s/{name}", body(None, path, template), listing)
        _echo(ctx, as_json, answer, _written(kind, answer))

    @group.command(name="ls")
    @output_options
    @click.pass_context
    def ls(ctx: click.Context, output: str | None, quiet: bool, as_json: bool) -> None:
        """Every one, with version, size, when, and the services that read it."""
        rows = _call(_client(ctx), "GET", f"/{kind}s")
        emit(render(rows, OBJECT_COLUMNS, output_format(ctx, output, as_json), quiet=quiet,
                    ident=lambda o: o["name"]))

    @group.command()
    @click.argument("name")
    @click.pass_context
    def inspect(ctx: click.Context, name: str) -> None:
        """NAME's metadata as JSON (a config's data too, base64)."""
        click.echo(json.dumps(_call(_client(ctx), "GET", f"/{kind}s/{name}", not_found=listing), indent=2))

    @group.command(name="rm")
    @click.argument("names", nargs=-1, required=True)
    @click.pass_context
    def rm(ctx: click.Context, names: tuple[str, ...]) -> None:
        """Delete NAME(s); refused while a service or task reads one."""
        for name in names:
            _call(_client(ctx), "DELETE", f"/{kind}s/{name}", not_found=listing)
            click.echo(f"{kind} {name} deleted")

    return group


secret = _group("secret")
config = _group("config")


@secret.command(epilog=examples("orion secret rotate"))
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def rotate(ctx: click.Context, as_json: bool) -> None:
    """Seal every secret and registry credential again with the primary cluster key (docs/secrets.md)."""
    answer = _call(_client(ctx), "POST", "/secrets/rotate")
    left = ", ".join(f"{n} under key {k}" for k, n in answer["remaining"].items()) or "nothing"
    _echo(ctx, as_json, answer, f"sealed {answer['resealed']} value(s) again with key {answer['key']}; "
                                f"left under other keys: {left}")


@secret.command()
def keygen() -> None:
    """Print a new cluster key line (base64 of 32 random bytes) for a key file."""
    click.echo(new_key())


@click.group()
def registry() -> None:
    """Credentials for private image registries: every node pulls with them (docs/secrets.md)."""


@registry.command(epilog=examples("orion registry login registry.example.com:5000 -u ci --password-stdin < token"))
@click.argument("server")
@click.option("-u", "--username", required=True, help="The registry user.")
@click.option("--password-stdin", is_flag=True, help="Read the password or token from stdin.")
@click.option("--token", "is_token", is_flag=True, help="What is read is a token, not a password.")
@click.pass_context
def login(ctx: click.Context, server: str, username: str, password_stdin: bool, is_token: bool) -> None:
    """Store credentials for SERVER (sealed like a secret); asks for the password unless --password-stdin."""
    credential = sys.stdin.read().rstrip("\r\n") if password_stdin else click.prompt("Password", hide_input=True)
    answer = _call(_client(ctx), "POST", "/registries",
                   {"server": server, "username": username, ("token" if is_token else "password"): credential})
    click.echo(f"credentials for {answer['server']} stored (user {answer['username']}); every node pulls with them")


@registry.command(name="ls")
@output_options
@click.pass_context
def registry_ls(ctx: click.Context, output: str | None, quiet: bool, as_json: bool) -> None:
    """Registries with credentials (never a password)."""
    rows = _call(_client(ctx), "GET", "/registries")
    emit(render(rows, REGISTRY_COLUMNS, output_format(ctx, output, as_json), quiet=quiet, ident=lambda r: r["server"]))


@registry.command(name="rm")
@click.argument("server")
@click.pass_context
def registry_rm(ctx: click.Context, server: str) -> None:
    """Forget SERVER's credentials."""
    _call(_client(ctx), "DELETE", f"/registries/{server}", not_found="`orion registry ls` lists them")
    click.echo(f"credentials for {server} forgotten")
