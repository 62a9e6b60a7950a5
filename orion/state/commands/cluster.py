"""Cluster commands: the cluster's id, and a saved state put back in place of the current one.
Applied by ``orion/state/machine.py``."""

from __future__ import annotations

from typing import ClassVar

from orion.state.commands.base import Command, command, optional


@command
class NameCluster(Command):
    """Give the cluster its id, once: the first agent to register in a cluster whose every node
    reads this command (``LOG_VERSION`` 2) draws it; a second naming is refused. Snapshots carry
    it, so a restore can tell this cluster's file from another's."""

    TYPE: ClassVar[str] = "name_cluster"
    cluster_id: str = ""


@command
class RestoreSnapshot(Command):
    """Replace the whole state with a saved one (``orion operator snapshot restore``).

    ``body`` is the machine's plain-data snapshot as saved (``StateMachine.snapshot``), in its
    canonical form gzip'd and base64'd as the file carries it (``canonical.pack``: 0.4 MB in the
    log for a 12 MB state), and ``digest`` the SHA-256 of the canonical form: every replica
    checks the one against the other, the format version and the cluster id (``force``: restore
    another cluster's state, taking its id) before it changes anything. Sent without a request
    id, so the state after it is exactly the saved one (its digest is the file's).
    """

    TYPE: ClassVar[str] = "restore_snapshot"
    body: str = ""
    digest: str = ""
    force: bool = optional(False)
