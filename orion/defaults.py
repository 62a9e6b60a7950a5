"""Every default of the agent in one place, with the reason beside each number.

``orion/config.py`` layers flags > ``ORION_*`` environment > TOML file > these.
"""

from __future__ import annotations

DEFAULTS: dict[str, object] = {
    # Identity: the hostname is unique in any sane fleet and stable across restarts.
    "id": "",  # empty -> socket.gethostname()
    # Loopback by default: an agent must be told explicitly to listen on a network.
    "bind": "127.0.0.1",
    # What peers dial; empty -> the bind address (wrong for 0.0.0.0: config checks that).
    "advertise": "",
    # The seed's ports: API 8000, gossip 6000, Raft 7000.
    "port": 8000,
    "gossip_port": 6000,
    "raft_port": 7000,
    "data_dir": "./orion-data",
    # The engine's usual socket; tests and the demo point elsewhere.
    "docker_host": "unix:///var/run/docker.sock",
    "bootstrap": False,
    "join": [],
    # pysyncobj unpickles every frame: without a secret an open Raft port is remote code
    # execution. Required unless insecure_raft is set and the bind address is loopback.
    "raft_secret": "",
    "insecure_raft": False,
    "api_token": "",
    "labels": {},
    "log_level": "info",
    # One gthread worker (the Raft engine lives in exactly one process); threads so a slow
    # request (a POST waiting for its placement) does not block /health.
    "http_threads": 16,
    # Bodies larger than this are refused with 413 before parsing: a task spec is < 10 KB.
    "max_body_bytes": 1 << 20,
    # A write is retried inside this deadline (leader change) and then fails with 503:
    # an election takes ~1-2 election timeouts.
    "write_timeout": 5.0,
    # POST /tasks waits this long for the leader to place the task before answering
    # 201 with state pending; placement is normally a few milliseconds.
    "placement_wait": 2.0,
    # Raft election timeout range (s). pysyncobj's default 0.4-1.4 s. Request handling
    # holds the GIL, so the lower bound leaves room for a busy process before a false election.
    "raft_election_min": 0.4,
    "raft_election_max": 1.4,
    # Compact the journal into a snapshot after this many entries (or 300 s).
    "raft_compaction_entries": 5000,
    # Reconciler wakes at once on a change; this periodic pass catches what changed outside
    # Orion (a container died, someone docker-rm'd it).
    "reconcile_interval": 2.0,
    # Leader re-plans pending tasks this often even when nothing changed (capacity freed).
    "schedule_interval": 1.0,
    # Reserved for the OS, the engine and the agent itself: not handed to tasks.
    "reserve_memory": 256 * 1024 * 1024,
    "reserve_memory_fraction": 0.05,
    "reserve_cpu_millis": 100,
    # Stop timeout given to containers before SIGKILL (docker's own default is 10 s).
    "stop_timeout": 10.0,
    # Graceful shutdown: stop taking requests, leave, exit within this.
    "shutdown_timeout": 20.0,
}
