"""``orion stack deploy|ls|ps|rm``: a compose file as a stack of services (docs/stacks.md).

``deploy`` is thin: ``orion/stack/load.py`` reads the file as Compose does
(variables, the Compose Specification's schema) and converts it, the pure
planner (``orion/stack/plan.py``) compares it with what ``GET /stacks/<name>``
says runs, and this module prints the findings and the plan and carries it out:
the stack's secrets and configs through ``/secrets`` and ``/configs`` (the
bytes base64, as ``orion secret create`` sends them; never printed), then the
services through ``/services``. Nothing is sent while the file is wrong, while a key
Orion cannot honour is in it (unless ``--ignore-unsupported``), or while a name
belongs to a service outside the stack. Like ``docker stack deploy`` the
conversion runs in the client; the cluster keeps only the services, each
carrying its stack's name.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import click

from orion.api.schema.problems import Problem, ValidationError
from orion.api.schema.services import parse_service_request, parse_stack
from orion.cli.client import ClientError, OrionClient
from orion.cli.common import OrionError, examples, fail, settings_of
from orion.cli.output import Column, emit, output_format, output_options, render
from orion.cli.service_cmd import plan_text
from orion.domain.service import GLOBAL, ServiceSpec
from orion.stack.findings import Invalid
from orion.stack.load import load
from orion.stack.plan import Action, Existing, ObjectAction, ObjectStep, Plan, Running, Step, plan

_LIST = "`orion stack ls` lists the stacks"

STACK_COLUMNS: tuple[Column, ...] = (
    Column("NAME", lambda s: s["name"]),
    Column("SERVICES", lambda s: len(s["services"])),
    Column("HEALTHY", lambda s: f"{s['healthy']}/{s['count']}"),
    Column("TASKS", lambda s: ", ".join(f"{n} {state}" for state, n in s["tasks"].items()) or "-"),
)
REPLICA_COLUMNS: tuple[Column, ...] = (
    Column("SERVICE", lambda r: r["service"]),
    Column("REPLICA", lambda r: r["id"]),
    Column("VERSION", lambda r: r["version"]),
    Column("STATE", lambda r: r["state"]),
    Column("HEALTH", lambda r: r["health"]),
    Column("NODE", lambda r: r["nodeId"] or "-"),
    Column("CHECK", lambda r: r["healthOutput"], wide_only=True),
)


def _stack_name(value: str) -> str:
    try:
        return parse_stack(value)
    except Problem as exc:
        raise click.BadParameter(exc.message, param_hint="STACK") from None


def _what_runs(spec: ServiceSpec) -> str:
    """What a new service runs, in its mode's words."""
    if spec.mode == GLOBAL:
        return "one replica on every eligible node"
    if spec.job is not None:
        job = spec.job
        timing = f", on schedule '{job.schedule}' ({job.zone or 'UTC'})" if job.schedule else ", once now"
        return f"a job of {job.completions} completion(s), {job.parallelism} at a time{timing}"
    return f"{spec.count} replica(s)"


def step_text(step: Step) -> str:
    """One line of the plan, as ``--dry-run`` prints it."""
    if step.action == Action.CREATE and step.spec is not None:
        return f"{step.name}: create with {_what_runs(step.spec)}"
    if step.action in (Action.UPDATE, Action.UNCHANGED) and step.spec is not None:
        return plan_text(step.name, step.version, step.old, step.spec).replace(": no change", ": unchanged")
    if step.action == Action.REMOVE:
        return f"{step.name}: remove (not in the file)"
    return f"{step.name}: not in the file; kept (--prune removes it)"


def object_text(step: ObjectStep) -> str:
    """One line of the plan for a secret or config (never its value)."""
    obj, version = step.obj, step.version
    head = f"{obj.kind} {obj.name}"
    return {
        ObjectAction.CREATE: f"{head}: create (from {obj.origin})",
        ObjectAction.UPDATE: f"{head}: update to a new version (the content differs from version {version}); "
                             "the services reading it roll to it",
        ObjectAction.UNCHANGED: f"{head}: unchanged (version {version})",
        ObjectAction.PUT: f"{head}: exists (version {version}); a new version only if the value changed (the "
                          "cluster compares it)",
        ObjectAction.USE: f"{head}: external, used as it is (version {version})",
    }[step.action]


def _object_json(step: ObjectStep) -> dict[str, Any]:
    return {"kind": step.obj.kind, "name": step.obj.name, "action": str(step.action), "version": step.version}


def _step_json(step: Step) -> dict[str, Any]:
    return {"service": step.name, "action": str(step.action), "version": step.version,
            "changed": list(step.diff.changed) if step.diff else [],
            "replace": bool(step.diff and step.diff.replace)}


def _existing(client: OrionClient) -> dict[tuple[str, str], Existing]:
    """Every secret and config of the cluster (metadata: the API never answers a secret's value)."""
    try:
        return {(kind, o["name"]): Existing(kind, o["name"], o["version"], o["digest"])
                for kind in ("secret", "config") for o in client.request("GET", f"/{kind}s")[1]}
    except ClientError as exc:
        raise fail(exc) from None


def _put_objects(client: OrionClient, steps: Sequence[ObjectStep]) -> list[str]:
    """Create or update the stack's secrets and configs; what changed, in words."""
    done = []
    for step in (s for s in steps if s.sends):
        obj = step.obj
        data = base64.b64encode(obj.data or b"").decode()
        try:
            if step.action == ObjectAction.CREATE:
                answer = client.request("POST", f"/{obj.kind}s", body={"name": obj.name, "data": data})[1]
            else:
                answer = client.request("PUT", f"/{obj.kind}s/{obj.name}", body={"data": data})[1]
        except ClientError as exc:
            raise OrionError(f"{obj.kind} {obj.name} ({obj.origin}): {fail(exc).message} ({len(done)} secret(s) "
                             "and config(s) written, no service changed; deploy again to finish)") from None
        if answer["changed"]:
            rolled = f"; rolling service(s) {', '.join(answer['rolled'])} to it" if answer.get("rolled") else ""
            done.append(f"{obj.kind} {obj.name}: version {answer['version']}{rolled}")
    return done


def _current(client: OrionClient, stack: str) -> tuple[dict[str, Running], dict[str, str]]:
    """The stack's services (with their specs) and every other service's stack."""
    try:
        rows = client.request("GET", "/services")[1]
        status, found = client.request("GET", f"/stacks/{stack}", accept=(404,))
        mine = {s["name"]: Running(s["name"], s["version"], parse_service_request(s["name"], s["spec"]))
                for s in (found["details"] if status == 200 else ())}
    except ClientError as exc:
        raise fail(exc) from None
    except ValidationError as exc:  # a spec this client cannot read: an older client than the cluster
        raise OrionError(f"cannot read a service of stack {stack}: {exc}; use a client of the cluster's "
                         "version") from None
    return mine, {s["name"]: s.get("stack") or "" for s in rows if s["name"] not in mine}


def _carry_out(client: OrionClient, the_plan: Plan, bodies: dict[str, dict[str, Any]]) -> list[str]:
    done = []
    for step in the_plan.order():
        try:
            if step.action == Action.REMOVE:
                answer = client.request("DELETE", f"/services/{step.name}")[1]
                done.append(f"{step.name}: removed; stopping {len(answer['stopping'])} replica(s)")
                continue
            body = bodies[step.name]
            if step.action == Action.CREATE:
                answer = client.request("POST", "/services", body=body)[1]
            else:
                answer = client.request("PUT", f"/services/{step.name}",
                                        body={k: v for k, v in body.items() if k != "name"})[1]
        except ClientError as exc:
            raise OrionError(f"{step.name}: {fail(exc).message} ({len(done)} of {len(the_plan.order())} steps "
                             "done; deploy again to finish)") from None
        dep = answer["deployment"]
        done.append(f"{step.name}: version {answer['version']}, deployment {dep['id']} {dep['state']}")
    return done


def _refuse_invalid(path: str, invalid: Sequence[Invalid]) -> None:
    raise OrionError(f"{path} cannot be deployed; nothing was changed:\n" + "\n".join(f"  {i}" for i in invalid))


@click.group(epilog=examples("orion stack deploy -f docker-compose.yml app", "orion stack ps app",
                             "orion stack rm app"))
def stack() -> None:
    """Deploy compose files as stacks of services (docs/stacks.md)."""


@stack.command(epilog=examples("orion stack deploy -f docker-compose.yml app --dry-run",
                               "orion stack deploy -f docker-compose.yml app --prune",
                               "orion stack deploy -f compose.yml --ignore-unsupported --default-memory 256M"))
@click.option("-f", "--file", "path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The compose file (its .env beside it gives variables; the environment wins).")
@click.argument("stack_name", metavar="[STACK]", required=False)
@click.option("--prune", is_flag=True, help="Remove the stack's services that the file no longer has.")
@click.option("--dry-run", is_flag=True, help="Print the plan per service; change nothing.")
@click.option("--ignore-unsupported", is_flag=True,
              help="Deploy without the keys Orion cannot honour (listed first) instead of refusing.")
@click.option("--default-memory", metavar="SIZE",
              help="Memory for services whose file sets none (Orion reserves and limits memory), e.g. 256M.")
@click.option("--profile", "profiles", multiple=True, help="Deploy the services of this Compose profile too.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan (and what was done) as JSON.")
@click.pass_context
def deploy(ctx: click.Context, path: str, stack_name: str | None, prune: bool, dry_run: bool,
           ignore_unsupported: bool, default_memory: str | None, profiles: tuple[str, ...], as_json: bool) -> None:
    """Create or update the services of compose FILE as stack STACK (default: the file's name).

    The file is checked against the Compose Specification's JSON schema (the
    compose-spec project's, as the check-jsonschema package ships it); every key
    Orion cannot honour is named before anything changes.
    """
    settings = settings_of(ctx, as_json)
    compose = load(path)
    stack_name = _stack_name(stack_name or compose.name or "")
    if compose.findings.invalid:
        _refuse_invalid(path, compose.findings.invalid)
    if not stack_name:
        raise click.UsageError("name the stack: orion stack deploy -f FILE STACK (or give the file a top-level name)")
    conversion = compose.convert(stack_name, default_memory, frozenset(profiles))
    if conversion.invalid:
        _refuse_invalid(path, conversion.invalid)
    unsupported = [str(u) for u in conversion.unsupported]
    if unsupported and not settings.as_json:
        click.echo("Orion cannot honour:\n" + "\n".join(f"  {u}" for u in unsupported), err=True)
    if unsupported and not ignore_unsupported:
        raise OrionError(f"{len(unsupported)} key(s) of {path} Orion cannot honour (listed above); nothing "
                         "was changed. Remove them, or pass --ignore-unsupported to deploy without them")
    client = settings.client()
    current, others = _current(client, stack_name)
    the_plan = plan(stack_name, conversion.specs, current, others, prune, conversion.objects,
                    _existing(client) if conversion.objects else {})
    if the_plan.missing:
        _refuse_invalid(path, [Invalid(m.obj.origin, m.message) for m in the_plan.missing])
    if the_plan.conflicts:
        raise OrionError("; ".join(str(c) for c in the_plan.conflicts) + "; nothing was changed")
    if not settings.as_json:
        for note in conversion.notes:
            click.echo(f"note: {note}", err=True)
        lines = [*(object_text(o) for o in the_plan.objects), *(step_text(s) for s in the_plan.steps)]
        click.echo("\n".join(lines) or f"stack {stack_name}: no services")
    done = [] if dry_run else [*_put_objects(client, the_plan.objects),
                               *_carry_out(client, the_plan, conversion.bodies)]
    if settings.as_json:
        click.echo(json.dumps({"stack": stack_name, "dryRun": dry_run, "steps": [_step_json(s) for s in the_plan.steps],
                               "objects": [_object_json(o) for o in the_plan.objects],
                               "unsupported": unsupported, "notes": list(conversion.notes), "done": done}, indent=2))
    elif done:
        click.echo("\n".join(done))
    elif not dry_run:
        click.echo(f"stack {stack_name}: no change")


@stack.command(name="ls", epilog=examples("orion stack ls", "orion stack ls -q"))
@output_options
@click.pass_context
def list_stacks(ctx: click.Context, output: str | None, quiet: bool, as_json: bool) -> None:
    """List stacks: their services and replicas healthy of wanted."""
    fmt = output_format(ctx, output, as_json)
    try:
        found = settings_of(ctx).client().request("GET", "/stacks")[1]
    except ClientError as exc:
        raise fail(exc) from None
    emit(render(found, STACK_COLUMNS, fmt, quiet=quiet, ident=lambda s: s["name"]))


@stack.command(epilog=examples("orion stack ps app", "orion stack ps app -o wide"))
@click.argument("name")
@output_options
@click.pass_context
def ps(ctx: click.Context, name: str, output: str | None, quiet: bool, as_json: bool) -> None:
    """The replicas of a stack's services: version, state, health, node."""
    fmt = output_format(ctx, output, as_json)
    try:
        found = settings_of(ctx).client().request("GET", f"/stacks/{name}")[1]
    except ClientError as exc:
        raise fail(exc, _LIST) from None
    rows = [{"service": s["name"], **r} for s in found["details"] for r in s.get("replicas", ())]
    emit(render(rows, REPLICA_COLUMNS, fmt, quiet=quiet, ident=lambda r: r["id"]))


@stack.command(name="rm", epilog=examples("orion stack rm app"))
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def remove(ctx: click.Context, name: str, as_json: bool) -> None:
    """Delete every service of a stack: their replicas stop."""
    settings = settings_of(ctx, as_json)
    try:
        _, answer = settings.client().request("DELETE", f"/stacks/{name}")
    except ClientError as exc:
        raise fail(exc, _LIST) from None
    click.echo(json.dumps(answer, indent=2) if settings.as_json else
               f"stack {name}: deleted {', '.join(answer['deleted'])}; stopping {len(answer['stopping'])} replica(s)")
