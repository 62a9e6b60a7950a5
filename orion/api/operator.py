"""``/operator/snapshot``: save the whole replicated state to a file, and restore one.

``GET`` answers the snapshot file (``orion/store/snapshot_file.py``) of this node's
replica, read under the machine's lock at one applied index: consistent by construction.
By default only once this node reaches a leader with a quorum and has applied the commit
index it knows, so what it saves is not behind the cluster; ``?stale=1`` saves the replica as
it is (the one thing to do on a host whose cluster lost its majority, before
``orion operator raft recover``).

``PUT`` takes a file and makes it every replica's state: it goes through the Raft log as one
``RestoreSnapshot`` entry, so each replica applies it at the same index and re-checks it
there (format, checksum, cluster id). This route checks the same first, on the local replica,
so a bad file is refused with its reason before anything is sent; nothing changes unless the
entry applies, and then everything does. Both are admin operations: they need the API token
(and, once tokens have scopes, an admin one). The state travels as the machine holds it,
never decrypted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from orion.api.http import ApiError, answer
from orion.api.refusals import refusal
from orion.api.schema.queries import RestoreQuery, SnapshotQuery, parse_query
from orion.defaults import SNAPSHOT_MAX_BYTES, SNAPSHOT_RESTORE_TIMEOUT
from orion.state.canonical import pack
from orion.state.commands import RestoreSnapshot
from orion.state.entries import SNAPSHOT_LOG_VERSION
from orion.state.restore import SNAPSHOT_VERSION, restore_problem
from orion.state.results import RefusalKind, Refused
from orion.store.port import Store
from orion.store.snapshot_file import SnapshotFileError, SnapshotMeta, read_snapshot, write_snapshot
from orion.version import orion_version


def operator_blueprint(store: Store, node_id: str, write_timeout: float,
                       clock: Callable[[], float] = time.time) -> Blueprint:
    """``clock``: the wall clock written into a file as its creation time."""
    bp = Blueprint("operator", __name__)

    @bp.get("/operator/snapshot")
    def save() -> Response:
        query = parse_query(SnapshotQuery, request.args)
        if not query.stale:
            caught_up(store, write_timeout)
        state, index = store.read(lambda m: m.snapshot())
        meta = SnapshotMeta(cluster_id=str(state.get("cluster_id", "")), index=index, term=store.status().term,
                            created=clock(), node=node_id, orion_version=orion_version())
        response = Response(write_snapshot(state, meta), mimetype="application/octet-stream")
        response.headers["X-Orion-Index"] = str(index)
        response.headers["Content-Disposition"] = f'attachment; filename="orion-{index}.snap"'
        return response

    @bp.put("/operator/snapshot")
    def restore() -> Response:
        query = parse_query(RestoreQuery, request.args)
        request.max_content_length = SNAPSHOT_MAX_BYTES
        try:
            snapshot = read_snapshot(request.get_data(cache=False))
        except SnapshotFileError as exc:
            raise ApiError(400, str(exc), "snapshot") from None

        def check(m: Any) -> tuple[Refused | None, int]:
            # The digest was verified reading the file: only who and which format are checked here.
            return restore_problem(snapshot.state, True, m.cluster_id, query.force, SNAPSHOT_VERSION), m.log_version()

        (problem, log_version), _ = store.read(check)
        if log_version < SNAPSHOT_LOG_VERSION:
            raise ApiError(409, "a node of this cluster runs an Orion release that cannot apply a restore: "
                                "finish the upgrade (every node re-registers as it restarts), then restore",
                           "snapshot")
        if problem is not None:  # another cluster's state: --force is the fix
            raise refusal(problem, field="force" if problem.kind == RefusalKind.WRONG_STATE else "snapshot")
        command = RestoreSnapshot(body=pack(snapshot.body), digest=snapshot.digest, force=query.force)
        result = store.submit(command, max(write_timeout, SNAPSHOT_RESTORE_TIMEOUT))
        if isinstance(result, Refused):
            raise refusal(result, field="snapshot")
        body = {"index": result.index, "digest": result.digest, "clusterId": result.cluster_id,
                "nodes": result.nodes, "tasks": result.tasks, "services": result.services}
        return answer(body, 200, result.index)

    return bp


def caught_up(store: Store, timeout: float) -> None:
    """Refuse (503) unless this node reaches a leader with a quorum and has applied the commit
    index it knows of: a snapshot is then no older than the moment it was asked for."""
    if not store.ready():
        raise ApiError(503, "this node reaches no leader with a quorum, or has not caught up yet: save from a "
                            "healthy node, or add ?stale=1 (orion operator snapshot save --stale) to save this "
                            "node's replica as it is")
    if not store.wait_applied(store.status().commit_index, timeout):
        raise ApiError(503, f"this node did not apply its commit index within {timeout:g}s: retry")
