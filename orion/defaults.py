"""Every default of the agent in one place, with the reason beside each number.

``orion/config.py`` layers flags > ``ORION_*`` environment > TOML file > these.
"""

from __future__ import annotations

from typing import Any

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
    # The engine's usual socket, used when neither Orion's settings nor docker's own DOCKER_HOST
    # name one (orion/config.py); tests and the demo point elsewhere.
    "docker_host": "unix:///var/run/docker.sock",
    # Accepted for the seed's command lines and only checked against "join": what forms a new
    # cluster is a node with no "join" and no Raft state in data_dir (it starts as its own leader).
    "bootstrap": False,
    "join": [],
    # pysyncobj unpickles every frame: without a secret an open Raft port is remote code
    # execution. Required unless insecure_raft is set and the bind address is loopback.
    "raft_secret": "",
    "insecure_raft": False,
    "api_token": "",
    # Secrets from a file (mode 0600, readable by the agent alone) or the environment, never
    # argv: a command line is world-readable in ps and /proc. Trailing newlines are dropped.
    "raft_secret_file": "",
    "api_token_file": "",
    # -- TLS on the API (README "TLS") -------------------------------------------------------
    # Empty: plain HTTP, for loopback demos and tests. A certificate and its key make the API
    # HTTPS, and the same pair is this agent's client certificate towards its peers (so give
    # it extendedKeyUsage serverAuth and clientAuth, as Nomad's and Consul's guides do).
    "tls_cert": "",
    "tls_key": "",
    # The CA whose client certificates the API requires (mTLS, Nomad's verify_https_client).
    # Empty: any client may connect and the API token alone guards the API.
    "tls_client_ca": "",
    # The CA that signed the peers' server certificates, to verify them when joining and
    # probing. Empty: tls_client_ca (one cluster CA signs both), else the system's trust store.
    "tls_ca": "",
    "labels": {},
    # Host volumes this node offers to tasks, name -> absolute path (Nomad's host_volume): a task
    # mounts one by name and is placed only on nodes that declare it. None by default: handing
    # part of the host's filesystem to containers is the operator's decision, path by path. The
    # path must exist (the agent creates nothing: owner and mode are the operator's to choose).
    "host_volumes": {},
    "log_level": "info",
    # One gthread worker (the Raft engine lives in exactly one process); threads so a slow
    # request (a POST waiting for its placement) does not block /health.
    "http_threads": 16,
    # Followed logs (GET /tasks/<id>/logs?follow=1) this node serves at once, 429 beyond. Each
    # holds one of the http_threads for as long as someone watches (and one more on a node that
    # forwards it): 4 of 16 leaves 12 for writes, reads, /health and blocking queries (orion top
    # holds a few), and is still four people running `orion logs -f` against one node.
    "max_log_follows": 4,
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
    # "fsync": an entry is fdatasync'd before the leader counts it and before a follower
    # acknowledges it, so a write answered 2xx survives a power loss of any minority and of
    # a majority once it restarts (etcd, Consul and Nomad do the same). One sync covers all
    # entries of a pass of the Raft loop, so it costs ~one disk flush per round, not per write.
    # "none": never synced (pysyncobj's own behaviour): survives SIGKILL, not power loss.
    "durability": "fsync",
    # ReconcileLoop wakes at once on a change; this periodic pass catches what changed outside
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
    # -- gossip (docs/gossip.md; the protocol's own knobs live in orion/gossip/config.py) ------
    # Base64 AES keys, comma-separated, primary first. Empty: derived from raft_secret, so a
    # cluster with a Raft secret always gossips encrypted and authenticated.
    "gossip_key": "",
    # Probe period. memberlist's LAN profile probes every 1 s; Orion probes every 0.5 s (and
    # halves the probe timeout with it) because a dead node's tasks should move within ~6 s:
    # detection is about a probe period plus the Lifeguard suspicion minimum (4 periods for
    # n < 10). LAN round trips are ~1 ms, so 250 ms still fails only a node that is stuck.
    "gossip_probe_interval": 0.5,
    # -- self-healing (docs/self-healing.md) ---------------------------------------------------
    # Gossip (SWIM/Lifeguard) judges the members it knows; a registered node that the leader's
    # gossip view has not seen in its current life is declared dead once missing this long. A
    # restarting agent is back in gossip within a second or two, so it does not trip, while a
    # replacement still runs within the 6 s goal (dead 3 s + place + start ~1.5 s).
    "node_dead_after": 3.0,
    # After this node becomes leader, nobody is declared dead for this long (Nomad's failover
    # heartbeat TTL): the new leader's peer connections and views are still forming, and an
    # election must not cause a mass reschedule. Longer than node_dead_after plus a redial.
    "failover_grace": 5.0,
    # Restart policy: first restart after 1 s, doubling each time (Nomad/Swarm style backoff)...
    "restart_delay": 1.0,
    # ...never waiting more than 30 s: a crash-looping task still gets a try twice a minute...
    "restart_max_delay": 30.0,
    # ...and after 10 failures within restart_window the task stays failed: a task that cannot
    # run is shown as failed instead of burning the node forever (Swarm's max_attempts idea).
    "restart_limit": 10,
    "restart_window": 300.0,
    # Restarts in a row on one node before the task is placed elsewhere: a local restart is
    # cheap (image cached), but three crashes in a row suggest the node is the problem.
    "restart_local_attempts": 3,
    # Raft voters: 5 survive two failures; more voters only slow every commit (Consul/Nomad cap).
    "voter_cap": 5,
    # A voter dead this long is removed from Raft so the next failure is survivable. Longer
    # than an agent restart or upgrade (seconds), so a reboot does not cost its vote.
    "dead_voter_cleanup": 30.0,
    # The leader's healing pass (liveness, lost tasks, restarts) also runs on every apply;
    # this period catches time-based decisions (a backoff expiring, a node going silent).
    "heal_interval": 0.5,
    # SIGTERM (systemctl stop|restart orion) stops the agent, not the node's work: the containers
    # belong to dockerd and keep running, the agent hands Raft leadership over, announces itself
    # "restarting" and adopts them when it starts again (Nomad #2052: agent downtime must never be
    # service downtime; a kubelet restart touches no pod). True: SIGTERM drains instead (its tasks
    # are moved, Consul's leave_on_terminate), for decommissioning; bounded by drain_timeout,
    # well inside shutdown_timeout. `orion node drain` does the same for a node that stays up.
    "leave_on_terminate": False,
    "drain_timeout": 10.0,
    # -- day-2 operations (issue #11) -----------------------------------------------------------
    # Engine health is node health (Kubernetes marks a node NotReady when its container runtime
    # is down): a node whose engine has not answered for this long reports itself not ready and
    # the leader moves its tasks. `systemctl restart docker` is ~2-5 s (stop, then load its
    # state), so 8 s does not trip on it, while tasks still run elsewhere ~11 s after the engine
    # died (8 s + a probe period + heal pass, placement and a container start of ~2 s).
    "engine_down_grace": 8.0,
    # How often the node pings its engine (GET /_ping, nothing to the engine); a ping slower than
    # this counts as no answer. 1 s resolution is an eighth of the grace.
    "engine_probe_interval": 1.0,
    # Drain migrates (Nomad's migrate block): at most this many tasks of one service move at a
    # time, each replacement running before its original stops. Nomad's migrate max_parallel
    # default, 1: a service never has more than one replica between two homes.
    "drain_max_parallel": 1,
    # Nomad's drain deadline: after this the tasks still on a drained node are moved the hard
    # way (marked lost, placed again) and old copies stop. One migration takes ~1-2 s; two
    # minutes leave room for slow image pulls yet free a node in maintenance even if a task
    # cannot move (no node has its static port free). Nomad's 1 h is sized for batch jobs.
    "drain_deadline": 120.0,
    # A migration's original stops once its replacement has been running this long (Nomad's
    # migrate min_healthy_time, 10 s there): "running" means the container started, not that its
    # server listens yet; most bind their port within a second or two. 3 s per step keeps a
    # drain of one replica at a time quick; a task with a health check also needs it healthy.
    "drain_min_running": 3.0,
    # How long a node that announced its restart may stay away before its tasks are moved.
    # Nomad's heartbeat_grace (10 s) and Kubernetes' node-monitor-grace-period (40 s) bracket it:
    # an agent restart or package upgrade takes a few seconds (a cold Python start, Raft catch-up),
    # 30 s leaves room for a slow one, and a host away longer than that is a node loss.
    # Counted on the leader from when it first saw the node restarting; a node that vanishes
    # unannounced (SIGKILL, crash) gets none and is dead after gossip detection (~3-4 s).
    "restart_grace": 30.0,
    # -- the overlay network (issue #19) ---------------------------------------------------
    # Tasks get flat IPs over VXLAN, names in DNS and VIPs. On by default: a service that other
    # tasks reach by name is the point. Off: the agent runs tasks on the engine's default bridge
    # with port bindings only (tests that share one engine between clusters run it off).
    "network": True,
    # The cluster's overlay, fixed by the first leader's InitNetwork (later values are ignored:
    # a Docker network's subnet and MTU cannot change under running containers). flannel's and
    # k3s's 10.42.0.0/16, a /24 per host: 254 tasks on each of 256 hosts.
    "network_cidr": "10.42.0.0/16",
    "network_host_prefix": 24,
    # VNI 1 and the IANA VXLAN port, as the kernel's own examples use.
    "network_vni": 1,
    "network_port": 4789,
    # 0: the underlay interface's MTU minus the 50 bytes VXLAN over IPv4 adds, measured by the
    # node that initializes the network (capped at 9,000: a jumbo-frame overlay is plenty, and a
    # loopback underlay's 65,536 would make an overlay no real host can join).
    "network_mtu": 0,
    # VIPs of vip-mode services; k3s's service CIDR beside its cluster CIDR.
    "service_cidr": "10.43.0.0/16",
    # Where the host's own resolvers are listed: names outside orion. are forwarded to them.
    "dns_resolv_conf": "/etc/resolv.conf",
    # The DNS server's port on the bridge gateway: 53, the one port a container's resolver asks.
    "dns_port": 53,
    # The datapath loop runs on every Raft apply and this often besides: a flushed table or a
    # deleted device heals within 5 s (the bound), and a pass that changes nothing costs
    # one netlink dump and two nft listings (~10 ms).
    "datapath_interval": 2.0,
}

# The local names of the overlay's devices: not settings, every host uses the same ones so that
# `ip link`, `bridge fdb` and docs/service-discovery.md read alike everywhere. orion.<vni> follows
# flannel's flannel.<vni>; the bridge name is Docker's com.docker.network.bridge.name.
NETWORK_BRIDGE = "orion0"
NETWORK_NAME = "orion"  # the Docker network tasks join
# What VXLAN over IPv4 adds to each packet: outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.
VXLAN_OVERHEAD = 50
# The largest overlay MTU an InitNetwork proposes from a measured underlay (see network_mtu).
MAX_AUTO_MTU = 9000
# A task's resolver: Orion's server on the bridge gateway, names searched in the service zone
# first (`curl http://web/` finds web.service.orion) then the zone (`web.service`).
DNS_SEARCH = ("service.orion", "orion")
# An agent whose DNS bind is taken (another agent on the same engine serves it: the demo) tries
# again this often, so when that agent stops one of the others takes over within this long.
DNS_BIND_RETRY = 2.0

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
    # -- the machinery --------------------------------------------------------------------------
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
