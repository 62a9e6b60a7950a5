"""``orion``: the command line. Client commands talk HTTP to any node's API.

Exit codes (docs/cli.md): 0 done, 1 the cluster refused or could not be reached
(the message says why and what to do), 2 the command line itself is wrong
(click's usage errors). No command ever prints a traceback for an expected failure.
The group and the task commands live here; the listings in ``listing_cmd``,
``version``/``completion`` in ``meta_cmd``, the agent in ``agent_cmd``.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from typing import Any

import click

from orion.cli import render
from orion.cli.agent_cmd import agent
from orion.cli.client import ClientError
from orion.cli.common import (
    GLOBAL_OPTIONS,
    OrionError,
    Settings,
    accept_global_options,
    examples,
    fail,
    offline,
    output_of,
    settings_of,
)
from orion.cli.output import dump
from orion.domain.model import MAX_SCALE, PULL_POLICIES, RESTART_POLICIES


def _emit(settings: Settings, data: Any, human: Callable[[], str]) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False) if settings.as_json else human())


json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")


_EPILOG = examples("orion run orion/busybox:latest -m 64M -p 8080:80 -- httpd -f -p 80",
                   "orion ps -o wide; orion nodes --watch",
                   "orion --addr https://10.0.0.5:8000 --ca-cert ca.pem status") + """

\b
Exit codes: 0 done; 1 the cluster refused or could not be reached (the message
says what to do); 2 the command line is wrong (or, for `orion agent`, a setting
that cannot work). Shell completion: orion completion bash|zsh|fish."""


class LazyGroup(click.Group):
    """Commands kept in their own modules are imported only when asked for (click's lazy
    group pattern): ``orion agent`` starts without loading the client's tables, ``rich``
    for ``orion top`` and the rest (issue #14: its imports are most of an agent's start)."""

    # Command name -> "module:attribute".
    LAZY = {"ps": "orion.cli.listing_cmd:ps", "nodes": "orion.cli.listing_cmd:nodes",
            "members": "orion.cli.listing_cmd:members", "logs": "orion.cli.logs_cmd:logs",
            "scale": "orion.cli.ops_cmd:scale", "node": "orion.cli.ops_cmd:node", "top": "orion.cli.top:top",
            "version": "orion.cli.meta_cmd:version", "completion": "orion.cli.meta_cmd:completion",
            "service": "orion.cli.service_cmd:service",  # orion service ...: docs/services.md
            "network": "orion.cli.network_cmd:network",  # docs/network-leases.md
            "stack": "orion.cli.stack_cmd:stack",  # orion stack ...: docs/stacks.md
            "operator": "orion.cli.operator_cmd:operator",  # snapshots, raft recover: docs/operations.md
            "exec": "orion.cli.exec_cmd:exec_", "token": "orion.cli.token_cmd:token",
            # docs/secrets.md
            "secret": "orion.cli.secret_cmd:secret", "config": "orion.cli.secret_cmd:config",
            "registry": "orion.cli.secret_cmd:registry"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY and cmd_name not in self.commands:
            module, attribute = self.LAZY[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        command = super().get_command(ctx, cmd_name)
        # The global options after the command too (common.py): added as it is looked up, so a
        # lazy command's module is still imported only when asked for.
        return accept_global_options(command) if command is not None else None


def _global_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(GLOBAL_OPTIONS):
        fn = option.for_group()(fn)
    return fn


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG)
@click.version_option(None, "--version", package_name="orion", prog_name="orion", message="%(prog)s %(version)s",
                      help="Print the client's version (orion version: the server's too).")
@_global_options
@click.pass_context
def main(ctx: click.Context, **options: Any) -> None:
    """Orion: run containers on a cluster with replicated desired state.

    The options below may also follow the command (`orion ps --addr URL`)."""
    ctx.obj = Settings(**options)


main.add_command(offline(agent))  # its own flags, derived from the settings' declarations
main.add_command(agent)


# What a 404 on a task id should say next.
_LIST_TASKS = "`orion ps -a` lists the task ids"


# -- option parsing (usage errors, exit 2) --------------------------------------------------------
def parse_publish(values: tuple[str, ...]) -> dict[str, str]:
    """``-p 8080:80``, ``-p 80`` (dynamic host port), ``-p 53:53/udp`` -> portBindings."""
    bindings: dict[str, str] = {}
    for value in values:
        spec, _, proto = value.partition("/")
        proto = proto or "tcp"
        parts = spec.split(":")
        if len(parts) > 2:
            raise click.BadParameter(f"{value!r}: binding a host IP is not supported; use HOST_PORT:PORT",
                                     param_hint="-p")
        host, container = (parts if len(parts) == 2 else ["", parts[0]])
        if not container.isdigit() or (host and not host.isdigit()):
            raise click.BadParameter(f"{value!r}: write [HOST_PORT:]CONTAINER_PORT[/tcp|udp], e.g. 8080:80",
                                     param_hint="-p")
        key = f"{container}/{proto}"
        if key in bindings:
            raise click.BadParameter(f"{key} is published twice", param_hint="-p")
        bindings[key] = host
    return bindings


def parse_pairs(values: tuple[str, ...], hint: str, from_env: bool = False) -> dict[str, str]:
    """``KEY=VALUE`` pairs; with ``from_env`` a bare ``KEY`` takes this shell's value, as docker does."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            if from_env and key in os.environ:
                val = os.environ[key]
            else:
                raise click.BadParameter(f"{value!r}: write KEY=VALUE", param_hint=hint)
        if not key:
            raise click.BadParameter(f"{value!r}: the key is empty", param_hint=hint)
        pairs[key] = val
    return pairs


def _number_or_text(value: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


# -- commands -------------------------------------------------------------------------------------
@main.command(context_settings={"allow_interspersed_args": True},
              epilog=examples("orion run nginx -m 128M -p 8080:80",
                              "orion run orion/busybox:latest -m 16M --restart on-failure -- sleep 3600",
                              "orion run redis -m 256M --count 3 --selector zone=a"))
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--name", help="A name for the task.")
@click.option("-m", "--memory", required=True, help="Memory limit: bytes or 100M, 1G, 512Mi (at least 6M).")
@click.option("--cpu", help="CPU cores, e.g. 0.5.")
@click.option("-p", "--publish", multiple=True, help="[HOST_PORT:]PORT[/udp]; no HOST_PORT = any free port.")
@click.option("-e", "--env", multiple=True, help="KEY=VALUE (or KEY to pass this shell's value).")
@click.option("--selector", multiple=True, help="Only on nodes labelled KEY=VALUE (repeatable).")
@click.option("--restart", type=click.Choice(RESTART_POLICIES), help="Restart policy (default never).")
@click.option("--pull", type=click.Choice(PULL_POLICIES), help="Image pull policy (default if-not-present).")
@click.option("--count", type=click.IntRange(1, MAX_SCALE), default=1, show_default=True, help="Replicas.")
@click.option("--idempotency-key", help="Retrying with the same key never creates a second task.")
@json_option
@click.pass_context
def run(ctx: click.Context, image: str, command: tuple[str, ...], name: str | None, memory: str,
        cpu: str | None, publish: tuple[str, ...], env: tuple[str, ...], selector: tuple[str, ...],
        restart: str | None, pull: str | None, count: int, idempotency_key: str | None,
        as_json: bool) -> None:
    """Run IMAGE on the cluster; arguments after `--` are its command.

    Prints the task id (several with --count) on stdout, where it went on stderr.
    """
    settings = settings_of(ctx, as_json)
    body: dict[str, Any] = {"image": image, "memory": _number_or_text(memory)}
    if cpu is not None:
        body["cpu"] = _number_or_text(cpu)
    if name:
        body["name"] = name
    if command:
        body["command"] = list(command)
    if env:
        body["env"] = parse_pairs(env, "-e", from_env=True)
    if publish:
        body["portBindings"] = parse_publish(publish)
    if selector:
        body["nodeSelectors"] = parse_pairs(selector, "--selector")
    if restart:
        body["restartPolicy"] = restart
    if pull:
        body["pullPolicy"] = pull
    if count != 1:
        body["count"] = count
    try:
        answer = settings.client().run(body, idempotency_key)
    except ClientError as exc:
        raise fail(exc) from None
    if settings.as_json:
        _emit(settings, answer, str)
        return
    for task in answer if isinstance(answer, list) else [answer]:
        click.echo(task["id"])
        click.echo(render.task_summary(task), err=True)


@main.command(epilog=examples("orion inspect 3f2a9c1b7d4e", "orion inspect 3f2a9c1b7d4e -o yaml"))
@click.argument("task_id")
@click.option("-o", "--output", type=click.Choice(("json", "yaml")), default=None,
              help="Print the task as JSON (the default) or YAML.")
@click.pass_context
def inspect(ctx: click.Context, task_id: str, output: str | None) -> None:
    """Show everything about one task: spec, state, node, container, reason."""
    fmt = output_of(ctx, output) or "json"
    try:
        task = settings_of(ctx, False).client().task(task_id)
    except ClientError as exc:
        raise fail(exc, _LIST_TASKS) from None
    click.echo(dump(task, fmt))


@main.command(epilog=examples("orion stop 3f2a9c1b7d4e", "orion ps -q --state pending | xargs -r orion stop"))
@click.argument("task_ids", nargs=-1, required=True)
@json_option
@click.pass_context
def stop(ctx: click.Context, task_ids: tuple[str, ...], as_json: bool) -> None:
    """Stop tasks; their nodes stop the containers. Prints each id once asked."""
    settings = settings_of(ctx, as_json)
    client = settings.client()
    answers, failures = [], []
    for task_id in task_ids:
        try:
            answers.append(client.stop(task_id))
        except ClientError as exc:
            failures.append(fail(exc, _LIST_TASKS).message)
    if settings.as_json:
        _emit(settings, answers[0] if len(task_ids) == 1 and answers else answers, str)
    else:
        for task in answers:
            click.echo(task["id"])
            click.echo(render.task_summary(task), err=True)
    if failures:
        raise OrionError("; ".join(failures))


@main.command(epilog=examples("orion status", "orion --addr http://10.0.0.6:8000 status --json"))
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Cluster health: leader, this node's Raft view, nodes and tasks. Exit 1 without a leader."""
    settings = settings_of(ctx, as_json)
    client = settings.client()
    try:
        healthy, health = client.health()
        raft = client.raft()
        # This node's view, as /raft is: status must still say what it knows when no leader is
        # reachable (a linearizable read would be a 503 then).
        found = client.nodes(stale=True)
        counts = render.count_states(client.tasks(stale=True))
    except ClientError as exc:
        raise fail(exc) from None
    data = {"healthy": healthy, "health": health, "raft": raft, "nodes": found, "tasks": counts}
    _emit(settings, data, lambda: render.status_text(healthy, health, raft, found, counts))
    if not healthy:
        ctx.exit(1)
