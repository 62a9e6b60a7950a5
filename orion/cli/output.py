"""Every listing's output formats, kubectl's way: ``-o table|wide|json|yaml`` and ``-q``.

A listing is the API's rows (the JSON objects ``GET /tasks`` and friends answer)
and the columns a person reads them by. ``json`` and ``yaml`` print the rows
themselves, untouched, so a script sees exactly what the API said; ``table``
shows the columns, ``wide`` adds the ones marked ``wide_only`` (and cells that
have a fuller ``wide_cell``, such as an uncut reason); ``-q`` prints one id per
line, for ``xargs`` and ``$(...)``. A command uses it as::

    @output_options
    def things(ctx, output, quiet, as_json):
        fmt = output_format(ctx, output, as_json)
        emit(render(rows, THING_COLUMNS, fmt, quiet=quiet))
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from orion.cli.common import output_of, settings_of
from orion.cli.render import table

FORMATS = ("table", "wide", "json", "yaml")

Row = Mapping[str, Any]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Column:
    """One column of a listing: its header and how a row's cell reads."""

    header: str
    cell: Callable[[Row], Any]
    # Shown only with -o wide.
    wide_only: bool = False
    # The cell with -o wide, when it can show more there (e.g. the whole reason).
    wide_cell: Callable[[Row], Any] | None = None


def render(rows: Sequence[Row], columns: Sequence[Column], fmt: str = "table", *, quiet: bool = False,
           ident: Callable[[Row], Any] = lambda row: row["id"], notes: Sequence[str] = ()) -> str:
    """The listing as text. ``ident`` gives a row's id for ``quiet``; ``notes`` are lines
    under a table (a legend, why a node is not ready), left out of json and yaml."""
    if quiet:
        return "\n".join(str(ident(row)) for row in rows)
    if fmt in ("json", "yaml"):
        return dump(list(rows), fmt)
    if fmt not in ("table", "wide"):
        raise ValueError(f"unknown output format {fmt!r}; one of {', '.join(FORMATS)}")
    wide = fmt == "wide"
    shown = [c for c in columns if wide or not c.wide_only]
    cells = [[((c.wide_cell or c.cell) if wide else c.cell)(row) for c in shown] for row in rows]
    return "\n".join([table([c.header for c in shown], cells), *notes])


def dump(data: Any, fmt: str, compact: bool = False) -> str:
    """``data`` as JSON (indented, or one line with ``compact``) or YAML (block style, keys in
    the API's order)."""
    if fmt == "yaml":
        import yaml  # only here: `orion agent` and most commands never need it

        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True).rstrip("\n")
    return json.dumps(data, separators=(",", ":")) if compact else json.dumps(data, indent=2)


def output_options(fn: F) -> F:
    """``-o/--output``, ``-q/--quiet`` and ``--json`` (the same as ``-o json``) on a listing;
    the command receives ``output``, ``quiet`` and ``as_json``."""
    fn = click.option("--json", "as_json", is_flag=True, help="Same as -o json.")(fn)
    fn = click.option("-q", "--quiet", is_flag=True, help="Print only the ids, one per line.")(fn)
    return click.option("-o", "--output", type=click.Choice(FORMATS), default=None,
                        help="table (the default), wide (more columns), json or yaml (the API's rows).")(fn)


def output_format(ctx: click.Context, output: str | None, as_json: bool) -> str:
    """``-o`` wins (the command's, else the global one); else json when ``--json`` was given (to the
    command or to ``orion``)."""
    output = output_of(ctx, output)
    if output:
        return output
    return "json" if settings_of(ctx, as_json).as_json else "table"


def emit(text: str) -> None:
    """Print a rendered listing; nothing at all for an empty ``-q`` list."""
    if text:
        click.echo(text)
