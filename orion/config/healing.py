"""The agent's settings, third part: self-healing and day-2 operations (docs/self-healing.md).

Each field declares one setting (``orion/config/setting.py``); ``AgentConfig``
(``orion/config/agent.py``) puts the parts together.
"""

from __future__ import annotations

from dataclasses import dataclass

from orion.config.setting import at_least, positive, setting


@dataclass(frozen=True)
class Healing:
    """When a node counts as gone, how tasks restart and move, how voters and drains are tended."""

    node_dead_after: float = setting(
        3.0, "Seconds a registered node gossip never saw may stay missing",
        "Gossip (SWIM/Lifeguard) judges the members it knows; a registered node that the leader's "
        "gossip view has not seen in its current life is declared dead once missing this long. A "
        "restarting agent is back in gossip within a second or two, so it does not trip, while a "
        "replacement still runs within the 6 s goal (dead 3 s + place + start ~1.5 s).",
        checks=(positive,), parts=("liveness.node_dead_after",))
    failover_grace: float = setting(
        5.0, "Seconds after an election in which nobody is declared dead",
        "After this node becomes leader, nobody is declared dead for this long (Nomad's failover "
        "heartbeat TTL): the new leader's peer connections and views are still forming, and an "
        "election must not cause a mass reschedule. Longer than node_dead_after plus a redial.",
        checks=(at_least(0),), parts=("liveness.failover_grace",))
    restart_delay: float = setting(
        1.0, "Seconds before a task's first restart (doubling after)",
        "Restart policy: first restart after 1 s, doubling each time (Nomad/Swarm style backoff).",
        checks=(positive,), parts=("restart.delay",))
    restart_max_delay: float = setting(
        30.0, "Longest wait between restarts (s)",
        "Never waiting more than 30 s: a crash-looping task still gets a try twice a minute.",
        checks=(positive,), parts=("restart.max_delay",))
    restart_limit: int = setting(
        10, "Failures within restart_window after which a task stays failed",
        "After 10 failures within restart_window the task stays failed: a task that cannot "
        "run is shown as failed instead of burning the node forever (Swarm's max_attempts idea).",
        checks=(at_least(0),), parts=("restart.limit",))
    restart_window: float = setting(
        300.0, "Seconds over which restart_limit counts failures", "Swarm's restart window (see restart_limit).",
        checks=(positive,), parts=("restart.window",))
    restart_local_attempts: int = setting(
        3, "Restarts in a row on one node before the task is placed elsewhere",
        "Restarts in a row on one node before the task is placed elsewhere: a local restart is "
        "cheap (image cached), but three crashes in a row suggest the node is the problem.",
        checks=(at_least(0),), parts=("restart.local_attempts",))
    voter_cap: int = setting(
        5, "Raft voters at most; further nodes are non-voting replicas",
        "Raft voters: 5 survive two failures; more voters only slow every commit (Consul/Nomad cap).",
        checks=(at_least(1, "odd numbers: 3 or 5"),), parts=("autopilot.voter_cap",))
    dead_voter_cleanup: float = setting(
        30.0, "Seconds a dead voter keeps its vote",
        "A voter dead this long is removed from Raft so the next failure is survivable. Longer "
        "than an agent restart or upgrade (seconds), so a reboot does not cost its vote.",
        checks=(positive,), parts=("autopilot.dead_voter_cleanup",))
    heal_interval: float = setting(
        0.5, "Seconds between the leader's periodic healing passes",
        "The leader's healing pass (liveness, lost tasks, restarts) also runs on every apply; "
        "this period catches time-based decisions (a backoff expiring, a node going silent).",
        checks=(positive,), parts=("healing.interval",))
    leave_on_terminate: bool = setting(
        False, "SIGTERM drains the node instead of restarting in place",
        "SIGTERM (systemctl stop|restart orion) stops the agent, not the node's work: the containers "
        "belong to dockerd and keep running, the agent hands Raft leadership over, announces itself "
        "\"restarting\" and adopts them when it starts again (Nomad #2052: agent downtime must never be "
        "service downtime; a kubelet restart touches no pod). True: SIGTERM drains instead (its tasks "
        "are moved, Consul's leave_on_terminate), for decommissioning; bounded by drain_timeout, "
        "well inside shutdown_timeout. `orion node drain` does the same for a node that stays up.")
    drain_timeout: float = setting(
        10.0, "Seconds a drain on SIGTERM may take",
        "Bounds the drain of leave_on_terminate, well inside shutdown_timeout.", checks=(at_least(0),))
    # -- day-2 operations (issue #11) -----------------------------------------------------------
    engine_down_grace: float = setting(
        8.0, "Seconds without an engine answer before the node is not ready",
        "Engine health is node health (Kubernetes marks a node NotReady when its container runtime "
        "is down): a node whose engine has not answered for this long reports itself not ready and "
        "the leader moves its tasks. `systemctl restart docker` is ~2-5 s (stop, then load its "
        "state), so 8 s does not trip on it, while tasks still run elsewhere ~11 s after the engine "
        "died (8 s + a probe period + heal pass, placement and a container start of ~2 s).",
        checks=(positive,), parts=("readiness.grace",))
    engine_probe_interval: float = setting(
        1.0, "Seconds between pings of the engine",
        "How often the node pings its engine (GET /_ping, nothing to the engine); a ping slower than "
        "this counts as no answer. 1 s resolution is an eighth of the grace.",
        checks=(positive,), parts=("readiness.interval",))
    drain_max_parallel: int = setting(
        1, "Tasks of one service a drain moves at a time",
        "Drain migrates (Nomad's migrate block): at most this many tasks of one service move at a "
        "time, each replacement running before its original stops. Nomad's migrate max_parallel "
        "default, 1: a service never has more than one replica between two homes.",
        checks=(at_least(1, "a drain must be able to move something"),), parts=("drain.max_parallel",))
    drain_deadline: float = setting(
        120.0, "Seconds after which a drain moves the rest the hard way",
        "Nomad's drain deadline: after this the tasks still on a drained node are moved the hard "
        "way (marked lost, placed again) and old copies stop. One migration takes ~1-2 s; two "
        "minutes leave room for slow image pulls yet free a node in maintenance even if a task "
        "cannot move (no node has its static port free). Nomad's 1 h is sized for batch jobs.",
        checks=(positive,), parts=("drain.deadline",))
    drain_min_running: float = setting(
        3.0, "Seconds a replacement runs before its original stops",
        "A migration's original stops once its replacement has been running this long (Nomad's "
        "migrate min_healthy_time, 10 s there): \"running\" means the container started, not that its "
        "server listens yet; most bind their port within a second or two. 3 s per step keeps a "
        "drain of one replica at a time quick; a task with a health check also needs it healthy.",
        checks=(at_least(0),), parts=("drain.min_running",))
    restart_grace: float = setting(
        30.0, "Seconds a node that announced its restart may stay away",
        "How long a node that announced its restart may stay away before its tasks are moved. "
        "Nomad's heartbeat_grace (10 s) and Kubernetes' node-monitor-grace-period (40 s) bracket it: "
        "an agent restart or package upgrade takes a few seconds (a cold Python start, Raft catch-up), "
        "30 s leaves room for a slow one, and a host away longer than that is a node loss. "
        "Counted on the leader from when it first saw the node restarting; a node that vanishes "
        "unannounced (SIGKILL, crash) gets none and is dead after gossip detection (~3-4 s).",
        checks=(at_least(0),), parts=("liveness.restart_grace",))
    orphan_grace: float = setting(
        30.0, "Seconds a container's task may be unknown before the container is removed",
        "A container labelled as this node's whose task the replicated state no longer knows (purged "
        "while the node was down, or taken away by a restore) is removed once its task has been "
        "unknown this long, counted only while the node is caught up with a leader "
        "(orion/node/orphans.py). Long enough to undo a restore of the wrong snapshot by restoring "
        "the right one before anything stops; short, because an orphan holds memory and host ports "
        "the scheduler counts as free here (a task placed on them fails to start until the orphan "
        "goes). restart_grace's 30 s again.",
        checks=(at_least(0),), parts=("reconcile.orphan_grace",))
    # -- overlay network leases (docs/network-leases.md) --------------------------------------------
    lease_dead_grace: float = setting(
        600.0, "Seconds a dead host keeps its subnet lease",
        "A host whose every agent gossip has declared dead keeps its subnet lease this long before "
        "the leader releases it: a reboot or a reinstall of the agent (minutes) gets the same /24 "
        "back, so its containers' addresses and every peer's routes stay as they were. Flannel's "
        "lease TTL is 24 h; 10 min bounds how long a dead host's /24 is unusable while a 256-subnet "
        "pool is in no danger of running out. Counted on the leader from when it first saw them "
        "all dead: a new leader starts counting again (a lease is kept longer, never shorter).",
        checks=(at_least(0),), parts=("leases.grace",))
    lease_reclaim_interval: float = setting(
        1.0, "Seconds between the leader's periodic lease passes",
        "How often the leader's lease pass runs besides on every apply: the resolution of that "
        "\"dead since\" clock; one read of the local replica per second on the leader only.",
        checks=(positive,), parts=("leases.interval",))
