"""``orion top``: a full-screen live view of the cluster from any node's API.

Why Rich and not Textual: the goal is <= 2% of one core while idle with 1,000
tasks. Textual runs an asyncio app with its own refresh and message machinery
and re-lays out widgets on every change; Rich gives one ``Live`` screen that
this module redraws only when something changed (an answer arrived, a key was
pressed, a shown age ticked), so while idle the process sleeps in ``select``
and in three held HTTP requests. The keys ``orion top`` needs (filter, sort,
select, confirm) are a few lines over the terminal's cbreak mode; their logic
is the pure ``on_key`` in ``orion/cli/top_model.py`` with the view model.

Updates come from blocking queries (docs/api.md): one watcher thread per
resource holds ``GET /tasks|/nodes|/raft?index=N&wait=D`` and wakes the screen
when its answer arrives. ``/nodes`` and ``/raft`` bound their wait to a few
seconds because gossip's view of a node is not in the Raft index, and because a
node that lost quorum applies nothing: after each ``/raft`` answer ``/health``
says whether this node still knows a leader, and the header says when it does not.
The watchers read ``?stale`` (docs/api.md, "Consistency"): a dashboard keeps
showing this node's replica through an election instead of a 503, the header
already says when no leader is known, and each held request only returns once
the replica moved past what is shown.
"""

from __future__ import annotations

import collections
import os
import select
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orion.cli.client import ClientError, OrionClient
from orion.cli.common import examples, settings_of
from orion.cli.top_model import (
    BACKSPACE,
    DOWN,
    ENTER,
    ESCAPE,
    TASK_COLUMNS,
    UP,
    Drain,
    Quit,
    Ui,
    View,
    derive_events,
    on_key,
    task_row,
    task_rows,
)

# How long each watcher's request is held. Tasks change only through Raft, so the
# full 30 s; nodes and raft also show gossip state and quorum, which move no index.
WAITS = {"/tasks": 30.0, "/nodes": 2.0, "/raft": 2.0}
# A watcher that could not reach the node retries after this long (the header says why).
RETRY = 1.0
# Ages are shown in seconds: the screen is re-checked this often for a changed age.
TICK = 1.0
EVENTS_SHOWN = 4
KEYS = {"\x1b[A": UP, "\x1b[B": DOWN, "\x1bOA": UP, "\x1bOB": DOWN, "\r": ENTER, "\n": ENTER,
        "\x7f": BACKSPACE, "\x08": BACKSPACE, "\x1b": ESCAPE}


@dataclass
class Latest:
    """What the watchers last heard, shared with the drawing thread under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    data: dict[str, Any] = field(default_factory=dict)
    healthy: bool | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def view(self) -> View:
        with self.lock:
            return View(nodes={n["id"]: n for n in self.data.get("/nodes", [])},
                        tasks={t["id"]: t for t in self.data.get("/tasks", [])},
                        raft=self.data.get("/raft", {}), healthy=self.healthy)


def watch(client: OrionClient, path: str, latest: Latest, wake: Callable[[], None], stop: threading.Event) -> None:
    """Hold a blocking query on ``path`` until ``stop``; store each answer and wake the screen."""
    index = 0
    while not stop.is_set():
        try:
            data, index = client.watch(path, index, WAITS[path], stale=path != "/raft")
            healthy = client.health()[0] if path == "/raft" else None
        except ClientError as exc:
            with latest.lock:
                latest.errors[path] = exc.message
            wake()
            index = 0
            stop.wait(RETRY)
            continue
        with latest.lock:
            changed = (latest.data.get(path) != data or path in latest.errors
                       or (healthy is not None and healthy != latest.healthy))
            latest.data[path] = data
            latest.errors.pop(path, None)
            if healthy is not None:
                latest.healthy = healthy
        if changed:  # a bounded wait that elapsed brings the same answer: nothing to redraw
            wake()


def bar(used: float, capacity: float, width: int = 10) -> Text:
    share = 0.0 if capacity <= 0 else min(1.0, used / capacity)
    filled = round(share * width)
    style = "red" if share > 0.9 else "yellow" if share > 0.7 else "green"
    return Text("█" * filled, style=style) + Text("░" * (width - filled), style="dim")


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.1f}G"


STATUS_STYLE = {"alive": "green", "suspect": "yellow", "dead": "bold red", "left": "magenta"}
STATE_STYLE = {"running": "green", "pending": "yellow", "assigned": "cyan", "failed": "red", "lost": "bold red"}


def nodes_table(view: View, ui: Ui) -> Table:
    table = Table(title="nodes", title_justify="left", box=None, header_style="bold", pad_edge=False)
    for name in ("", "NODE", "STATUS", "GOSSIP", "CPU", "", "MEMORY", "", "TASKS"):
        table.add_column(name, no_wrap=True)
    on_node = collections.Counter(t.get("nodeId") for t in view.tasks.values() if t.get("state") == "running")
    for i, (node_id, node) in enumerate(view.nodes.items()):
        cap, used = node.get("capacity", {}), node.get("used", {})
        gossip = (node.get("gossip") or {}).get("state", "-")
        status = str(node.get("status"))
        table.add_row(
            ">" if i == ui.selected else "",
            Text(node_id + (" *" if node.get("leader") else ""), style="bold" if node.get("leader") else ""),
            Text(status, style=STATUS_STYLE.get(status, "")),
            Text(gossip, style=STATUS_STYLE.get(gossip, "")),
            bar(used.get("cpu", 0), cap.get("cpu", 0)), f"{used.get('cpu', 0):g}/{cap.get('cpu', 0):g}",
            bar(used.get("memory", 0), cap.get("memory", 0)),
            f"{_gib(used.get('memory', 0))}/{_gib(cap.get('memory', 0))}",
            str(on_node.get(node_id, 0)),
        )
    return table


def tasks_table(rows: list[tuple[str, ...]], ui: Ui, height: int, total: int, width: int) -> Text:
    """The tasks panel as padded text: a Rich Table measures every cell on every redraw,
    which is most of an idle screen's CPU; these columns are plain strings."""
    shown = rows[:max(0, height)]
    title = f"tasks ({len(rows)} of {total}" + (f", filter {ui.filter!r}" if ui.filter else "") + \
        (f", {len(rows) - len(shown)} below" if len(shown) < len(rows) else "") + ")"
    heads = [name + (" v" if i == ui.sort else "") for i, name in enumerate(TASK_COLUMNS)]
    widths = [max([len(h)] + [len(r[i]) for r in shown]) for i, h in enumerate(heads)]
    out = Text()
    out.append(title + "\n", style="italic")
    out.append(fit("  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)), width) + "\n", style="bold")
    for row in shown:
        line = fit("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)), width)
        start = len(out)
        out.append(line + "\n")
        state_at = sum(w + 2 for w in widths[:2])
        out.stylize(STATE_STYLE.get(row[2], ""), start + state_at, start + min(len(line), state_at + len(row[2])))
    return out


def fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(0, width - 1)] + "…"


def header(client: OrionClient, view: View, errors: dict[str, str]) -> Text:
    raft = view.raft
    text = Text(f"orion top  {client.addr}  ", style="bold")
    if errors:
        text.append(f"cannot read the API: {next(iter(errors.values()))}", style="bold red")
    elif view.healthy is False:
        text.append("NO QUORUM: this node knows no leader (the cluster lost quorum or is electing)",
                    style="bold white on red")
    else:
        text.append(f"leader {view.leader_id() or raft.get('leader') or '?'}", style="green")
    members = ", ".join(raft.get("members", []))
    text.append(f"\nraft term {raft.get('term', '?')}  commit {raft.get('commit_index', '?')}  "
                f"applied {raft.get('applied_index', '?')}  self {raft.get('self', '?')}  peers {members}")
    return text


def footer(ui: Ui, notice: str) -> Text:
    if ui.confirm_drain:
        return Text(f"drain {ui.confirm_drain}? its tasks move to other nodes. y to confirm, any key cancels",
                    style="bold yellow")
    if ui.typing:
        return Text(f"filter: {ui.filter}_  (enter keeps it, esc clears)", style="bold")
    return Text(notice or "/ filter  s sort  up/down select node  d drain node  q quit", style="dim")


class Top:
    """The screen and its keys; the watchers feed it through ``Latest``."""

    def __init__(self, client: OrionClient, console: Console) -> None:
        self.client, self.console = client, console
        self.latest = Latest()
        self.ui = Ui()
        self.view = View()
        self.events: collections.deque[str] = collections.deque(maxlen=EVENTS_SHOWN)
        self.first_seen: dict[str, tuple[float, bool]] = {}
        self.notice = ""
        self._tasks_seen = False
        self._drawn: list[tuple[str, ...]] | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:  # the pipe is full: a wake-up is already pending
            pass

    def _absorb(self) -> None:
        new = self.latest.view()
        now = time.monotonic()
        with self.latest.lock:
            has_tasks = "/tasks" in self.latest.data
        for task_id in new.tasks:  # the first answer holds the tasks older than this screen
            self.first_seen.setdefault(task_id, (now, not self._tasks_seen))
        self._tasks_seen = self._tasks_seen or has_tasks
        for event in derive_events(self.view, new, self.client.addr):
            self.events.append(time.strftime("%H:%M:%S ") + event.text())
        self.view = new

    def rows(self) -> tuple[list[tuple[str, ...]], int]:
        """The tasks listed (filtered, sorted) and how many there are in all."""
        now = time.monotonic()
        all_rows = [task_row(t, *self.first_seen.get(i, (now, False)), now) for i, t in self.view.tasks.items()]
        return task_rows(all_rows, self.ui.filter, self.ui.sort), len(all_rows)

    def render(self, rows: list[tuple[str, ...]], total: int) -> Group:
        with self.latest.lock:
            errors = dict(self.latest.errors)
        height = self.console.size.height - len(self.view.nodes) - 14
        events = Text("\n".join(self.events) or "no events yet", style="cyan")
        return Group(header(self.client, self.view, errors), Text(""), nodes_table(self.view, self.ui), Text(""),
                     tasks_table(rows, self.ui, height, total, self.console.size.width),
                     Text("events", style="bold"), events, footer(self.ui, self.notice))

    def _drain(self, node_id: str) -> None:
        try:
            _, body = self.client.request("POST", f"/nodes/{node_id}/drain")
            self.notice = f"draining {node_id}: {len(body.get('tasksToMove', []))} task(s) to move"
        except ClientError as exc:
            self.notice = f"drain {node_id} refused: {exc.message}"

    def run(self, stop: threading.Event) -> int:
        for path in WAITS:
            threading.Thread(target=watch, args=(self.client, path, self.latest, self.wake, stop),
                             name=f"watch {path}", daemon=True).start()
        fd = sys.stdin.fileno()
        with Live(self.render(*self.rows()), console=self.console, screen=True, auto_refresh=False) as live:
            while True:
                ready, _, _ = select.select([fd, self._wake_r], [], [], TICK)
                ticked = not ready
                if self._wake_r in ready:
                    os.read(self._wake_r, 4096)
                    self._absorb()
                if fd in ready:
                    chunk = os.read(fd, 64).decode(errors="replace")
                    for key in split_keys(chunk):
                        node_ids = list(self.view.nodes)
                        self.ui, action = on_key(self.ui, key, node_ids)
                        if isinstance(action, Quit):
                            return 0
                        if isinstance(action, Drain):
                            self._drain(action.node_id)
                rows, total = self.rows()
                if ticked and rows == self._drawn:  # a tick redraws only when a shown age changed
                    continue
                self._drawn = rows
                live.update(self.render(rows, total), refresh=True)


def split_keys(chunk: str) -> list[str]:
    """Raw terminal input -> keys: escape sequences for arrows, names for enter/esc/backspace."""
    keys, i = [], 0
    while i < len(chunk):
        for seq in ("\x1b[A", "\x1b[B", "\x1bOA", "\x1bOB"):
            if chunk.startswith(seq, i):
                keys.append(KEYS[seq])
                i += len(seq)
                break
        else:
            keys.append(KEYS.get(chunk[i], chunk[i]))
            i += 1
    return keys


def run_top(client: OrionClient) -> int:
    """Run until ``q``; returns the exit code. ``client`` is the CLI's, with its options."""
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        raise ClientError("orion top needs a terminal; use `orion status` or `orion ps` in scripts")
    stop = threading.Event()
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        return Top(client, Console()).run(stop)
    except KeyboardInterrupt:
        return 0
    finally:
        stop.set()
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@click.command(epilog=examples("orion top", "orion --addr https://10.0.0.5:8000 --ca-cert ca.pem top"))
@click.pass_context
def top(ctx: click.Context) -> None:
    """A live full-screen view of nodes, tasks, Raft and events; q quits."""
    client = settings_of(ctx).client()
    try:
        code = run_top(client)
    except ClientError as exc:
        error = click.ClickException(exc.message)
        error.exit_code = 1
        raise error from None
    ctx.exit(code)
