"""The listings: ``orion ps``, ``orion nodes``, ``orion members``.

Each takes ``-o table|wide|json|yaml`` and ``-q`` (orion/cli/output.py) and
reads the same API answer whatever it prints; ``ps`` and ``nodes`` also
``--watch`` (orion/cli/watch.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from orion.cli.client import ClientError, OrionClient
from orion.cli.columns import MEMBER_COLUMNS, NODE_COLUMNS, TASK_COLUMNS, member_id, member_rows, node_notes
from orion.cli.common import examples, fail, settings_of
from orion.cli.output import emit, output_format, output_options, render
from orion.cli.watch import NODE_WAIT, TASK_WAIT, follow, snapshot_printer
from orion.domain.model import TASK_STATES, TERMINAL_STATES

watch_option = click.option("-w", "--watch", is_flag=True,
                            help="Print again on every change (blocking queries) until Ctrl-C.")


def _watch(ctx: click.Context, client: OrionClient, path: str, wait: float, fmt: str, quiet: bool,
           text_of: Callable[[Any], str], rows: Callable[[Any], Any]) -> None:
    show = snapshot_printer(fmt, quiet, text_of, tty=sys.stdout.isatty())
    try:
        follow(client, path, wait, show, rows)
    except KeyboardInterrupt:  # the way out of a watch: not an error
        ctx.exit(0)


@click.command(epilog=examples("orion ps", "orion ps -a -o wide", "orion ps --state pending",
                               "orion ps -q | xargs -r orion stop", "orion ps -o yaml", "orion ps --watch"))
@click.option("-a", "--all", "show_all", is_flag=True, help="Include stopped, failed and completed tasks.")
@click.option("--state", type=click.Choice(TASK_STATES), help="Only tasks in this state (e.g. pending).")
@watch_option
@output_options
@click.pass_context
def ps(ctx: click.Context, show_all: bool, state: str | None, watch: bool, output: str | None, quiet: bool,
       as_json: bool) -> None:
    """List tasks: running and waiting ones (--all for every task, --state for one state)."""
    fmt = output_format(ctx, output, as_json)
    client = settings_of(ctx).client()

    def live(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return tasks if show_all or state else [t for t in tasks if t.get("state") not in TERMINAL_STATES]

    def text_of(tasks: list[dict[str, Any]]) -> str:
        return render(tasks, TASK_COLUMNS, fmt, quiet=quiet)

    path = "/tasks" + (f"?state={state}" if state else "")
    try:
        if watch:
            _watch(ctx, client, path, TASK_WAIT, fmt, quiet, text_of, live)
        else:
            emit(text_of(live(client.tasks(state))))
    except ClientError as exc:
        raise fail(exc) from None


@click.command(epilog=examples("orion nodes", "orion nodes -o wide", "orion nodes -o json",
                               "orion nodes --watch"))
@watch_option
@output_options
@click.pass_context
def nodes(ctx: click.Context, watch: bool, output: str | None, quiet: bool, as_json: bool) -> None:
    """List registered nodes with capacity, use, gossip state and the Raft leader (*)."""
    fmt = output_format(ctx, output, as_json)
    client = settings_of(ctx).client()

    def text_of(found: list[dict[str, Any]]) -> str:
        return render(found, NODE_COLUMNS, fmt, quiet=quiet, notes=node_notes(found))

    try:
        if watch:
            _watch(ctx, client, "/nodes", NODE_WAIT, fmt, quiet, text_of, lambda found: found)
        else:
            emit(text_of(client.nodes()))
    except ClientError as exc:
        raise fail(exc) from None


@click.command(epilog=examples("orion members", "orion members -o wide", "orion members -q"))
@output_options
@click.pass_context
def members(ctx: click.Context, output: str | None, quiet: bool, as_json: bool) -> None:
    """List the Raft voters (the leader marked) and non-voting replicas, with their nodes."""
    fmt = output_format(ctx, output, as_json)
    client = settings_of(ctx).client()
    try:
        rows = member_rows(client.request("GET", "/cluster/members")[1], client.nodes())
    except ClientError as exc:
        raise fail(exc) from None
    emit(render(rows, MEMBER_COLUMNS, fmt, quiet=quiet, ident=member_id))
