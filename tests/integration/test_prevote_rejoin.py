"""A voter removed from the configuration, restarted with its old data, must not change the
leader's term (issue #20; ``orion/raft/patches.py`` rule 10, pre-vote).

The autopilot removes a voter that has been dead for ``dead_voter_cleanup`` and adds it back
once it returns. The returning node restarts from its journal: its election timer fired long
ago, and the moment it is connected again pysyncobj would campaign at a higher term, and the
healthy leader would step down for it. With pre-vote it asks first; every voter refuses (the
leader leads, the other follower hears it), so it follows the leader's next heartbeat instead.
"""

from __future__ import annotations

import time

import pytest
from harness import Cluster, running

pytestmark = [pytest.mark.docker, pytest.mark.cluster]


def raft(node) -> dict:
    return node.get("/raft", timeout=2).json()


def test_a_removed_voter_restarted_with_its_old_data_does_not_change_the_leaders_term(
        tmp_path, docker_host, docker_client, request):
    cluster = Cluster(root=tmp_path, docker_host=docker_host, extra_env={"ORION_DEAD_VOTER_CLEANUP": "2"})
    request.node.orion_cluster = cluster
    with running(cluster, docker_client):
        leader = cluster.wait(cluster.leader, 20, "a leader")
        victim = next(n for n in cluster.nodes if n is not leader)
        cluster.kill(victim)
        cluster.wait(lambda: victim.raft_addr not in raft(leader)["members"], 60, "the dead voter removed")
        before = raft(leader)
        assert victim.data_dir.joinpath("raft.journal").exists()  # its old data, still there
        cluster.start_node(victim)  # the restart path: its journal and member list as they were
        cluster.wait(lambda: victim.raft_addr in raft(leader)["members"], 60, "the returning node added back")
        cluster.wait(victim.healthy, 30, "the returning node caught up")
        time.sleep(3.0)  # several election timeouts: room for any disruption to show
        after = raft(leader)
        assert after["is_leader"] and after["term"] == before["term"], (before["term"], after["term"])
        assert raft(victim)["term"] == before["term"] and raft(victim)["leader"] == leader.raft_addr
