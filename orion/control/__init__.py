"""The leader's decisions: where tasks go, what heals, how services roll (who votes: ``orion/membership/``).

Each decision is a pure ``plan`` in ``X.py`` (values in, a typed decision
out); its runner is ``X_loop.py`` (class ``XLoop``), which reads one snapshot
of the replicated state, calls the plan and submits what it returned. Runners
act only while this node is the Raft leader.
"""
