"""The agent's settings: each declared once (``agent.py``), read from flags > ``ORION_*`` >
TOML > the declared defaults (``load.py``). Only the agent and the CLI read this room:
parts are handed values (``AgentConfig.part``), never the config."""

from orion.config.agent import SETTINGS, AgentConfig, shipped
from orion.config.load import load_config
from orion.config.setting import ConfigError, Setting

__all__ = ["SETTINGS", "AgentConfig", "ConfigError", "Setting", "load_config", "shipped"]
