"""``orion agent``: the node service's command line (owned by the agent, not the client).

Flags are the seed's (``--id --port --gossip-port --raft-port --bootstrap
--join``) plus the rest of ``AgentConfig``. A flag left unset does not override
the environment or the config file: click defaults are ``None`` on purpose and
the real defaults live in ``orion/defaults.py``.

A setting that cannot work (a bad value, an unreadable TLS file, a taken port)
ends the agent before anything starts, with exit code 2 and one line on stderr
(``Error: <flag> ...: <what to do>``) that systemd's journal shows as it is.
"""

from __future__ import annotations

import logging

import click

from orion.cli.common import examples
from orion.config import ConfigError, load_config
from orion.defaults import DEFAULTS

log = logging.getLogger("orion.cli.agent")


class StartupError(click.ClickException):
    """The agent cannot start as configured: one line, exit 2 (a usage error, as click's own),
    so systemd and scripts tell it from a crash."""

    exit_code = 2


@click.command("agent", epilog=examples(
    "orion agent --id node1 --raft-secret-file /etc/orion/raft-secret --data-dir /var/lib/orion",
    "orion agent --id node2 --port 8001 --gossip-port 6001 --raft-port 7001 --join 10.0.0.5:6000 \\",
    "    --raft-secret-file /etc/orion/raft-secret",
    "orion agent --config /etc/orion/orion.toml          # what the systemd unit runs"))
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML config file (ORION_CONFIG).")
@click.option("--id", "id", help="Node id (default: hostname).")
@click.option("--bind", help=f"Address to listen on (default {DEFAULTS['bind']}).")
@click.option("--advertise", help="Address peers dial (default: --bind).")
@click.option("--port", type=int, help=f"HTTP API port (default {DEFAULTS['port']}).")
@click.option("--gossip-port", type=int, help=f"Gossip port, UDP+TCP (default {DEFAULTS['gossip_port']}).")
@click.option("--raft-port", type=int, help=f"Raft port (default {DEFAULTS['raft_port']}).")
@click.option("--data-dir", help=f"Raft journal and snapshots (default {DEFAULTS['data_dir']}).")
@click.option("--docker-host", help="Docker engine (ORION_DOCKER_HOST, else DOCKER_HOST, else "
              f"{DEFAULTS['docker_host']}).")
@click.option("--bootstrap", is_flag=True, default=None,
              help="Accepted for the seed's command lines; it only refuses --join. A node with no --join and "
                   "no state in --data-dir starts a new cluster by itself.")
@click.option("--join", multiple=True,
              help="Gossip address HOST:GOSSIP_PORT of any member to join (repeatable); an API address "
                   "HOST:API_PORT works too.")
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
@click.option("--durability", type=click.Choice(["fsync", "none"]),
              help=f"fsync the Raft journal before acknowledging (default {DEFAULTS['durability']}).")
@click.option("--host-volume", "host_volumes", multiple=True,
              help="Host volume NAME=PATH that tasks may mount by name (repeatable; ORION_HOST_VOLUMES).")
@click.option("--network/--no-network", default=None,
              help="Join the overlay: task IPs, service names and VIPs (default on; ORION_NETWORK).")
@click.option("--network-cidr",
              help=f"The cluster's task addresses, fixed at bootstrap (default {DEFAULTS['network_cidr']}).")
@click.option("--service-cidr", help=f"Service VIPs, fixed at bootstrap (default {DEFAULTS['service_cidr']}).")
@click.option("--network-mtu", type=int, help="The overlay's MTU, fixed at bootstrap (default: underlay's minus 50).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Log level.")
def agent(**flags: object) -> None:
    """Run an Orion node: Raft replica, scheduler, reconciler and HTTP API.

    Exit 2 with one line when a setting cannot work (a taken port, an unreadable file)."""
    labels = flags.pop("labels") or ()
    if labels:
        bad = [item for item in labels if "=" not in item]
        if bad:
            raise click.UsageError(f"--label {bad[0]!r}: write labels as KEY=VALUE")
        flags["labels"] = dict(item.split("=", 1) for item in labels)
    volumes = flags.pop("host_volumes") or ()
    if volumes:
        bad = [item for item in volumes if "=" not in item]
        if bad:
            raise click.UsageError(f"--host-volume {bad[0]!r}: write NAME=PATH, e.g. data=/srv/data")
        flags["host_volumes"] = dict(item.split("=", 1) for item in volumes)
    if not flags.get("join"):
        flags.pop("join", None)
    from orion.agent.preflight import PreflightError, preflight

    try:
        cfg = load_config(flags)
        listener = preflight(cfg)
    except (ConfigError, PreflightError) as exc:
        raise StartupError(str(exc)) from None
    from orion.agent.server import serve, setup_logging

    setup_logging(cfg.log_level)
    warning = argv_secret_warning(flags)
    if warning:
        log.warning(warning)
    serve(cfg, listener)


def argv_secret_warning(flags: dict[str, object]) -> str | None:
    """One sentence when a secret was given as a flag (the agent logs it once, at start)."""
    on_argv = [f"--{name.replace('_', '-')}" for name in ("raft_secret", "api_token") if flags.get(name)]
    if not on_argv:
        return None
    return (f"{' and '.join(on_argv)} given on the command line, where every user of this host can "
            "read it (ps, /proc); use --raft-secret-file/--api-token-file or ORION_RAFT_SECRET/ORION_API_TOKEN")
