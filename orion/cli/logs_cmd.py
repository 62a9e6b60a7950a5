"""``orion logs TASK_ID [-f] [--tail N]``: a task's output, through any node (docs/api.md).

The node at ``--addr`` reads the container's logs itself or forwards to the
node that runs the task; this command only copies the answer to stdout as it
arrives. With ``-f`` it keeps going until the task's container ends or Ctrl-C.
Registered by ``orion/cli/main.py``; it reads the group's settings (``--addr``,
``--token``, TLS, ``--timeout``) from the click context like ``ops_cmd.py``.
"""

from __future__ import annotations

import sys

import click

from orion.cli.client import ClientError
from orion.cli.common import examples, settings_of


class LogsError(click.ClickException):
    """Printed as ``Error: ...`` with exit code 1, like every other client command."""

    exit_code = 1


@click.command(epilog=examples("orion logs 3f2a9c1b", "orion logs -f -n 20 3f2a9c1b",
                               "orion logs --since 10m -t 3f2a9c1b"))
@click.argument("task_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the container ends (Ctrl-C stops).")
@click.option("-n", "--tail", type=click.IntRange(min=0), help="Only the last N lines (default: all).")
@click.option("--since", help="Only lines since: Unix seconds, RFC 3339, or a duration back from now (10m).")
@click.option("-t", "--timestamps", is_flag=True, help="Prefix each line with the engine's timestamp.")
@click.pass_context
def logs(ctx: click.Context, task_id: str, follow: bool, tail: int | None, since: str | None,
         timestamps: bool) -> None:
    """Print a task's output (stdout and stderr, as written), read through any node."""
    client = settings_of(ctx).client()
    params = {"follow": "1" if follow else "0", "timestamps": "1" if timestamps else "0"}
    if tail is not None:
        params["tail"] = str(tail)
    if since:
        params["since"] = since
    out = sys.stdout.buffer  # the bytes as the container wrote them: a log may hold any encoding
    try:
        for chunk in client.logs(task_id, params, follow):
            out.write(chunk)
            out.flush()  # each line shows when it is written, not when a buffer fills
    except ClientError as exc:
        raise LogsError(exc.message + (f" (field: {exc.field})" if exc.field else "")) from None
    except KeyboardInterrupt:  # the usual way to stop following: not an error
        return
