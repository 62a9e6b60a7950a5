"""What a restore must pass before the machine becomes the saved state (``RestoreSnapshot``).

Split from ``machine.py`` (which applies it) because a restore is checked against the file's
own rules, not the machine's books: the state arrives compressed in the log entry
(``canonical.pack``), and must be a state, the one its digest names, of a format this node
reads, and this cluster's (another only when forced). The API runs the same check on its
replica before it sends anything (``orion/api/operator.py``); every replica runs it again when
it applies the entry, so they all decide alike.
"""

from __future__ import annotations

from typing import Any

from orion.state.canonical import unpack
from orion.state.commands import RestoreSnapshot
from orion.state.results import RefusalKind, Refused

# The machine's snapshot format (``StateMachine.snapshot``): a restore or a pysyncobj snapshot
# of a newer one is refused.
SNAPSHOT_VERSION = 1


def restore_problem(state: dict[str, Any], digest_matches: bool, cluster_id: str, force: bool,
                    readable_version: int) -> Refused | None:
    """Why a saved state must not replace this machine's: a newer format than this node reads
    (unreadable), contents that are not what the checksum says (``digest_matches`` false:
    corrupted on the way; invalid), or another cluster's (another id, or none) unless forced
    (wrong_state: ``--force`` is the fix). ``cluster_id`` is this machine's ("" before it is named)."""
    version = state.get("v", 1)
    if not isinstance(version, int) or version > readable_version:
        return Refused(RefusalKind.UNREADABLE,
                       f"the snapshot's state is format v{version}, newer than this cluster reads "
                       f"(v{readable_version}): restore it with the Orion release that saved it, or a newer one")
    if not digest_matches:
        return Refused(RefusalKind.INVALID, "the snapshot's state does not match its checksum: the file is corrupted")
    theirs = state.get("cluster_id", "")
    if cluster_id and theirs != cluster_id and not force:
        return Refused(RefusalKind.WRONG_STATE,
                       f"the snapshot is of cluster {theirs or '(unnamed)'}, this is cluster {cluster_id}: "
                       "restore it with --force to replace this cluster's state with another's")
    return None


def read_restore(cmd: RestoreSnapshot, cluster_id: str) -> tuple[dict[str, Any], None] | tuple[None, Refused]:
    """(the state to become, None) when ``cmd`` may replace a machine named ``cluster_id``,
    else (None, why not)."""
    try:
        state, digest = unpack(cmd.body)
    except ValueError:
        return None, Refused(RefusalKind.INVALID, "the snapshot's state cannot be read: the file is corrupted")
    problem = restore_problem(state, digest == cmd.digest, cluster_id, cmd.force, SNAPSHOT_VERSION)
    return (None, problem) if problem else (state, None)
