"""``orion scale TASK N`` and ``orion node drain NODE``: cluster operations.

Kept apart from ``orion/cli/main.py`` (which only registers them). They use the
group's settings object (``--addr``, ``--token``, ``--json``, ``--timeout``)
through the click context, so they behave like every other client command:
exit 1 with a readable message when the cluster refuses or cannot be reached.
"""

from __future__ import annotations

import json

import click

from orion.cli.client import ClientError
from orion.cli.common import examples, fail, settings_of


@click.command(epilog=examples("orion scale 3f2a9c1b7d4e 5", "orion scale 3f2a9c1b7d4e 0   # stop every replica"))
@click.argument("task_id")
@click.argument("count", type=click.IntRange(min=0, max=1000))
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.pass_context
def scale(ctx: click.Context, task_id: str, count: int, as_json: bool) -> None:
    """Set the number of replicas of the service TASK_ID belongs to."""
    settings = settings_of(ctx, as_json)
    try:
        _, body = settings.client().request("PATCH", f"/tasks/{task_id}", body={"count": count})
    except ClientError as exc:
        raise fail(exc, "`orion ps -a` lists the task ids") from None
    if settings.as_json:
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
    settings = settings_of(ctx, as_json)
    try:
        _, body = settings.client().request("POST", f"/nodes/{node_id}/drain")
    except ClientError as exc:
        raise fail(exc, "`orion nodes` lists the node ids") from None
    if settings.as_json:
        click.echo(json.dumps(body, indent=2))
        return
    moving = body.get("tasksToMove", [])
    click.echo(f"node {node_id} is {body.get('status')}; {len(moving)} task(s) being moved")
