"""``orion network``: the overlay's settings and every host's subnet lease (``GET /cluster/network``).

A listing like the others (``-o table|wide|json|yaml``, ``-q`` prints the subnets): one row
per lease, the settings fixed at bootstrap above the table. docs/network-leases.md says what
a lease is and when it is given back.
"""

from __future__ import annotations

from typing import Any

import click

from orion.cli.client import ClientError
from orion.cli.common import examples, fail, settings_of
from orion.cli.output import Column, dump, emit, output_format, output_options, render

LEASE_COLUMNS: tuple[Column, ...] = (
    Column("SUBNET", lambda lease: lease["subnet"]),
    Column("HOLDERS", lambda lease: ",".join(lease["holders"])),
    Column("UNDERLAY", lambda lease: lease["underlayIp"]),
    Column("VTEP MAC", lambda lease: lease["vtepMac"], wide_only=True),
    Column("HOST", lambda lease: lease["host"][:12], wide_cell=lambda lease: lease["host"]),
)


def settings_line(settings: dict[str, Any] | None) -> str:
    """The settings in one line, or what to expect before the bootstrapping node set them."""
    if settings is None:
        return "network: not set yet (the bootstrapping node sets it once it leads)"
    return (f"network {settings['cidr']} (/{settings['hostPrefix']} per host), services {settings['serviceCidr']}, "
            f"VXLAN vni {settings['vni']} port {settings['port']}, mtu {settings['mtu']}")


@click.command(epilog=examples("orion network", "orion network -o wide", "orion network -o json"))
@output_options
@click.pass_context
def network(ctx: click.Context, output: str | None, quiet: bool, as_json: bool) -> None:
    """The overlay network: its settings and each host's subnet lease with the agents holding it."""
    fmt = output_format(ctx, output, as_json)
    try:
        _, answer = settings_of(ctx).client().request("GET", "/cluster/network")
    except ClientError as exc:
        raise fail(exc) from None
    if quiet:
        emit(render(answer["leases"], LEASE_COLUMNS, fmt, quiet=True, ident=lambda lease: lease["subnet"]))
        return
    if fmt in ("json", "yaml"):
        emit(dump(answer, fmt))
        return
    notes = [f"{len(answer['vips'])} service VIP(s): " + ", ".join(f"{n} {v}" for n, v in answer["vips"].items())
             ] if answer["vips"] else []
    emit(settings_line(answer["settings"]) + "\n" + render(answer["leases"], LEASE_COLUMNS, fmt, notes=notes))
