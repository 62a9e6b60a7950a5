"""``orion agent``: the node service's command line (owned by the agent, not the client).

Flags are the seed's (``--id --port --gossip-port --raft-port --bootstrap
--join``) plus every setting declared with a flag (``orion/config/``): the options
are made from the declarations. A flag left unset does not override the
environment or the config file: click defaults are ``None`` on purpose and the
real defaults are the declared ones.

A setting that cannot work (a bad value, an unreadable TLS file, a taken port)
ends the agent before anything starts, with exit code 2 and one line on stderr
(``Error: <flag> ...: <what to do>``) that systemd's journal shows as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from orion.cli.common import examples
from orion.config import SETTINGS, ConfigError, Setting, load_config

log = logging.getLogger("orion.cli.agent")


class StartupError(click.ClickException):
    """The agent cannot start as configured: one line, exit 2 (a usage error, as click's own),
    so systemd and scripts tell it from a crash."""

    exit_code = 2


def options_for(settings: Sequence[Setting]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """One click option per setting declared with a flag, in declaration order, each named after
    the setting it sets (``--gossip-port`` -> ``gossip_port``); a switch on by default gets its
    ``--no-`` form too. Every default is None: a flag left unset must not override ORION_* or the
    file (``load_config`` fills the declared default)."""
    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        for declared in reversed([s for s in settings if s.has_flag]):
            command = _option(declared)(command)
        return command
    return decorate


def _option(declared: Setting) -> Callable[[Callable[..., None]], Callable[..., None]]:
    kwargs: dict[str, Any] = {"default": None, "help": declared.flag_help()}
    names = [declared.flag]
    if declared.kind is bool:
        kwargs["is_flag"] = True
        if declared.default:  # a switch that is on by default is useful only as its --no- form
            names = [f"{declared.flag}/--no-{declared.flag[2:]}"]
    elif declared.choices:
        kwargs["type"] = click.Choice(declared.choices)
    elif declared.kind in (int, float):
        kwargs["type"] = declared.kind
    elif declared.kind in (tuple[str, ...], dict[str, str]):
        kwargs.update(multiple=True, default=(), metavar=declared.metavar or None)
    return click.option(*names, declared.name, **kwargs)


@click.command("agent", epilog=examples(
    "orion agent --id node1 --raft-secret-file /etc/orion/raft-secret --data-dir /var/lib/orion",
    "orion agent --id node2 --port 8001 --gossip-port 6001 --raft-port 7001 --join 10.0.0.5:6000 \\",
    "    --raft-secret-file /etc/orion/raft-secret",
    "orion agent --config /etc/orion/orion.toml          # what the systemd unit runs"))
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML config file (ORION_CONFIG).")
@options_for(SETTINGS)
def agent(**flags: object) -> None:
    """Run an Orion node: Raft replica, scheduler, reconciler and HTTP API.

    Exit 2 with one line when a setting cannot work (a taken port, an unreadable file)."""
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


def argv_secret_warning(flags: Mapping[str, object]) -> str | None:
    """One sentence when a secret was given as a flag (the agent logs it once, at start)."""
    secrets = [s for s in SETTINGS if s.secret and s.has_flag]
    on_argv = [s.flag for s in secrets if flags.get(s.name)]
    if not on_argv:
        return None
    files = "/".join(s.flag + "-file" for s in secrets)
    envs = "/".join(s.env for s in secrets)
    return (f"{' and '.join(on_argv)} given on the command line, where every user of this host can "
            f"read it (ps, /proc); use {files} or {envs}")
