"""Orion's parts built with the shipped settings (``orion/defaults.py``), for tests.

The parts take every setting as a required argument, so a default exists once;
a test that does not care about a setting gets the shipped value here and names
only what it changes.
"""

from __future__ import annotations

from typing import Any

from orion.api.app import ApiDeps
from orion.control.drain import DrainSettings
from orion.control.restart import RestartConfig
from orion.defaults import DEFAULTS
from orion.membership.autopilot import AutopilotConfig
from orion.node.reconcile_loop import ReconcileLoop
from orion.raft.store import RaftSettings
from orion.runtime import Runtime
from orion.store.port import Store


def restart_config(**changes: Any) -> RestartConfig:
    values = {"delay": DEFAULTS["restart_delay"], "max_delay": DEFAULTS["restart_max_delay"],
              "limit": DEFAULTS["restart_limit"], "window": DEFAULTS["restart_window"],
              "local_attempts": DEFAULTS["restart_local_attempts"]}
    return RestartConfig(**{**values, **changes})


def autopilot_config(**changes: Any) -> AutopilotConfig:
    values = {"voter_cap": DEFAULTS["voter_cap"], "dead_voter_cleanup": DEFAULTS["dead_voter_cleanup"]}
    return AutopilotConfig(**{**values, **changes})


def drain_settings(**changes: Any) -> DrainSettings:
    values = {"max_parallel": DEFAULTS["drain_max_parallel"], "deadline": DEFAULTS["drain_deadline"],
              "min_running": DEFAULTS["drain_min_running"]}
    return DrainSettings(**{**values, **changes})


def api_deps(store: Store, node_id: str = "node1", **changes: Any) -> ApiDeps:
    values = {"max_body_bytes": DEFAULTS["max_body_bytes"], "write_timeout": DEFAULTS["write_timeout"],
              "placement_wait": DEFAULTS["placement_wait"]}
    return ApiDeps(store=store, node_id=node_id, **{**values, **changes})


def reconcile_loop(node_id: str, store: Store, runtime: Runtime, **changes: Any) -> ReconcileLoop:
    values = {"interval": DEFAULTS["reconcile_interval"], "stop_timeout": DEFAULTS["stop_timeout"],
              "write_timeout": DEFAULTS["write_timeout"], "orphan_grace": DEFAULTS["orphan_grace"]}
    return ReconcileLoop(node_id, store, runtime, **{**values, **changes})


def raft_settings(self_addr: str, data_dir: str, secret: str | None, **changes: Any) -> RaftSettings:
    values = {"bind_addr": self_addr, "election_min": DEFAULTS["raft_election_min"],
              "election_max": DEFAULTS["raft_election_max"],
              "compaction_entries": DEFAULTS["raft_compaction_entries"], "durability": DEFAULTS["durability"]}
    return RaftSettings(self_addr=self_addr, data_dir=data_dir, secret=secret, **{**values, **changes})
