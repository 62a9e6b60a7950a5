"""``orion service apply|ls|status|history|rollback|rm``: services from the command line.

``apply -f web.json`` (or ``web.toml``: the same fields, camelCase, as TOML)
creates the service or declares the file's spec as its next version, and says
first what that does: the fields that change and how many replicas are
replaced, added or stopped (``orion.service.spec_diff`` on the file and the spec
the cluster runs). The file is validated here with the API's own parser, so a
mistake is named (``update.maxParallel: ...``) before anything is sent, and
applying an unchanged file changes nothing (``terraform apply``-like).

Registered by ``orion/cli/main.py``; uses the group's settings (``--addr``,
``--token``, ``--json``) like every client command.
"""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import Any

import click

from orion.api.service_validation import parse_service_request
from orion.api.validation import ValidationError
from orion.cli.client import DEFAULT_ADDR, DEFAULT_TIMEOUT, ClientError, OrionClient
from orion.cli.render import table
from orion.control.deployment import effective_order
from orion.service import ServiceSpec, spec_diff


def _client(ctx: click.Context) -> tuple[OrionClient, bool]:
    settings: Any = ctx.obj
    if settings is None:
        return OrionClient(DEFAULT_ADDR, None, DEFAULT_TIMEOUT), False
    return settings.client(), bool(settings.as_json)


def _fail(exc: ClientError | ValidationError | str) -> click.ClickException:
    if isinstance(exc, ClientError):
        exc = exc.message + (f" (field: {exc.field})" if exc.field and not exc.message.startswith(exc.field) else "")
    error = click.ClickException(str(exc))
    error.exit_code = 1
    return error


def load_file(path: str) -> dict[str, Any]:
    """A spec file: TOML by its suffix, else JSON."""
    text = Path(path).read_text()
    try:
        body = tomllib.loads(text) if path.endswith(".toml") else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise _fail(f"{path} is not valid {'TOML' if path.endswith('.toml') else 'JSON'}: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise _fail(f"{path} must hold one service: an object with its name, image, memory, ...")
    return body


def plan_text(name: str, version: int | None, old: ServiceSpec | None, new: ServiceSpec) -> str:
    """What applying ``new`` does to the service running ``old`` (at ``version``), in one sentence."""
    if old is None:
        return f"{name}: create version 1 with {new.count} replica(s)"
    diff = spec_diff(old, new)
    if diff.unchanged:
        return f"{name}: no change (version {version})"
    parts = [f"{name}: version {version} -> {(version or 0) + 1}: {', '.join(diff.changed)} changed"]
    kept = min(old.count, new.count)
    if diff.replace:
        order = effective_order(new.update, bool(new.static_host_ports))
        parts.append(f"{kept} of {old.count} replica(s) replaced, {new.update.max_parallel} at a time ({order})")
    else:
        parts.append("no replica replaced" + ("" if diff.scale else " (changed in place)"))
    if new.count > old.count:
        parts.append(f"{new.count - old.count} added")
    elif new.count < old.count:
        parts.append(f"{old.count - new.count} stopped")
    return "; ".join(parts)


@click.group()
def service() -> None:
    """Declare, update, inspect and roll back services (docs/services.md)."""


def _get(client: OrionClient, path: str) -> Any:
    try:
        return client.request("GET", path)[1]
    except ClientError as exc:
        raise _fail(exc) from None


def _echo(as_json: bool, data: Any, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text)


def _deployment(d: dict[str, Any]) -> str:
    return f"{d['id']} to version {d['version']} {d['state']}" + (f": {d['reason']}" if d.get("reason") else "")


@service.command()
@click.option("-f", "--file", "path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The service: JSON, or TOML (.toml), with the fields of PUT /services/<name>.")
@click.option("--dry-run", is_flag=True, help="Print what would change; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def apply(ctx: click.Context, path: str, dry_run: bool, as_json: bool) -> None:
    """Create the service in FILE, or roll its spec out as the next version."""
    client, json_default = _client(ctx)
    body = load_file(path)
    name = body["name"]
    try:
        new = parse_service_request(name, body)
    except ValidationError as exc:
        raise _fail(f"{path}: {exc}") from None
    try:
        status, current = client.request("GET", f"/services/{name}", accept=(404,))
        old = parse_service_request(name, current["spec"]) if status == 200 else None
    except (ClientError, ValidationError) as exc:
        raise _fail(exc) from None
    click.echo(plan_text(name, current.get("version") if old else None, old, new), err=as_json or json_default)
    if dry_run:
        return
    try:
        if old is None:
            _, answer = client.request("POST", "/services", body=body)
        else:
            _, answer = client.request("PUT", f"/services/{name}", body={k: v for k, v in body.items() if k != "name"})
    except ClientError as exc:
        raise _fail(exc) from None
    lines = [f"note: {n}" for n in answer.get("notes", ())]
    lines.append(f"{name} version {answer['version']}: deployment {_deployment(answer['deployment'])}"
                 if answer.get("changed") else f"{name} version {answer['version']} unchanged")
    _echo(as_json or json_default, answer, "\n".join(lines))


@service.command(name="ls")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def list_services(ctx: click.Context, as_json: bool) -> None:
    """List services: version, replicas healthy of wanted, deployment."""
    client, json_default = _client(ctx)
    found = _get(client, "/services")
    rows = [(s["name"], s["version"], s["image"], f"{s['healthy']}/{s['count']}",
             f"{s['deployment']['id']} {s['deployment']['state']}") for s in found]
    _echo(as_json or json_default, found, table(("NAME", "VERSION", "IMAGE", "HEALTHY", "DEPLOYMENT"), rows))


@service.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def status(ctx: click.Context, name: str, as_json: bool) -> None:
    """One service: its deployment, its slots' progress and its replicas with their health."""
    client, json_default = _client(ctx)
    s = _get(client, f"/services/{name}")
    dep = s["deployment"]
    phases = ", ".join(f"{p['slot']}:{p['phase']}" for p in dep.get("progress", ()))
    head = [f"service {s['name']}: version {s['version']} ({s['image']}), {s['healthy']}/{s['count']} healthy",
            f"deployment {_deployment(dep)}" + (f" [{phases}]" if phases else "")]
    rows = [(r["slot"], r["id"], r["version"], r["state"], r["health"], r["nodeId"] or "-", r["healthOutput"])
            for r in s.get("replicas", ())]
    text = "\n".join(head) + "\n" + table(("SLOT", "REPLICA", "VERSION", "STATE", "HEALTH", "NODE", "CHECK"), rows)
    _echo(as_json or json_default, s, text)


@service.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def history(ctx: click.Context, name: str, as_json: bool) -> None:
    """The versions kept of a service, oldest first, with how each rollout ended."""
    client, json_default = _client(ctx)
    versions = _get(client, f"/services/{name}/versions")
    rows = [(v["version"], time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v["at"])), v["image"],
             f"v{v['copyOf']}" if v.get("copyOf") else "", v["deployment"]["state"], v["deployment"]["reason"])
            for v in versions]
    _echo(as_json or json_default, versions,
          table(("VERSION", "DECLARED", "IMAGE", "COPY OF", "DEPLOYMENT", "REASON"), rows))


@service.command()
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), help="The version to go back to (default: the newest "
              "earlier one that rolled out healthy).")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def rollback(ctx: click.Context, name: str, version: int | None, as_json: bool) -> None:
    """Declare an earlier version's spec again, as the next version."""
    client, json_default = _client(ctx)
    query = f"?version={version}" if version else ""
    try:
        _, answer = client.request("POST", f"/services/{name}/rollback{query}")
    except ClientError as exc:
        raise _fail(exc) from None
    _echo(as_json or json_default, answer,
          f"{name} version {answer['version']}: deployment {_deployment(answer['deployment'])}")


@service.command(name="rm")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def remove(ctx: click.Context, name: str, as_json: bool) -> None:
    """Delete a service: its replicas stop."""
    client, json_default = _client(ctx)
    try:
        _, answer = client.request("DELETE", f"/services/{name}")
    except ClientError as exc:
        raise _fail(exc) from None
    _echo(as_json or json_default, answer, f"{name} deleted; stopping {len(answer['stopping'])} replica(s)")
