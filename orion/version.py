"""The version this Orion runs as: the installed distribution's.

Read from the package metadata (pyproject's ``version``, or the wheel's) rather
than kept as a constant here, so a wheel built with another version (an upgrade
rolled out by the Ansible role) reports what it is. ``GET /health`` carries it
and ``orion version`` prints it beside the client's.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version

# The newest Raft log format this build reads, announced by every node when it registers
# (``NodeInfo.log_version``). 1: ``Batch`` entries (batched writes); 2: ``NameCluster`` and
# ``RestoreSnapshot`` (snapshots, docs/operations.md); 3: a service's modes (global, job, cron),
# placement constraints, spread and maxPerNode, redeploy and rebalance (docs/services.md, "Modes"),
# which an older node would misread or refuse; 4: the overlay network's commands and a task's
# ``ip`` (orion/state/network.py); 5: secrets, configs and registry credentials
# (orion/state/secrets.py, docs/secrets.md). A format newer than the oldest registered node reads
# is never written: during a rolling upgrade the cluster keeps to the old one, so no replica
# meets an entry it would have to refuse (and diverge).
LOG_VERSION = 5


@cache
def orion_version() -> str:
    """Looked up once per process: /health is probed often and metadata lookups walk sys.path."""
    try:
        return distribution_version("orion")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
