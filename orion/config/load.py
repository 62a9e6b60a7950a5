"""Agent configuration: flags > ``ORION_*`` environment > TOML file > the declared defaults.

``docker_host`` has one more layer: docker's own ``DOCKER_HOST``, just above
the default socket (flag > ``ORION_DOCKER_HOST`` > file > ``DOCKER_HOST`` > default).

One function builds the final value so every entry point (CLI, systemd, tests)
gets the same precedence and the same error messages. Every spelling comes from
the declarations (``orion/config/agent.py``): a value is parsed and checked as it
is read, and a mistake names the spelling it came by (``--port``, ``ORION_PORT``,
``port``); what relates several settings is checked last (``rules.py``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orion.config.agent import BY_NAME, SETTINGS, AgentConfig
from orion.config.rules import finish
from orion.config.setting import ConfigError


def load_config(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> AgentConfig:
    """Merge the layers and check the result. ``flags`` holds the flags the user gave, by setting
    name (``gossip_port``; ``config`` for the file); None or an empty repeatable flag is not given."""
    env = os.environ if env is None else env
    flags = flags or {}
    values: dict[str, Any] = {s.name: s.fresh_default() for s in SETTINGS}
    # Docker's own variable is the engine every docker client on the host uses: a better
    # guess than the default socket, yet below every Orion setting (flag, ORION_*, file).
    if env.get("DOCKER_HOST"):
        values["docker_host"] = env["DOCKER_HOST"]
    path = flags.get("config") or env.get("ORION_CONFIG") or config_file
    if path:
        values.update(_from_file(path))
    for declared in SETTINGS:
        if declared.env in env:
            values[declared.name] = declared.parse(declared.env, env[declared.env])
    for key, value in flags.items():
        if key == "config" or value is None or (isinstance(value, tuple | list) and not value):
            continue
        if key not in BY_NAME:
            raise ConfigError(f"{key}: not a setting of the agent")
        values[key] = BY_NAME[key].parse(BY_NAME[key].named, value)
    return finish(values)


def _from_file(path: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist; fix --config or ORION_CONFIG") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    data = data.get("agent", data)
    unknown = sorted(set(data) - set(BY_NAME))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    out = {}
    for key, value in data.items():
        if key == "host_volumes" and isinstance(value, dict):
            value = {name: _volume_path(name, v) for name, v in value.items()}
        out[key] = BY_NAME[key].parse(BY_NAME[key].toml, value)
    return out


def _volume_path(name: str, value: Any) -> Any:
    """A host volume in TOML: ``data = "/srv/data"``, or a table ``[host_volumes.data] path = ...``."""
    if not isinstance(value, dict):
        return value
    unknown = sorted(set(value) - {"path"})
    if unknown or "path" not in value:
        raise ConfigError(f"host_volumes.{name}: write path = \"/srv/{name}\" (and nothing else"
                          f"{'; read_only is set per mount, by the task' if 'read_only' in unknown else ''})")
    return value["path"]
