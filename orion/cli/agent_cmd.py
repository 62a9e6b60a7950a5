"""``orion agent``: the node service's command line (owned by the agent, not the client).

Flags are the seed's (``--id --port --gossip-port --raft-port --bootstrap
--join``) plus the rest of ``AgentConfig``. A flag left unset does not override
the environment or the config file: click defaults are ``None`` on purpose and
the real defaults live in ``orion/defaults.py``.
"""

from __future__ import annotations

import click

from orion.config import ConfigError, load_config


@click.command("agent")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML config file (ORION_CONFIG).")
@click.option("--id", "id", help="Node id (default: hostname).")
@click.option("--bind", help="Address to listen on (default 127.0.0.1).")
@click.option("--advertise", help="Address peers dial (default: --bind).")
@click.option("--port", type=int, help="HTTP API port (default 8000).")
@click.option("--gossip-port", type=int, help="Gossip port, UDP+TCP (default 6000).")
@click.option("--raft-port", type=int, help="Raft port (default 7000).")
@click.option("--data-dir", help="Raft journal and snapshots (default ./orion-data).")
@click.option("--docker-host", help="Docker engine (ORION_DOCKER_HOST, else DOCKER_HOST, else the default socket).")
@click.option("--bootstrap", is_flag=True, default=None, help="Start a new cluster with this node.")
@click.option("--join", multiple=True, help="HOST:API_PORT of a member to join (repeatable).")
@click.option("--raft-secret", help="Shared secret encrypting Raft traffic (ORION_RAFT_SECRET).")
@click.option("--insecure-raft", is_flag=True, default=None, help="Allow no Raft secret (loopback only).")
@click.option("--api-token", help="Bearer token required by the API (ORION_API_TOKEN).")
@click.option("--label", "labels", multiple=True, help="Node label KEY=VALUE (repeatable).")
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
