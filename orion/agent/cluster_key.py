"""When an agent needs the cluster key (``cluster_key_file``), and what it does without one.

The rule, from the operator's side: **a node needs the key once its cluster holds secrets.** A
cluster of the previous release holds none, so an upgrade without a key file keeps starting; a
demo or a test cluster that never uses secrets needs no key. Secrets can only be created while
every alive node holds the key they are sealed with (``orion/api/secrets.py``), so a cluster that
holds them has its key everywhere, and a node restarted without it afterwards (a lost file, a
new config management run that forgot it) is the mistake this catches: its start is refused with
exit 2 and one line, before it joins, rather than later on a task that cannot open its secret.

The node learns that the cluster holds secrets from its own replica, and remembers it in its data
directory (``secrets-held``, holding no secret) so that the check needs nothing but the disk at
start. A node that joins a cluster holding secrets without a key writes the mark too, and says
once in its log that its next start will be refused; meanwhile tasks that read secrets fail on
it (and their restart policy places them elsewhere).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from orion.store.port import Store

log = logging.getLogger("orion.agent.cluster_key")

MARK = "secrets-held"


def start_problem(data_dir: str, has_key: bool) -> str | None:
    """Why this agent must not start (one line), or None."""
    if has_key or not (Path(data_dir) / MARK).exists():
        return None
    return (f"--cluster-key-file: this node's cluster holds secrets ({Path(data_dir) / MARK}) and no cluster "
            "key is set; install the cluster's key file (mode 0600; the Ansible role distributes it) and set "
            "cluster_key_file")


def watch_for_secrets(store: Store, data_dir: str, has_key: bool, stop: threading.Event,
                      period: float = 1.0) -> None:
    """Write the mark once this node's replica holds a secret or registry credentials, then return."""
    mark = Path(data_dir) / MARK
    if mark.exists():
        return
    changed = threading.Event()
    store.add_listener(lambda index: changed.set())
    while not stop.is_set():
        held, _ = store.read(lambda m: bool(m.secrets.objects or m.secrets.registries))
        if held:
            mark.write_text("this cluster holds secrets: this node needs its cluster key to start\n")
            os.chmod(mark, 0o600)
            if not has_key:
                log.error("this cluster holds secrets and this node has no cluster key: tasks that read "
                          "them fail here, and its next start will be refused; set cluster_key_file")
            return
        changed.wait(period)
        changed.clear()
