"""``--watch``: print a listing, then again each time it changes, from blocking queries.

The command holds ``GET <path>?index=N&wait=D`` (docs/api.md): the node answers
as soon as it applies anything beyond N, so a change is printed within one apply
of the write instead of a polling period; while nothing changes the CLI sleeps in
one held request. ``wait`` bounds the hold for what moves no Raft index (gossip's
view of a node). A snapshot is printed only when its text differs from the last
one: on a terminal the screen is redrawn in place, elsewhere (a pipe, a file)
snapshots follow each other, separated as their format wants (a blank line
between tables, one JSON document per line, ``---`` between YAML documents).

The first snapshot is a linearizable read like any other (it shows a write made
a moment ago through another node); the held requests that follow ask
``?stale``: each already waits until this node applied beyond the index last
shown, so it is never older than what is on the screen, it costs no quorum
round per change, and an election does not end the watch with a 503.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from orion.cli.client import OrionClient
from orion.cli.output import dump

# How long a watch holds each request when it follows only the Raft index (tasks).
TASK_WAIT = 30.0
# Nodes also show gossip state, which moves no index: a change there shows within this.
NODE_WAIT = 2.0
_CLEAR = "\x1b[H\x1b[2J"


def snapshot_printer(fmt: str, quiet: bool, render: Callable[[Any], str], tty: bool) -> Callable[[Any], None]:
    """What prints one snapshot (``render`` makes its text); a repeat of the last text prints nothing."""
    last: list[str] = []
    kind = "ids" if quiet else fmt

    def show(rows: Any) -> None:
        text = dump(rows, "json", compact=True) if kind == "json" else render(rows)
        if last and last[0] == text:
            return
        if tty and kind in ("table", "wide", "ids"):
            click.echo(_CLEAR, nl=False)
        elif kind == "yaml":
            text = "---\n" + text
        elif last and kind != "json":
            click.echo("")
        click.echo(text)
        last[:] = [text]

    return show


def follow(client: OrionClient, path: str, wait: float, show: Callable[[Any], None],
           rows: Callable[[Any], Any] = lambda data: data) -> None:
    """Show ``rows(answer)`` of ``path`` now and after every change, until interrupted.
    A node that stops answering ends the watch with its ClientError."""
    index = 0
    while True:
        data, index = client.watch(path, index, wait, stale=index > 0)
        show(rows(data))
