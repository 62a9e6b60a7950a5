"""Orion's parts built with the shipped settings (``orion/config/``), for tests.

The parts take every setting as a required argument, so a default exists once, in
its declaration; ``shipped(part)`` is what the agent would hand that part with
nothing configured. A test that does not care about a setting gets the shipped
value here and names only what it changes.
"""

from __future__ import annotations

from typing import Any

from orion.api.app import ApiDeps
from orion.config import shipped
from orion.control.drain import DrainSettings
from orion.control.restart import RestartConfig
from orion.membership.autopilot import AutopilotConfig
from orion.node.reconcile_loop import ReconcileLoop
from orion.raft.store import RaftSettings
from orion.runtime import Runtime
from orion.store.port import Store


def restart_config(**changes: Any) -> RestartConfig:
    return RestartConfig(**{**shipped("restart"), **changes})


def autopilot_config(**changes: Any) -> AutopilotConfig:
    return AutopilotConfig(**{**shipped("autopilot"), **changes})


def drain_settings(**changes: Any) -> DrainSettings:
    return DrainSettings(**{**shipped("drain"), **changes})


def api_deps(store: Store, node_id: str = "node1", **changes: Any) -> ApiDeps:
    return ApiDeps(store=store, node_id=node_id, **{**shipped("api"), **changes})


def reconcile_loop(node_id: str, store: Store, runtime: Runtime, **changes: Any) -> ReconcileLoop:
    return ReconcileLoop(node_id, store, runtime, **{**shipped("reconcile"), **changes})


def raft_settings(self_addr: str, data_dir: str, secret: str | None, **changes: Any) -> RaftSettings:
    values = {"bind_addr": self_addr, **shipped("raft")}
    return RaftSettings(self_addr=self_addr, data_dir=data_dir, secret=secret, **{**values, **changes})
