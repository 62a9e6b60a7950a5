"""The agent's settings, second half: the API's limits, Raft, the node's loops, gossip.

Each field declares one setting (``orion/config/setting.py``); ``AgentConfig``
(``orion/config/agent.py``) puts the parts together.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from orion.config.setting import at_least, positive, setting


def _fraction(value: float) -> str | None:
    return None if 0 <= value < 1 else f"{value} is not a fraction from 0 to below 1"


def _aes_keys(value: str) -> str | None:
    """Each comma-separated key base64 of 16, 24 or 32 bytes (AES): found at start, not as a
    traceback when the gossip agent is built. The message never shows the key."""
    for number, key in enumerate((k.strip() for k in value.split(",") if k.strip()), start=1):
        try:
            size = len(base64.b64decode(key, validate=True))
        except binascii.Error:
            return f"key {number} is not base64"
        if size not in (16, 24, 32):
            return f"key {number} is {size} bytes; AES keys are 16, 24 or 32 bytes"
    return None


# The most blocking queries (or followed logs) an agent may be told to hold: each is an open
# file descriptor, and systemd's LimitNOFILE for the unit is 65536.
MAX_HELD = 50_000


def _held(value: int) -> str | None:
    return None if value <= MAX_HELD else (f"{value} is more than {MAX_HELD}: each one held is an open "
                                           "connection (a file descriptor)")


@dataclass(frozen=True)
class Runtime:
    """How the node serves, replicates, runs its tasks and gossips."""

    log_level: str = setting(
        "info", "Log level", "Info: what an operator reads in the journal; debug is for chasing a problem.",
        flag=True, choices=("debug", "info", "warning", "error"))
    http_threads: int = setting(
        16, "Request threads of the API's one gunicorn worker",
        "One worker (the Raft engine lives in exactly one process); threads so a slow request "
        "(a POST waiting for its placement) does not block /health. Blocking queries and followed "
        "logs hold none of them while they wait (orion/agent/worker.py).", checks=(at_least(1),))
    max_blocking_queries: int = setting(
        4096, "Blocking queries (?index=N) held at once (429 beyond)",
        "A held blocking query costs no thread, only its connection and a file descriptor: ~16 KB "
        "each over plain HTTP (1,000 held add 16 MB to the worker, measured), so 4,096 is Consul's "
        "\"thousands of watchers per agent\" in ~65 MB, and fits the unit's LimitNOFILE (65536).",
        checks=(at_least(0), _held))
    max_log_follows: int = setting(
        100, "Followed logs served at once (429 beyond)",
        "Followed logs (GET /tasks/<id>/logs?follow=1) this node serves at once, 429 beyond. Each "
        "runs on a thread of its own (and a pump that reads the engine), never on the http_threads: "
        "100 is a hundred `orion logs -f` on one node for ~200 mostly idle threads.",
        checks=(at_least(0), _held), parts=("logs.max_follows",))
    max_exec_sessions: int = setting(
        32, "Exec sessions (orion exec) served at once (429 beyond)",
        "Each `orion exec` session that enters or runs on this node holds a thread of its own for "
        "as long as it lasts (never one of the http_threads) and two connections: 32 is a team "
        "debugging at once; exec is an admin's tool, not a workload's.",
        checks=(at_least(0), _held), parts=("exec.max_sessions",))
    max_body_bytes: int = setting(
        1 << 20, "Largest request body (413 beyond)",
        "Bodies larger than this are refused with 413 before parsing: a task spec is < 10 KB.",
        checks=(at_least(1),), parts=("api.max_body_bytes",))
    write_timeout: float = setting(
        5.0, "Seconds a write may take, retries included (503 beyond)",
        "A write is retried inside this deadline (leader change) and then fails with 503: "
        "an election takes ~1-2 election timeouts.", checks=(positive,),
        parts=("api.write_timeout", "reconcile.write_timeout", "readiness.write_timeout",
               "placement.write_timeout", "healing.write_timeout", "leases.write_timeout"))
    placement_wait: float = setting(
        2.0, "Seconds POST /tasks waits for a placement",
        "POST /tasks waits this long for the leader to place the task before answering "
        "201 with state pending; placement is normally a few milliseconds.",
        checks=(at_least(0),), parts=("api.placement_wait",))
    raft_election_min: float = setting(
        0.4, "Shortest Raft election timeout (s)",
        "Raft election timeout range (s). pysyncobj's default 0.4-1.4 s. Request handling "
        "holds the GIL, so the lower bound leaves room for a busy process before a false election.",
        checks=(positive,), parts=("raft.election_min",))
    raft_election_max: float = setting(
        1.4, "Longest Raft election timeout (s)", "pysyncobj's default upper bound (see raft_election_min).",
        checks=(positive,), parts=("raft.election_max",))
    raft_compaction_entries: int = setting(
        5000, "Journal entries before a snapshot", "Compact the journal into a snapshot after this many "
        "entries (or 300 s).", checks=(at_least(1),), parts=("raft.compaction_entries",))
    durability: str = setting(
        "fsync", "fsync the Raft journal before acknowledging",
        "\"fsync\": an entry is fdatasync'd before the leader counts it and before a follower "
        "acknowledges it, so a write answered 2xx survives a power loss of any minority and of "
        "a majority once it restarts (etcd, Consul and Nomad do the same). One sync covers all "
        "entries of a pass of the Raft loop, so it costs ~one disk flush per round, not per write. "
        "\"none\": never synced (pysyncobj's own behaviour): survives SIGKILL, not power loss.",
        flag=True, choices=("fsync", "none"), parts=("raft.durability",))
    reconcile_interval: float = setting(
        2.0, "Seconds between the node's periodic reconcile passes",
        "ReconcileLoop wakes at once on a change; this periodic pass catches what changed outside "
        "Orion (a container died, someone docker-rm'd it).", checks=(positive,), parts=("reconcile.interval",))
    schedule_interval: float = setting(
        1.0, "Seconds between the leader's periodic placement passes",
        "Leader re-plans pending tasks this often even when nothing changed (capacity freed).",
        checks=(positive,), parts=("placement.interval",))
    reserve_memory: int = setting(
        256 * 1024 * 1024, "Bytes of memory not handed to tasks",
        "Reserved for the OS, the engine and the agent itself: not handed to tasks.",
        checks=(at_least(0),), parts=("capacity.reserve_memory",))
    reserve_memory_fraction: float = setting(
        0.05, "Fraction of memory not handed to tasks", "Reserved for the OS, the engine and the agent "
        "itself (the larger of this and reserve_memory).", checks=(_fraction,),
        parts=("capacity.reserve_memory_fraction",))
    reserve_cpu_millis: int = setting(
        100, "Millicores not handed to tasks", "Reserved for the OS, the engine and the agent itself.",
        checks=(at_least(0),), parts=("capacity.reserve_cpu_millis",))
    stop_timeout: float = setting(
        10.0, "Seconds a container gets to stop before SIGKILL",
        "Stop timeout given to containers before SIGKILL (docker's own default is 10 s).",
        checks=(at_least(0),), parts=("reconcile.stop_timeout",))
    shutdown_timeout: float = setting(
        20.0, "Seconds a graceful shutdown may take",
        "Graceful shutdown: stop taking requests, leave, exit within this.", checks=(positive,))
    # -- gossip (docs/gossip.md; the protocol's own knobs live in orion/gossip/config.py) ------
    gossip_key: str = setting(
        "", "Gossip keys: base64 AES keys, comma-separated, primary first",
        "Empty: derived from raft_secret, so a cluster with a Raft secret always gossips encrypted "
        "and authenticated.", checks=(_aes_keys,), secret=True)
    gossip_probe_interval: float = setting(
        0.5, "Gossip probe period (s)",
        "memberlist's LAN profile probes every 1 s; Orion probes every 0.5 s (and "
        "halves the probe timeout with it) because a dead node's tasks should move within ~6 s: "
        "detection is about a probe period plus the Lifeguard suspicion minimum (4 periods for "
        "n < 10). LAN round trips are ~1 ms, so 250 ms still fails only a node that is stuck.",
        checks=(positive,))
