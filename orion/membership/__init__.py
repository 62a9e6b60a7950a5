"""Membership: who is in the cluster, who votes, who is alive.

One room for every decision about members; the API and the agent only call it.
``join.py`` is the joining side (find members through gossip, ask to be
admitted, take the role the leader gave); ``members.py`` the member side (list,
admit, remove, the join proof); ``gossip_agent.py`` the node's SWIM/Lifeguard
member (discovery, metadata, the view of who is alive); ``liveness.py`` turns
that view into registry statuses on the leader; ``autopilot.py`` tends the Raft
voters (remove the dead, add back the healthy). The voter-or-replica rule runs
under the store's membership lock (``orion/store/admission.py``), and the
pysyncobj mechanics of a change stay in ``orion/raft/membership.py``.
"""
