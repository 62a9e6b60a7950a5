"""Joining: how a node finds the cluster (gossip) and becomes a Raft member (HTTP join)."""
