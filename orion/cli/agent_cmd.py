"""``orion agent``: the node service's command line (owned by the agent, not the client).

Flags are the seed's (``--id --port --gossip-port --raft-port --bootstrap
--join``) plus the rest of ``AgentConfig``. A flag left unset does not override
the environment or the config file: click defaults are ``None`` on purpose and
the real defaults live in ``orion/defaults.py``.
"""

from __future__ import annotations

import logging

import click

from orion.config import ConfigError, load_config

log = logging.getLogger("orion.cli.agent")


@click.command("agent")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML config file (ORION_CONFIG).")
@click.option("--id", "id", help="Node id (default: hostname).")
@click.option("--bind", help="Address to listen on (default 127.0.0.1).")
@click.option("--advertise", help="Address peers dial (default: --bind).")
@click.option("--port", type=int, help="HTTP API port (default 8000).")
@click.option("--gossip-port", type=int, help="Gossip port, UDP+TCP (default 6000).")
@click.option("--raft-port", type=int, help="Raft port (default 7000).")
@click.option("--data-dir", help="Raft journal and snapshots (default ./orion-data).")
@click.option("--docker-host", help="Docker engine (default unix:///var/run/docker.sock).")
@click.option("--bootstrap", is_flag=True, default=None, help="Start a new cluster with this node.")
@click.option("--join", multiple=True,
              help="HOST:GOSSIP_PORT (or HOST:API_PORT) of a member to join (repeatable).")
@click.option("--raft-secret-file", help="File holding the shared Raft secret (or ORION_RAFT_SECRET).")
@click.option("--raft-secret", help="The Raft secret itself: visible in ps; prefer --raft-secret-file.")
@click.option("--insecure-raft", is_flag=True, default=None, help="Allow no Raft secret (loopback only).")
@click.option("--api-token-file", help="File holding the API bearer token (or ORION_API_TOKEN).")
@click.option("--api-token", help="The API token itself: visible in ps; prefer --api-token-file.")
@click.option("--tls-cert", help="PEM certificate: serve the API over HTTPS (with --tls-key).")
@click.option("--tls-key", help="PEM private key of --tls-cert.")
@click.option("--tls-client-ca", help="CA whose client certificates the API requires (mTLS).")
@click.option("--tls-ca", help="CA verifying the peers' certificates (default: --tls-client-ca).")
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
    from orion.agent.server import serve, setup_logging

    setup_logging(cfg.log_level)
    warning = argv_secret_warning(flags)
    if warning:
        log.warning(warning)
    serve(cfg)


def argv_secret_warning(flags: dict[str, object]) -> str | None:
    """One sentence when a secret was given as a flag (the agent logs it once, at start)."""
    on_argv = [f"--{name.replace('_', '-')}" for name in ("raft_secret", "api_token") if flags.get(name)]
    if not on_argv:
        return None
    return (f"{' and '.join(on_argv)} given on the command line, where every user of this host can "
            "read it (ps, /proc); use --raft-secret-file/--api-token-file or ORION_RAFT_SECRET/ORION_API_TOKEN")
