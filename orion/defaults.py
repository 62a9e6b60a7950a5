"""The numbers that are not settings of one agent, each with the reason beside it.

The agent's settings (what an operator may change per node: ports, timeouts,
graces) are declared once each, with their defaults and reasons, in
``orion/config/`` (``AgentConfig``; docs/settings.md lists them). Here: the
fixed numbers of the Raft machinery, what the replicated state remembers (the
same on every replica, so never per agent), and the defaults of a service spec.
"""

from __future__ import annotations

from typing import Any

# -- start-up (issue #14, "Start fast") --------------------------------------------------------
# How soon a Raft node dials a peer again after a failed or lost connection (pysyncobj's
# connectionRetryTime, 1 s by default). Of two nodes only the one with the greater address
# dials, so a node restarting with the lesser one waits for its peers to redial: up to this
# long (half of it on average) before it hears its leader and answers /health. A refused
# connect on a live host costs a socket and a poller entry, and an unanswered one is not
# retried while pending, so 5 per second per peer is cheap; it also shortens the window in
# which a restarted follower, connected to another follower but not yet to the leader,
# times out and disrupts the cluster with an election.
RAFT_CONNECT_RETRY = 0.2

# How often the leader sends a non-voting replica an append_entries that carries nothing new
# (orion/raft/replica_heartbeats.py, patches.py rule 5); voters keep pysyncobj's 0.1 s, and anything new (entries,
# a higher commit index or term) goes to replicas at once. A replica neither votes nor counts
# for a commit, so only its connection depends on it: pysyncobj drops one silent for 3.5 s
# (connectionTimeout), 7 periods. At 95 replicas: ~190 encrypted frames/s each way instead of 950.
REPLICA_HEARTBEAT = 0.5

# -- the replicated state's memory (orion/state/history.py) -----------------------------------
# Not settings: every replica must forget the same entries at the same log index, so these are
# fixed per version of Orion (a snapshot carries the values it was written with), never per agent.
#
# Request ids whose answer is kept for a retry: enough to cover every retry window we have (a
# client retries for seconds, the write path for one election) many times over, small enough
# to snapshot.
REMEMBERED_REQUESTS = 10_000
# Finished tasks (stopped, or failed/completed and not to be restarted) kept per service: Swarm's
# task-history-limit default, 5. Enough to read why the last few replicas ended; a service that
# is scaled up and down or rolled out all day does not grow the state with it.
FINISHED_TASKS_PER_GROUP = 5
# Finished tasks kept in all, oldest purged first (Kubernetes' terminated-pod-gc-threshold idea):
# each one-off task is its own group, so only this bounds them. A record is ~1 KB of snapshot and
# of every GET /tasks answer (not paginated yet): 1,000 is ~1 MB, and still the last 1,000 ended
# tasks for `orion ps -a` and `orion inspect`.
FINISHED_TASKS_TOTAL = 1_000

# -- services (docs/services.md) -----------------------------------------------------------------
# Every default of a service spec, with its reason (orion/domain/service.py and the API read them), and
# the few numbers of the machinery that runs services.
SERVICE_DEFAULTS: dict[str, Any] = {
    # Replace one replica at a time (Nomad max_parallel 1, Swarm parallelism 1): the smallest
    # step that still moves, and a bad version costs at most one replica before it is caught.
    "max_parallel": 1,
    # A new replica counts once healthy this long (Nomad's min_healthy_time 10 s; Swarm watches
    # 5 s). Most bad versions die within seconds of starting (config, port bind, a database
    # that refuses them); 10 s catches those and costs 30 s on a 3-replica rollout.
    "min_healthy_time": 10.0,
    # A new replica not counted healthy this long after it was created fails the deployment
    # (Nomad's healthy_deadline 5 m): room for an image pull and a slow start, not for a hang.
    "healthy_deadline": 300.0,
    # Nomad's default: a failed deployment stops where it is instead of changing production on
    # its own. With start-first the old replicas keep serving; at most max_parallel are affected.
    "auto_revert": False,
    # Start the new replica before stopping the old one: "update without downtime" needs the
    # capacity kept (Swarm defaults to stop-first; a service with a static host port gets
    # stop-first anyway, see orion/control/deployment.py).
    "order": "start-first",
    # A service is meant to keep running: any exit is restarted (Swarm's condition "any").
    "restart_policy": "always",
    # Health checks. The first check runs at once, then every interval (k8s periodSeconds 10;
    # Docker's 30 s is slow for a rollout that waits on it).
    "check_interval": 10.0,
    # A check that takes longer than this failed (k8s 1 s is tight for a cold JVM; 2 s).
    "check_timeout": 2.0,
    # Failures during this period after start do not count (Docker's start_period, default 0).
    "check_start_period": 0.0,
    # Consecutive failures that make a replica unhealthy (Docker retries 3, k8s 3): one lost
    # packet or GC pause is not a failure.
    "check_failures": 3,
    # Replace without a new spec (``orion service rebalance``) only when asked: moving replicas
    # that serve is a change production did not ask for (Swarm and Nomad never rebalance, moby#24103).
    "rebalance": False,
    # -- jobs (mode "job", docs/services.md) ----------------------------------------------------
    # One run is one successful attempt unless told otherwise (Kubernetes' Job and Swarm's
    # replicated-job both default completions and parallelism to 1).
    "completions": 1,
    "parallelism": 1,
    # Failed attempts retried before the run fails: Nomad's batch restart attempts (3); Kubernetes'
    # backoffLimit 6 is for pods that fail on a flaky node as often as on their own.
    "retries": 3,
    # The wait before a retry, doubled per failure of the run (Kubernetes: 10 s doubling, capped at
    # 6 min): a crash-looping job does not hammer a database; the cap keeps a retry within minutes.
    "backoff": 10.0,
    "backoff_max": 360.0,
    # A cron job whose previous run still goes skips the slot (Nomad's prohibit_overlap; Kubernetes
    # defaults to Allow): a nightly backup that runs long must not start a second copy over the first.
    "overlap": "forbid",
    # -- the machinery --------------------------------------------------------------------------
    # Finished runs kept per job (Kubernetes keeps 3 successful and 1 failed by default): enough to
    # read why last night's backup failed, bounded so a job every minute does not grow every snapshot.
    "runs_kept": 10,
    # Versions kept per service (Nomad's job_max_versions is 6, Swarm keeps one previous spec): enough
    # to roll back a few releases by number and to read what a failed one was, bounded so a service
    # updated by CI every hour does not grow the replicated state and every snapshot forever. The
    # last fully healthy version is kept besides, however old, so auto-revert always has its spec.
    "versions_kept": 10,
    # The leader's deployment pass runs on every apply; this period catches what changes by time
    # alone (a replica counting after min_healthy_time, a healthy_deadline passing). 0.5 s is the
    # healer's period too: a rollout waits at most that beyond min_healthy_time per step.
    "deploy_interval": 0.5,
    # How often a node looks for health checks that are due: a check's interval is at least 1 s,
    # so a quarter second runs each within 250 ms of when it is due, at the cost of one read of the
    # local replica (no engine call) per tick.
    "check_tick": 0.25,
    # Health checks a node runs at once (a thread each): checks are I/O waits of up to their timeout,
    # so a node with many replicas must not run them one after another; 8 keeps a 2-core node calm.
    "check_workers": 8,
}

# -- snapshots (docs/operations.md) ---------------------------------------------------------------
# Largest snapshot file PUT /v1/operator/snapshot accepts (the API's other bodies stop at
# max_body_bytes, 1 MiB). 10,000 tasks and 500 services make a ~0.4 MB file, 12 MB of state
# (bench/snapshot.py); 256 MiB is orders of magnitude of growth, and still a bound on what one
# request may make a node hold in memory (the file, its state, and the entry that carries it).
SNAPSHOT_MAX_BYTES = 256 << 20
# How long a restore may take to commit: one Raft entry carrying the whole (compressed) state,
# written, synced and sent to every replica, each of which decompresses and checks it before
# applying it (~2-5 s at 10,000 tasks on a loaded 2-core machine, bench/snapshot.py). An ordinary
# write's 5 s would time out a large restore on a slow disk, and nothing else waits on it.
SNAPSHOT_RESTORE_TIMEOUT = 60.0

# -- container settings (orion/domain/container.py) ------------------------------------------------
# The longest stopGracePeriod a task may ask for. A node stops a container within its reconcile
# pass (the engine's stop call waits for the exit or the grace, then SIGKILL), and the pass's
# other starts and stops wait behind it: 5 minutes covers a database's checkpoint or a queue
# worker finishing its job (Swarm and Compose default to 10 s) without a typo holding a node's
# reconciler for hours.
MAX_STOP_GRACE = 300.0

# -- secrets and configs (docs/secrets.md) ----------------------------------------------------------
# The largest secret: every version travels through the Raft log sealed (+~40% as base64 in JSON)
# and sits in every replica's memory and snapshot. 64 KiB holds any password, token, TLS key or
# certificate chain; Swarm allows 500 KB, Kubernetes 1 MiB, both for the same reasons of size.
MAX_SECRET_BYTES = 64 * 1024
# The largest config: a config file is bigger than a password (an nginx.conf, a logging setup), and
# 256 KiB (~350 KB in a log entry) still keeps one entry well under the 1 MiB request body limit.
MAX_CONFIG_BYTES = 256 * 1024
# -- the overlay network's settings, fixed at bootstrap (orion/domain/network.py) -----------------
# The defaults of ``NetworkSettings``, what the bootstrapping agent commits unless configured
# otherwise, and what the API's published-port check falls back to before any is committed.
NETWORK_DEFAULTS: dict[str, Any] = {
    # Flannel's and k3s's cluster CIDR (10.42.0.0/16): private, rarely used by office or cloud LANs,
    # and 256 host subnets of /24 each, more hosts than one Raft cluster of Orion is meant for.
    "cidr": "10.42.0.0/16",
    # A /24 per host: 253 container addresses (.1 is the bridge gateway, .0 the VTEP) per host,
    # Docker's and flannel's default size, and the prefix people read at a glance.
    "host_prefix": 24,
    # One overlay, one VXLAN network identifier; VNI 1 is flannel's default too.
    "vni": 1,
    # IANA's VXLAN port (RFC 7348); Linux's own default of 8472 predates it.
    "port": 4789,
    # VXLAN over IPv4 adds 50 bytes (outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8): a 1500-byte
    # underlay carries 1450-byte overlay frames without fragmenting (flannel's 1450).
    "mtu": 1450,
    # Service VIPs come from k3s's service CIDR, next to the cluster's and never overlapping it.
    "service_cidr": "10.43.0.0/16",
}
# What VXLAN over IPv4 adds to every frame: a host's underlay MTU must be at least mtu + this.
VXLAN_OVERHEAD = 50

# The local names of the overlay's devices: not settings, every host uses the same ones so that
# `ip link`, `bridge fdb` and docs/service-discovery.md read alike everywhere. orion.<vni> follows
# flannel's flannel.<vni>; the bridge name is Docker's com.docker.network.bridge.name.
NETWORK_BRIDGE = "orion0"
NETWORK_NAME = "orion"  # the Docker network tasks join
# The largest overlay MTU an InitNetwork proposes from a measured underlay (see network_mtu).
MAX_AUTO_MTU = 9000
# A task's resolver: Orion's server on the bridge gateway, names searched in the service zone
# first (`curl http://web/` finds web.service.orion) then the zone (`web.service`).
DNS_SEARCH = ("service.orion", "orion")
# An agent whose DNS bind is taken (another agent on the same engine serves it: the demo) tries
# again this often, so when that agent stops one of the others takes over within this long.
DNS_BIND_RETRY = 2.0
