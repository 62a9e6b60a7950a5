"""``orion agent``: the node service's command line (owned by the agent, not the client).

Flags are the seed's (``--id --port --gossip-port --raft-port --bootstrap
--join``) plus the rest of ``AgentConfig``. A flag left unset does not override
the environment or the config file: click defaults are ``None`` on purpose and
the real defaults live in ``orion/defaults.py``.
"""

from __future__ import annotations

import click

from orion.config import ConfigError, load_config
from orion.defaults import DEFAULTS


@click.command("agent")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML config file (ORION_CONFIG).")
@click.option("--id", "id", help="Node id (default: hostname).")
@click.option("--bind", help=f"Address to listen on (default {DEFAULTS['bind']}).")
@click.option("--advertise", help="Address peers dial (default: --bind).")
@click.option("--port", type=int, help=f"HTTP API port (default {DEFAULTS['port']}).")
@click.option("--gossip-port", type=int, help=f"Gossip port, UDP+TCP (default {DEFAULTS['gossip_port']}).")
@click.option("--raft-port", type=int, help=f"Raft port (default {DEFAULTS['raft_port']}).")
@click.option("--data-dir", help=f"Raft journal and snapshots (default {DEFAULTS['data_dir']}).")
@click.option("--docker-host", help=f"Docker engine (default {DEFAULTS['docker_host']}).")
@click.option("--bootstrap", is_flag=True, default=None,
              help="Accepted for the seed's command lines; it only refuses --join. A node with no --join and "
                   "no state in --data-dir starts a new cluster by itself.")
@click.option("--join", multiple=True,
              help="HOST:GOSSIP_PORT (or HOST:API_PORT) of a member to join (repeatable).")
@click.option("--raft-secret", help="Shared secret encrypting Raft traffic (ORION_RAFT_SECRET).")
@click.option("--insecure-raft", is_flag=True, default=None, help="Allow no Raft secret (loopback only).")
@click.option("--api-token", help="Bearer token required by the API (ORION_API_TOKEN).")
@click.option("--label", "labels", multiple=True, help="Node label KEY=VALUE (repeatable).")
@click.option("--durability", type=click.Choice(["fsync", "none"]),
              help=f"fsync the Raft journal before acknowledging (default {DEFAULTS['durability']}).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Log level.")
def agent(**flags: object) -> None:
    """Run an Orion node: Raft replica, scheduler, reconciler and HTTP API."""
    labels = flags.pop("labels") or ()
    if labels:
        bad = [item for item in labels if "=" not in item]
        if bad:
            raise click.UsageError(f"--label {bad[0]!r}: write labels as KEY=VALUE")
        flags["labels"] = dict(item.split("=", 1) for item in labels)
    if not flags.get("join"):
        flags.pop("join", None)
    try:
        cfg = load_config(flags)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    from orion.agent.server import serve

    serve(cfg)
