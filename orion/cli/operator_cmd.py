"""``orion operator``: snapshots of the whole state, and recovery after losing a majority.

``snapshot save|inspect|restore`` talk to any node's API (``GET``/``PUT /v1/operator/snapshot``)
and check every file on this side too: a file is verified before it is written and before it is
sent, so a damaged one is named here, with nothing changed anywhere. ``raft recover`` works on
the stopped agent's data dir on this host (``orion/raft/recover.py``). The runbook is
docs/operations.md.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from orion.cli.client import ClientError
from orion.cli.common import OrionError, examples, fail, offline, settings_of
from orion.defaults import SNAPSHOT_RESTORE_TIMEOUT
from orion.store.snapshot_file import Snapshot, SnapshotFileError, read_snapshot

_json = click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")


@click.group(epilog=examples("orion operator snapshot save backup.snap", "orion operator raft recover --config "
                                                                         "/etc/orion/orion.toml"))
def operator() -> None:
    """Administer the cluster: snapshots of its state, recovery after losing a majority."""


@operator.group(epilog=examples("orion operator snapshot save /var/backups/orion/$(date +%F).snap",
                                "orion operator snapshot inspect backup.snap",
                                "orion operator snapshot restore backup.snap"))
def snapshot() -> None:
    """Save the whole replicated state to a file, inspect one, restore one."""


def _read(path: str) -> Snapshot:
    try:
        return read_snapshot(Path(path).read_bytes())
    except OSError as exc:
        raise OrionError(f"cannot read {path}: {exc.strerror or exc}") from None
    except SnapshotFileError as exc:
        raise OrionError(f"{path}: {exc}") from None


def _describe(summary: dict[str, Any]) -> str:
    created = datetime.fromtimestamp(summary["created"], UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = [("cluster", summary["clusterId"] or "(unnamed)"), ("index", summary["index"]),
            ("term", summary["term"]), ("created", f"{created} on {summary['node']}"),
            ("orion", summary["orionVersion"]), ("nodes", summary["nodes"]), ("tasks", summary["tasks"]),
            ("services", summary["services"]), ("size", f"{summary['size']} bytes"),
            ("digest", summary["digest"]), ("checksum", "ok")]
    return "\n".join(f"{name:<9} {value}" for name, value in rows)


@snapshot.command(epilog=examples("orion operator snapshot save backup.snap",
                                  "orion --addr http://10.0.0.7:8000 operator snapshot save --stale last.snap"))
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@click.option("--stale", is_flag=True, help="Save the node's replica as it is, even without a leader "
                                            "(a cluster that lost its majority).")
@_json
@click.pass_context
def save(ctx: click.Context, file: str, stale: bool, as_json: bool) -> None:
    """Save a consistent snapshot of the cluster's state to FILE."""
    settings = settings_of(ctx, as_json)
    try:
        data, _ = settings.client().download("/operator/snapshot", {"stale": "1"} if stale else {})
    except ClientError as exc:
        raise fail(exc) from None
    try:
        snap = read_snapshot(data)  # never write a file that would not restore
    except SnapshotFileError as exc:
        raise OrionError(f"the node answered a damaged snapshot ({exc}); nothing was written: retry") from None
    path = Path(file)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the whole state: for the operator only
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OrionError(f"cannot write {file}: {exc.strerror or exc}") from None
    summary = snap.summary()
    if settings.as_json:
        click.echo(json.dumps({"file": file, **summary}, indent=2))
        return
    click.echo(f"saved {file}: index {summary['index']}, {summary['nodes']} nodes, {summary['tasks']} tasks, "
               f"{summary['services']} services, {summary['size']} bytes")


@offline  # reads the file only
@snapshot.command(epilog=examples("orion operator snapshot inspect backup.snap"))
@click.argument("file", type=click.Path(dir_okay=False))
@_json
@click.pass_context
def inspect(ctx: click.Context, file: str, as_json: bool) -> None:
    """Check FILE and say what it holds (reads the file only; no cluster needed)."""
    summary = _read(file).summary()
    click.echo(json.dumps(summary, indent=2) if settings_of(ctx, as_json).as_json else _describe(summary))


@snapshot.command(epilog=examples("orion operator snapshot restore backup.snap",
                                  "orion operator snapshot restore --force other-cluster.snap"))
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Restore a snapshot of another cluster (its id differs); this "
                                            "cluster then takes that id.")
@_json
@click.pass_context
def restore(ctx: click.Context, file: str, force: bool, as_json: bool) -> None:
    """Replace the cluster's whole state with FILE's, on every node (writes since it are lost)."""
    settings = settings_of(ctx, as_json)
    snap = _read(file)
    try:
        body = settings.client().upload("PUT", "/operator/snapshot", Path(file).read_bytes(),
                                        {"force": "1"} if force else {}, SNAPSHOT_RESTORE_TIMEOUT + 30)
    except ClientError as exc:
        if exc.field == "force":
            raise OrionError(exc.message) from None
        raise fail(exc) from None
    if settings.as_json:
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(f"restored {file} (saved at index {snap.meta.index}) at index {body['index']}: "
               f"{body['nodes']} nodes, {body['tasks']} tasks, {body['services']} services; digest {body['digest']}")


@offline  # reads and writes a stopped agent's data dir; asks no API
@operator.group(epilog=examples("systemctl stop orion && orion operator raft recover --config "
                                "/etc/orion/orion.toml && systemctl start orion"))
def raft() -> None:
    """Raft surgery on this host's data dir (the agent stopped)."""


@raft.command(epilog=examples("orion operator raft recover --config /etc/orion/orion.toml",
                              "orion operator raft recover --data-dir /var/lib/orion --raft-addr 10.0.0.5:7000"))
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="The agent's config file (its data_dir and Raft address).")
@click.option("--data-dir", help="The stopped agent's data dir (else from --config).")
@click.option("--raft-addr", help="This node's Raft address HOST:PORT (else advertise:raft_port from --config).")
@_json
@click.pass_context
def recover(ctx: click.Context, config_file: str | None, data_dir: str | None, raft_addr: str | None,
            as_json: bool) -> None:
    """Make this host's data dir a one-voter cluster after a majority was lost for good.

    Refused while a quorum of the old voters answers on its Raft ports, or while this agent
    runs. Every service, task and node record is kept; join new hosts to it afterwards.
    """
    from orion.agent.recover import RecoverRefused, recover_node  # the Raft backend: loaded only here
    from orion.config import ConfigError, load_config

    if raft_addr:
        host, _, port = raft_addr.rpartition(":")
        if not host or not port.isdigit():
            raise click.BadParameter(f"{raft_addr!r}: write HOST:PORT", param_hint="--raft-addr")
    if not (data_dir and raft_addr):
        try:
            cfg = load_config({"config": config_file, "data_dir": data_dir})
        except ConfigError as exc:
            raise OrionError(f"{exc} (or give --data-dir and --raft-addr)") from None
        data_dir, raft_addr = data_dir or cfg.data_dir, raft_addr or cfg.raft_addr
    try:
        done = recover_node(data_dir, raft_addr)
    except RecoverRefused as exc:
        raise OrionError(str(exc)) from None
    if settings_of(ctx, as_json).as_json:
        click.echo(json.dumps({"self": done.self_addr, "votersBefore": list(done.voters_before),
                               "answered": list(done.answered), "membershipEntries": done.membership_entries,
                               "backup": str(done.backup)}, indent=2))
        return
    click.echo(done.sentence())
