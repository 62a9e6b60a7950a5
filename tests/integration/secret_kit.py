"""What the secrets tests (and bench/secret_rollout.py) share: a cluster whose agents hold a cluster
key file and mount their tmpfs under the test's directory, and the searches that prove a value is
nowhere it must not be."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
from harness import Cluster, running

from orion.domain.sealing import new_key


def write_key_file(path: Path, *keys: str) -> Path:
    path.write_text("".join(k + "\n" for k in keys))
    os.chmod(path, 0o600)
    return path


def secrets_cluster(root: Path, docker_host: str, size: int = 3, key: str | None = None) -> Cluster:
    """``size`` agents on one engine, each with its own key file (the same key) and its task files
    under ``root/run`` (not a tmpfs: each agent mounts one), snapshotting every 20 entries so the
    searches below also read snapshots."""
    key = key or new_key()
    cluster = Cluster(root=root, docker_host=docker_host, size=size,
                      extra_env={"ORION_TASK_FILES_DIR": str(root / "run"), "ORION_RAFT_COMPACTION_ENTRIES": "20"})
    cluster.node_args = [["--cluster-key-file", str(write_key_file(root / f"key-{n.id}", key))]
                         for n in cluster.nodes]
    return cluster


def key_file(cluster: Cluster, index: int) -> Path:
    return Path(cluster.node_args[index][1])


@contextmanager
def running_secrets(cluster: Cluster, client: docker.DockerClient) -> Iterator[Cluster]:
    """The cluster started; stopped, its containers removed and its tmpfs mounts undone afterwards."""
    try:
        with running(cluster, client):
            yield cluster
    finally:
        unmount_under(cluster.root / "run")


def unmount_under(root: Path) -> None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point.startswith(str(root)):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def forms(value: str) -> list[bytes]:
    """How a value could show up: as is, base64 (how bodies carry it), JSON-escaped."""
    raw = value.encode()
    return [raw, base64.b64encode(raw), raw.hex().encode()]


def files_holding(value: str, roots: Iterable[Path], skip: Iterable[Path] = ()) -> list[str]:
    """Every regular file under ``roots`` (not below ``skip``) whose bytes hold ``value`` in a form."""
    needles, skipped = forms(value), [str(s) for s in skip]
    found = []
    for root in roots:
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if not any(os.path.join(folder, d).startswith(s) for s in skipped)]
            for name in names:
                path = os.path.join(folder, name)
                try:
                    data = Path(path).read_bytes() if os.path.isfile(path) and not os.path.islink(path) else b""
                except OSError:
                    continue
                if any(n in data for n in needles):
                    found.append(path)
    return found


def holds(value: str, text: str | bytes) -> bool:
    data = text.encode() if isinstance(text, str) else text
    return any(n in data for n in forms(value))


def in_container(client: docker.DockerClient, container_id: str, *argv: str) -> str:
    result = client.containers.get(container_id).exec_run(list(argv))
    assert result.exit_code == 0, result.output
    return result.output.decode()


def audit_records(data_dirs: Iterable[Path], path_end: str) -> list[dict]:
    """The audit records (every agent's ``audit.log`` beside its journal, and its rotated files) of
    writes to a path ending ``path_end`` (``/v1`` or not), oldest first per agent."""
    records = []
    for folder in data_dirs:
        rotated = sorted(folder.glob("audit.log.*"), key=lambda p: -int(p.suffix[1:]))
        for log in [*rotated, folder / "audit.log"]:
            lines = log.read_text().splitlines() if log.exists() else []
            records += [r for r in map(json.loads, lines) if r.get("path", "").endswith(path_end)]
    return records
