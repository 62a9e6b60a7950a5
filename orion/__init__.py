"""Orion: a distributed container orchestrator (Raft state, SWIM gossip, Docker runtime)."""

__version__ = "0.1.0"
