"""Are reads linearizable under kills, pauses and partitions? (issue #20)

Two runs of ``lincheck_kit.run`` against a real 3-node cluster (each node on its
own loopback address, so one can be cut off): 5 clients write and read 5 keys
through random nodes while the nemesis SIGKILLs and restarts agents, SIGSTOPs
one for a few seconds and cuts one off, the leader half the time. Then the
history goes through our checker (``tests/linearizability.py``).

* **default reads must be linearizable**: every node confirms each read with the
  leader (Raft's ReadIndex, ``orion/raft/patches.py`` rule 9) and answers once its
  replica applied the leader's commit index of the moment the read arrived; a
  node that cannot (cut off, a deposed leader) answers 503.
* **``?stale`` reads must be caught**: the checker has to find a read that
  cannot be ordered — proof that it can fail (``?stale`` is the explicit choice
  of a local read).

Both demand 0 lost acknowledged writes. Replay: ``ORION_LINCHECK_SEED=<seed>``
(printed); ``ORION_LINCHECK_SECONDS`` sets how long each run injects faults
(default 60: the two runs take about two and a half minutes); with
``ORION_LINCHECK_DIR`` set, each run's summary and history (JSON lines) are kept there.
"""

from __future__ import annotations

import os
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest
from harness import Cluster
from lincheck_kit import Run, Workload, run
from linearizability import READ, WRITE, Status, Verdict

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

SEED = int(os.environ.get("ORION_LINCHECK_SEED") or random.SystemRandom().randrange(2**31))
SECONDS = float(os.environ.get("ORION_LINCHECK_SECONDS", "60"))
# Loopback addresses of our own (the self-healing kit uses 127.0.0.11-15).
IPS = ["127.0.0.41", "127.0.0.42", "127.0.0.43"]


class NotLinearizable(AssertionError):
    """The checker proved a history not linearizable (the one failure the xfail expects)."""


@pytest.fixture
def loopback_cluster(request, tmp_path, docker_host):
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        pytest.skip("partitions need root and iptables")
    cluster = Cluster(root=tmp_path, docker_host=docker_host, ips=IPS)
    request.node.orion_cluster = cluster
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def checked_run(cluster: Cluster, stale: bool, image: str) -> Run:
    """One run; fails (plainly) on what must hold whatever the reads are: enough work done,
    every kind of fault injected, no acknowledged write lost, a search that finished."""
    print(f"linearizability run: seed {SEED} (replay: ORION_LINCHECK_SEED={SEED}), {SECONDS:.0f}s")
    keys = [f"lin{SEED % 100000}-{i}" for i in range(5)]
    result = run(cluster, SEED, SECONDS, Workload(keys, stale=stale, image=image))
    summary = result.summary()
    print(summary)
    if os.environ.get("ORION_LINCHECK_DIR"):
        print(f"history and summary: {result.dump(Path(os.environ['ORION_LINCHECK_DIR']))}.*")
    done = Counter((op.f, op.status) for op in result.history)
    assert done[(WRITE, Status.OK)] >= 50 and done[(READ, Status.OK)] >= 100, f"too little work\n{summary}"
    faults = {text.split()[0] for _, text in result.events}
    if SECONDS >= 30:
        assert {"kill", "pause", "partition"} <= faults, f"a fault kind never struck\n{summary}"
    leaks = [text for _, text in result.events if text.startswith("cut ") and not text.startswith("cut held")]
    assert not leaks, f"a partition did not isolate its node: {leaks}\n{summary}"
    assert not result.lost, f"{len(result.lost)} acknowledged writes lost\n{summary}"
    spent = [k.key for k in result.report.keys.values() if k.verdict is Verdict.UNKNOWN]
    assert not spent, f"the checker's budget ran out on {spent}: no verdict\n{summary}"
    return result


def test_default_reads_are_linearizable_under_kills_pauses_and_partitions(loopback_cluster, test_image):
    result = checked_run(loopback_cluster, stale=False, image=test_image)
    if not result.report.linearizable:
        raise NotLinearizable(f"seed {SEED}: default reads are not linearizable\n{result.summary()}")


def test_stale_reads_are_caught_by_the_checker(loopback_cluster, test_image):
    result = checked_run(loopback_cluster, stale=True, image=test_image)
    assert result.report.violations, f"seed {SEED}: no stale read found in a run of local reads\n{result.summary()}"
    assert result.report.stale, f"seed {SEED}: violations, but no read measured stale\n{result.summary()}"
