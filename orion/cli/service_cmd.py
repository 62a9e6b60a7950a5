"""``orion service apply|ls|status|history|rollback|rm``: services from the command line.

``apply -f web.json`` (or ``web.toml``: the same fields, camelCase, as TOML)
creates the service or declares the file's spec as its next version, and says
first what that does: the fields that change and how many replicas are
replaced, added or stopped (``orion.domain.spec_diff.spec_diff`` on the file and the spec
the cluster runs). The file is validated here with the API's own parser, so a
mistake is named (``update.maxParallel: ...``) before anything is sent, and
applying an unchanged file changes nothing (``terraform apply``-like).

Registered by ``orion/cli/main.py``; uses the group's settings (``--addr``,
``--token``, ``--json``) like every client command; ``ls`` and ``history`` are
listings (``-o table|wide|json|yaml``, ``-q``: orion/cli/output.py).
"""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import Any

import click

from orion.api.schema.problems import ValidationError
from orion.api.schema.services import parse_service_request
from orion.cli.client import ClientError, OrionClient
from orion.cli.columns import published_text
from orion.cli.common import OrionError, examples, fail, settings_of
from orion.cli.output import Column, emit, output_format, output_options, render
from orion.cli.render import cut, table
from orion.control.deployment import effective_order
from orion.domain.service import ServiceSpec
from orion.domain.spec_diff import spec_diff

# What a 404 on a service name should say next.
_LIST = "`orion service ls` lists the services"


def _fail(exc: ClientError | ValidationError | str) -> OrionError:
    return fail(exc, _LIST) if isinstance(exc, ClientError) else OrionError(str(exc))


def _settings(ctx: click.Context, as_json: bool) -> tuple[OrionClient, bool]:
    settings = settings_of(ctx, as_json)
    return settings.client(), settings.as_json


def _deployment(d: dict[str, Any]) -> str:
    return f"{d['id']} to version {d['version']} {d['state']}" + (f": {d['reason']}" if d.get("reason") else "")


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


def _runs(s: dict[str, Any]) -> str:
    """A job's last run, or a service's deployment."""
    job = s.get("job")
    if job is None:
        return f"{s['deployment']['id']} {s['deployment']['state']}"
    last = job.get("lastRun")
    return f"run {last['run']} {last['state']} ({last['succeeded']}/{job['completions']})" if last else "no run yet"


SERVICE_COLUMNS: tuple[Column, ...] = (
    Column("NAME", lambda s: s["name"]),
    Column("MODE", lambda s: s.get("mode", "replicated")),
    Column("VERSION", lambda s: s["version"]),
    Column("IMAGE", lambda s: s["image"]),
    Column("HEALTHY", lambda s: f"{s['healthy']}/{s['count']}" if s.get("mode") != "job" else "-"),
    Column("DEPLOYMENT", _runs),
    Column("NEXT RUN", lambda s: _when((s.get("job") or {}).get("nextRun"))),
    # How it is reached: its VIP (dnsrr: none, names answer the replicas) and ports on every host.
    Column("VIP", lambda s: s.get("vip") or ("dnsrr" if s.get("endpointMode") == "dnsrr" else "-")),
    Column("PUBLISHED", lambda s: published_text(s.get("publish"))),
    Column("STABLE", lambda s: s.get("stableVersion") or "-", wide_only=True),
    Column("REASON", lambda s: cut(s["deployment"]["reason"]), wide_only=True),
)
RUN_COLUMNS: tuple[Column, ...] = (
    Column("RUN", lambda r: r["run"]),
    Column("VERSION", lambda r: r["version"]),
    Column("STATE", lambda r: r["state"]),
    Column("SLOT", lambda r: _when(r.get("slot"))),
    Column("STARTED", lambda r: _when(r["startedAt"])),
    Column("FINISHED", lambda r: _when(r.get("finishedAt"))),
    Column("SUCCEEDED", lambda r: r["succeeded"]),
    Column("FAILED", lambda r: r["failed"]),
    Column("REASON", lambda r: cut(r["reason"]), wide_cell=lambda r: r["reason"]),
)
VERSION_COLUMNS: tuple[Column, ...] = (
    Column("VERSION", lambda v: v["version"]),
    Column("DECLARED", lambda v: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v["at"]))),
    Column("IMAGE", lambda v: v["image"]),
    Column("COPY OF", lambda v: f"v{v['copyOf']}" if v.get("copyOf") else ""),
    Column("DEPLOYMENT", lambda v: v["deployment"]["state"]),
    Column("REASON", lambda v: cut(v["deployment"]["reason"]), wide_cell=lambda v: v["deployment"]["reason"]),
)


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


@click.group(epilog=examples("orion service apply -f web.toml", "orion service status web",
                             "orion service rollback web"))
def service() -> None:
    """Declare, update, inspect and roll back services (docs/services.md)."""


def _get(client: OrionClient, path: str) -> Any:
    try:
        return client.request("GET", path)[1]
    except ClientError as exc:
        raise _fail(exc) from None


def _echo(as_json: bool, data: Any, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text)


@service.command(epilog=examples("orion service apply -f web.json", "orion service apply -f web.toml --dry-run"))
@click.option("-f", "--file", "path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The service: JSON, or TOML (.toml), with the fields of PUT /services/<name>.")
@click.option("--dry-run", is_flag=True, help="Print what would change; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def apply(ctx: click.Context, path: str, dry_run: bool, as_json: bool) -> None:
    """Create the service in FILE, or roll its spec out as the next version."""
    client, json_default = _settings(ctx, as_json)
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
    click.echo(plan_text(name, current.get("version") if old else None, old, new), err=json_default)
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
    _echo(json_default, answer, "\n".join(lines))


@service.command(name="ls", epilog=examples("orion service ls", "orion service ls -o wide", "orion service ls -q"))
@output_options
@click.pass_context
def list_services(ctx: click.Context, output: str | None, quiet: bool, as_json: bool) -> None:
    """List services: version, replicas healthy of wanted, deployment."""
    fmt = output_format(ctx, output, as_json)
    found = _get(settings_of(ctx).client(), "/services")
    emit(render(found, SERVICE_COLUMNS, fmt, quiet=quiet, ident=lambda s: s["name"]))


@service.command(epilog=examples("orion service status web", "orion service status web --json"))
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def status(ctx: click.Context, name: str, as_json: bool) -> None:
    """One service: its deployment, its slots' progress and its replicas with their health."""
    client, json_default = _settings(ctx, as_json)
    s = _get(client, f"/services/{name}")
    dep = s["deployment"]
    phases = ", ".join(f"{p['slot']}:{p['phase']}" for p in dep.get("progress", ()))
    reached = f"vip {s['vip']}" if s.get("vip") else f"endpoint mode {s.get('endpointMode', '-')}"
    head = [f"service {s['name']}: version {s['version']} ({s['image']}), {s['healthy']}/{s['count']} healthy",
            f"deployment {_deployment(dep)}" + (f" [{phases}]" if phases else ""),
            f"reached: {reached}; published {published_text(s.get('publish'))}"]
    rows = [(r["slot"], r["id"], r["version"], r["state"], r["health"], r["nodeId"] or "-", r.get("ip") or "-",
             r["healthOutput"]) for r in s.get("replicas", ())]
    text = "\n".join(head) + "\n" + table(("SLOT", "REPLICA", "VERSION", "STATE", "HEALTH", "NODE", "IP", "CHECK"),
                                           rows)
    _echo(json_default, s, text)


@service.command(epilog=examples("orion service history web", "orion service history web -o wide"))
@click.argument("name")
@output_options
@click.pass_context
def history(ctx: click.Context, name: str, output: str | None, quiet: bool, as_json: bool) -> None:
    """The versions kept of a service, oldest first, with how each rollout ended."""
    fmt = output_format(ctx, output, as_json)
    versions = _get(settings_of(ctx).client(), f"/services/{name}/versions")
    emit(render(versions, VERSION_COLUMNS, fmt, quiet=quiet, ident=lambda v: v["version"]))


@service.command(epilog=examples("orion service rollback web", "orion service rollback web --version 3"))
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), help="The version to go back to (default: the newest "
              "earlier one that rolled out healthy).")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def rollback(ctx: click.Context, name: str, version: int | None, as_json: bool) -> None:
    """Declare an earlier version's spec again, as the next version."""
    client, json_default = _settings(ctx, as_json)
    query = f"?version={version}" if version else ""
    try:
        _, answer = client.request("POST", f"/services/{name}/rollback{query}")
    except ClientError as exc:
        raise _fail(exc) from None
    _echo(json_default, answer,
          f"{name} version {answer['version']}: deployment {_deployment(answer['deployment'])}")


@service.command(epilog=examples("orion service redeploy web", "orion service redeploy nightly-backup"))
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def redeploy(ctx: click.Context, name: str, as_json: bool) -> None:
    """Replace every replica with the update rules, same spec (Swarm's --force); a job runs again."""
    client, json_default = _settings(ctx, as_json)
    try:
        _, answer = client.request("POST", f"/services/{name}/redeploy")
    except ClientError as exc:
        raise _fail(exc) from None
    last = (answer.get("job") or {}).get("lastRun")
    text = (f"{name}: run {last['run']} {last['state']}" if last else
            f"{name} version {answer['version']}: deployment {_deployment(answer['deployment'])}")
    _echo(json_default, answer, text)


@service.command(epilog=examples("orion service rebalance web"))
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def rebalance(ctx: click.Context, name: str, as_json: bool) -> None:
    """Move replicas onto nodes that have fewer (a node that joined or returned), with the update rules."""
    client, json_default = _settings(ctx, as_json)
    try:
        _, answer = client.request("POST", f"/services/{name}/rebalance")
    except ClientError as exc:
        raise _fail(exc) from None
    text = answer["sentence"] if not answer["moves"] else \
        f"{answer['sentence']}\n{name} version {answer['version']}: deployment {_deployment(answer['deployment'])}"
    _echo(json_default, answer, text)


@service.command(epilog=examples("orion service runs nightly-backup", "orion service runs migrate -o json"))
@click.argument("name")
@output_options
@click.pass_context
def runs(ctx: click.Context, name: str, output: str | None, quiet: bool, as_json: bool) -> None:
    """A job's runs, oldest first: state, cron slot, attempts succeeded and failed."""
    fmt = output_format(ctx, output, as_json)
    found = _get(settings_of(ctx).client(), f"/services/{name}/runs")
    emit(render(found, RUN_COLUMNS, fmt, quiet=quiet, ident=lambda r: r["run"]))


@service.command(name="rm", epilog=examples("orion service rm web"))
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def remove(ctx: click.Context, name: str, as_json: bool) -> None:
    """Delete a service: its replicas stop."""
    client, json_default = _settings(ctx, as_json)
    try:
        _, answer = client.request("DELETE", f"/services/{name}")
    except ClientError as exc:
        raise _fail(exc) from None
    _echo(json_default, answer, f"{name} deleted; stopping {len(answer['stopping'])} replica(s)")
