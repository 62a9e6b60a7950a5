"""``AgentConfig``: every setting of the agent, each declared once.

A setting is one field of ``Identity`` (``identity.py``: who the node is, where it
listens, whom it trusts), ``Runtime`` (``runtime.py``: the API's limits, Raft,
the node's loops, gossip) or ``Healing`` (``healing.py``: self-healing, day-2),
made with ``setting(...)`` (``setting.py``): its type, default, reason, help,
checks, flag and the parts that take it. Everything else follows from that one
declaration: the ``orion agent`` flags (``orion/cli/agent_cmd.py``), ``ORION_*``
and the TOML keys (``load.py``), the values each part is built with (``part``),
the tests' shipped values (``shipped``) and docs/settings.md (``doc.py``). What
relates several settings is checked in ``rules.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orion.config.healing import Healing
from orion.config.identity import Identity
from orion.config.network import Network
from orion.config.runtime import Runtime
from orion.config.setting import Setting, declarations, part_values


@dataclass(frozen=True)
class AgentConfig(Network, Healing, Runtime, Identity):
    """The agent's settings, every one required: ``load_config`` fills them in from the layers
    (flags > ``ORION_*`` > TOML > the declared defaults). Parts get values, not this:
    ``part(name)`` is what the wiring hands one part."""

    @property
    def api_scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def api_addr(self) -> str:
        return f"{self.advertise}:{self.port}"

    @property
    def raft_addr(self) -> str:
        return f"{self.advertise}:{self.raft_port}"

    @property
    def gossip_addr(self) -> str:
        return f"{self.advertise}:{self.gossip_port}"

    def part(self, name: str) -> dict[str, Any]:
        """The values part ``name`` takes, keyed as the part names them: ``part("restart")`` is
        ``{"delay": ..., "max_delay": ..., ...}`` from the settings declared ``restart.*``."""
        return part_values(SETTINGS, vars(self), name)


# Every setting in declaration order (each secret followed by its ``_file`` companion).
SETTINGS: tuple[Setting, ...] = declarations(AgentConfig)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def shipped(part: str) -> dict[str, Any]:
    """The shipped defaults of part ``part``: what tests build a part with when a setting does
    not matter to them (``tests/parts.py``)."""
    return part_values(SETTINGS, {s.name: s.fresh_default() for s in SETTINGS}, part)
