"""``orion scale TASK N`` and ``orion node drain NODE``: cluster operations.

Kept apart from ``orion/cli/main.py`` (which only registers them). They use the
group's settings object (``--addr``, ``--token``, ``--json``, ``--timeout``)
through the click context, so they behave like every other client command:
exit 1 with a readable message when the cluster refuses or cannot be reached.
"""

from __future__ import annotations

import json
from typing import Any

import click

from orion.cli.client import DEFAULT_ADDR, DEFAULT_TIMEOUT, ClientError, OrionClient
from orion.cli.common import examples


def _client(ctx: click.Context) -> tuple[OrionClient, bool]:
    settings: Any = ctx.obj
    if settings is None:
        return OrionClient(DEFAULT_ADDR, None, DEFAULT_TIMEOUT), False
    return settings.client(), bool(settings.as_json)


def _fail(exc: ClientError) -> click.ClickException:
    error = click.ClickException(exc.message + (f" (field: {exc.field})" if exc.field else ""))
    error.exit_code = 1
    return error


@click.command(epilog=examples("orion scale 3f2a9c1b7d4e 5", "orion scale 3f2a9c1b7d4e 0   # stop every replica"))
@click.argument("task_id")
@click.argument("count", type=click.IntRange(min=0, max=1000))
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def scale(ctx: click.Context, task_id: str, count: int, as_json: bool) -> None:
    """Set the number of replicas of the service TASK_ID belongs to."""
    client, json_default = _client(ctx)
    try:
        _, body = client.request("PATCH", f"/tasks/{task_id}", body={"count": count})
    except ClientError as exc:
        raise _fail(exc) from None
    if as_json or json_default:
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(f"service {body['group']}: {body['count']} replica(s); "
               f"added {len(body['created'])}, stopping {len(body['stopped'])}")


@click.group(epilog=examples("orion node drain node2"))
def node() -> None:
    """Operate on one node."""


@node.command(epilog=examples("orion node drain node2", "orion node drain node2 && orion ps --watch"))
@click.argument("node_id")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def drain(ctx: click.Context, node_id: str, as_json: bool) -> None:
    """Mark NODE_ID as leaving: the leader moves its tasks to other nodes."""
    client, json_default = _client(ctx)
    try:
        _, body = client.request("POST", f"/nodes/{node_id}/drain")
    except ClientError as exc:
        raise _fail(exc) from None
    if as_json or json_default:
        click.echo(json.dumps(body, indent=2))
        return
    moving = body.get("tasksToMove", [])
    click.echo(f"node {node_id} is {body.get('status')}; {len(moving)} task(s) being moved")
