"""The node service: composes the parts it is handed and runs their loops.

Nothing here decides anything. The agent builds the Raft store, the Docker
runtime, the scheduler and reconciler loops and the HTTP app, starts them in
the right order, and stops them in the reverse one. It lives in gunicorn's
single worker process (see ``orion/agent/server.py``): pysyncobj's engine must exist
in exactly one process.
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
import uuid
from dataclasses import dataclass, field, replace

from flask import Flask

from orion.agent import store_first
from orion.agent.cluster_key import watch_for_secrets
from orion.agent.network import NetworkParts
from orion.agent.preflight import audit_path
from orion.agent.self_healing import SelfHealing, build_self_healing
from orion.agent.systemd import notify
from orion.api.app import ApiDeps, applied_signal, auth_of, create_app
from orion.api.audit_file import AuditLog
from orion.api.cluster import cluster_blueprint
from orion.api.exec import ExecDeps, exec_blueprint
from orion.api.logs import LogsDeps, logs_blueprint
from orion.api.secrets import secrets_blueprint
from orion.api.services import services_blueprint
from orion.api.stacks import stacks_blueprint
from orion.api.tokens import TokenSource
from orion.config import AgentConfig
from orion.control.deployment_loop import DeploymentLoop
from orion.control.job_loop import JobLoop
from orion.control.lease_reclaim_loop import LeaseReclaimLoop
from orion.control.placement_loop import PlacementLoop
from orion.defaults import SERVICE_DEFAULTS
from orion.domain.model import NodeInfo
from orion.domain.sealing import parse_keyring
from orion.membership.gossip_agent import GossipAgent, gossip_config, gossip_keyring
from orion.membership.join import JoinClient, gossip_seeds, join_until_admitted, registered_as
from orion.membership.liveness import GossipLiveness
from orion.metrics.collect import gossip_stats_from
from orion.metrics.network import NetworkMetrics
from orion.metrics.registry import Metrics, apply_histogram
from orion.node import capacity
from orion.node.health_loop import HealthLoop
from orion.node.readiness_loop import ReadinessLoop
from orion.node.reconcile_loop import ReconcileLoop
from orion.node.registration_loop import RegistrationLoop
from orion.node.task_inputs import TaskInputs
from orion.peer_http import PeerHttp
from orion.raft.store import RaftStore
from orion.runtime import EnginePlatform, RuntimeFailure
from orion.runtime.create import NodePolicy
from orion.runtime.docker import DockerRuntime
from orion.runtime.tmpfs import TaskFileStore
from orion.state.commands import RegisterNode
from orion.store.admission import REPLICA
from orion.store.port import StoreError

log = logging.getLogger("orion.agent.compose")


@dataclass
class Agent:
    """The running parts of one node and their lifecycle."""

    config: AgentConfig
    store: RaftStore
    runtime: DockerRuntime
    scheduler: PlacementLoop
    reconciler: ReconcileLoop
    stop_event: threading.Event = field(default_factory=threading.Event)
    # Set on SIGTERM, before gunicorn drains requests (orion/agent/server.py): releases held reads.
    closing: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    registered: threading.Event = field(default_factory=threading.Event)
    join: JoinClient | None = None
    metrics: Metrics | None = None
    healing: SelfHealing | None = None
    membership: GossipAgent | None = None
    info: NodeInfo | None = None
    readiness: ReadinessLoop | None = None
    # Services (docs/services.md): the leader's rollouts, and this node's health checks.
    deployments: DeploymentLoop | None = None
    health: HealthLoop | None = None
    # The overlay: the leader gives back the subnet leases of hosts dead past lease_dead_grace.
    leases: LeaseReclaimLoop | None = None
    # The overlay (orion/agent/network.py): None with network = false.
    network: NetworkParts | None = None
    # Jobs (docs/services.md, "Jobs"): the leader's runs and cron slots.
    jobs: JobLoop | None = None

    def start(self) -> None:
        self._spawn("register", self._register_loop)
        self._spawn("gossip-join", self._gossip_join)  # alongside the registration, not after it
        self._spawn("scheduler", lambda: self.scheduler.run_forever(self.stop_event))
        if self.deployments is not None:
            self._spawn("deployments", lambda: self.deployments.run_forever(self.stop_event))
        if self.jobs is not None:
            self._spawn("jobs", lambda: self.jobs.run_forever(self.stop_event))
        if self.metrics is not None:
            self._spawn("leader-watch", lambda: self.metrics.watch_leader(self.stop_event))
        if self.healing is not None:
            self._spawn("healer", lambda: self.healing.healer.run_forever(self.stop_event))
        self._spawn("secrets-mark", lambda: watch_for_secrets(self.store, self.config.data_dir,
                                                              bool(self.config.cluster_key), self.stop_event))
        if self.leases is not None:
            self._spawn("leases", lambda: self.leases.run_forever(self.stop_event))
        if self.network is not None:  # the datapath once the replica caught up, the lease once registered
            self._spawn("network", lambda: self.network.run(self.stop_event, self._spawn, self.registered))

    def _spawn(self, name: str, target) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _register_loop(self) -> None:
        """Register this node once a leader exists; retry until it sticks."""
        if self.join is not None:
            self._join_loop(self.join)
        info = self.info or node_info(self.config, self.runtime)
        log.info("node %s capacity: memory %d bytes, cpu %d millicores",
                 info.id, info.capacity.memory, info.capacity.cpu_millis)
        while not self.stop_event.is_set():
            if self.store.has_leader():
                try:
                    self.store.submit(RegisterNode(request_id=uuid.uuid4().hex, node=info),
                                      self.config.write_timeout)
                    self.registered.set()
                    # The registration came back through our own replica, so it has
                    # caught up at least that far: only now may the reconciler judge
                    # which local containers are wanted (else a restart would stop them).
                    self._spawn("reconciler", lambda: self.reconciler.run_forever(self.stop_event))
                    # Not joined on stop: the event stream blocks until the engine says something.
                    threading.Thread(target=self.runtime.watch_exits, name="exits", daemon=True,
                                     args=(self.config.id, self.reconciler.container_exited, self.stop_event)).start()
                    if self.readiness is not None:  # reports about a registered node only
                        self._spawn("readiness", lambda: self.readiness.run_forever(self.stop_event))
                    if self.health is not None:
                        self._spawn("health", lambda: self.health.run_forever(self.stop_event))
                    # Keeps the record true after a snapshot restore, and names the cluster.
                    registration = RegistrationLoop(info, self.store, interval=self.config.reconcile_interval,
                                                    write_timeout=self.config.write_timeout)
                    self._spawn("registration", functools.partial(registration.run_forever, self.stop_event))
                    log.info("registered node %s (api %s, raft %s)", info.id, info.api_addr, info.raft_addr)
                    notify("READY=1\nSTATUS=joined; leader " + str(self.store.status().leader))
                    return
                except StoreError as exc:
                    log.warning("registration not committed yet: %s", exc)
            self.stop_event.wait(0.1)

    def _gossip_join(self) -> None:
        """Join the gossip cluster through every registered node (covers restarts, where
        no --join is given, and nodes that joined through the API address), as soon as this
        replica has caught up (it knows them then), while the registration commits."""
        if self.membership is None:
            return
        while not self.store.ready():
            if self.stop_event.wait(0.02):
                return
        nodes, _ = self.store.read(lambda m: m.nodes())
        joined = self.membership.join(gossip_seeds(nodes, self.config.id, self.config.join))
        log.info("gossip: %d member(s) answered", joined)

    def _join_loop(self, join: JoinClient) -> None:
        """Ask to be admitted until the leader answers (``orion/membership/join.py``); a
        replica registers without a Raft address."""
        answer = join_until_admitted(join, self.store, self.stop_event, self.config.write_timeout)
        if answer is not None and self.info is not None:
            self.info = registered_as(self.info, answer.role)

    def ready(self) -> bool:
        return self.registered.is_set() and self.store.ready()

    def stop(self) -> None:
        log.info("stopping agent %s", self.config.id)
        notify("STOPPING=1")
        if self.healing is not None and self.registered.is_set():
            if self.config.leave_on_terminate:
                log.info("leaving: %s", self.healing.leave())
            else:  # the default: the containers stay, the agent is back in seconds
                log.info("restarting: %s", self.healing.step_away())
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=self.config.shutdown_timeout)
        if self.network is not None:
            self.network.stop()
        if self.membership is not None:
            self.membership.stop(leave=self.config.leave_on_terminate)
        self.store.close()


def build_agent(cfg: AgentConfig, store: RaftStore | None = None) -> tuple[Agent, Flask]:
    """Compose one node from its config: the only place that wires parts together. ``store``:
    the replica already running (``store_first.py``); None for a first join, built here."""
    runtime = DockerRuntime(cfg.docker_host, policy=NodePolicy(
        host_volumes=cfg.host_volumes, host_devices=frozenset(cfg.host_devices), allow_privileged=cfg.allow_privileged))
    keyring = parse_keyring(cfg.cluster_key) if cfg.cluster_key else None  # checked by load_config
    info = replace(node_info(cfg, runtime), key_ids=keyring.ids if keyring else ())
    # Gossip first: --join may name a gossip address, and discovery goes through it.
    membership = GossipAgent(info, (cfg.bind, cfg.gossip_port), gossip_config(cfg.gossip_probe_interval),
                             gossip_keyring(cfg.gossip_key, cfg.raft_secret))
    membership.start()
    info = replace(info, incarnation=membership.node.incarnation)
    peer = peer_http(cfg)
    join = JoinClient(cfg.id, cfg.raft_addr, cfg.raft_secret, cfg.join, membership, peer=peer)
    joining = store is None and store_first.joining(cfg)
    if store is None:
        store = store_first.replica(store_first.raft_settings(cfg), join.discover_members() if joining else [])
    apply_seconds = apply_histogram()
    store.on_apply_seconds = apply_seconds.observe
    if not store.voter:  # a replica restarting: it registered without a Raft address
        info = registered_as(info, REPLICA)
    metrics = Metrics(cfg.id, store, gossip_stats=gossip_stats_from(membership.node), apply_seconds=apply_seconds)
    timed = metrics.timed(store)
    network = NetworkParts(cfg, store, runtime) if cfg.network else None
    if network is not None:
        network.metrics = NetworkMetrics(metrics.registry, network.peers, network.endpoints)
    # Gossip (Lifeguard) decides who is alive; the leader commits it to the registry.
    liveness = GossipLiveness(membership.view, store, **cfg.part("liveness"))
    # Self-healing (orion/agent/self_healing.py): healing loop, drain on leave, ops API, down-ranking.
    healing = build_self_healing(cfg, timed, runtime, liveness, on_reschedule=metrics.reschedule,
                                 hand_over=store.transfer_leadership, peer=peer)
    agent = Agent(
        config=cfg,
        store=store,
        runtime=runtime,
        metrics=metrics,
        scheduler=PlacementLoop(timed, **cfg.part("placement"), observe=metrics.observe_placement,
                                on_no_fit=metrics.no_fit, avoid=healing.avoid),
        join=join if joining else None,
        reconciler=ReconcileLoop(node_id=cfg.id, store=store, runtime=runtime, **cfg.part("reconcile"),
                                 on_event=metrics.container_event,
                                 inputs=TaskInputs(cfg.id, store, keyring,
                                                   TaskFileStore(**cfg.part("task_files"), node_id=cfg.id)),
                                 attachment=network.attachment if network is not None else None),
        healing=healing,
        membership=membership,
        info=info,
        # Engine health is node health (orion/node/readiness.py).
        readiness=ReadinessLoop(cfg.id, store, lambda timeout: runtime.ping(timeout), **cfg.part("readiness")),
        deployments=DeploymentLoop(timed, SERVICE_DEFAULTS["deploy_interval"], cfg.write_timeout),
        jobs=JobLoop(timed, SERVICE_DEFAULTS["deploy_interval"], cfg.write_timeout),
        health=HealthLoop(cfg.id, store, runtime, tick=SERVICE_DEFAULTS["check_tick"],
                          workers=SERVICE_DEFAULTS["check_workers"], write_timeout=cfg.write_timeout),
        leases=LeaseReclaimLoop(timed, **cfg.part("leases")),
        network=network,
    )
    audit = AuditLog(audit_path(cfg), cfg.audit_log_max_bytes, cfg.audit_log_files)
    app = create_app(ApiDeps(store=timed, node_id=cfg.id, api_token=cfg.api_token or None, **cfg.part("api"),
                             tokens=TokenSource(cfg.api_tokens_file, cfg.api_token),
                             peer_secret=cfg.raft_secret, audit=audit, metrics_wsgi=metrics.wsgi_app,
                             nodes_view=membership.nodes_view, closing=agent.closing,
                             create=agent.scheduler.submit_create))
    auth = auth_of(app)
    app.register_blueprint(cluster_blueprint(timed, cfg.raft_secret, cfg.voter_cap, cfg.write_timeout,
                                             ready=agent.ready, peer=peer))
    app.register_blueprint(healing.blueprint)
    # Logs from any node: read from this node's engine, or forwarded to the task's node.
    app.register_blueprint(logs_blueprint(LogsDeps(store=timed, node_id=cfg.id, open_logs=runtime.logs, peer=peer,
                                                   **cfg.part("logs"), closing=agent.closing, vouch=auth.vouch)))
    # orion exec from any node: run here with the engine's exec API, or relayed to the task's node.
    app.register_blueprint(exec_blueprint(ExecDeps(store=timed, node_id=cfg.id, open_exec=runtime.exec_session,
                                                   peer=peer, vouch=auth.vouch, **cfg.part("exec"), audit=audit,
                                                   closing=agent.closing)))
    app.register_blueprint(services_blueprint(timed, cfg.write_timeout, applied_signal(app)))
    app.register_blueprint(secrets_blueprint(timed, cfg.write_timeout, applied_signal(app), keyring))
    app.register_blueprint(stacks_blueprint(timed, cfg.write_timeout))
    metrics.instrument(app)
    return agent, app


def peer_http(cfg: AgentConfig) -> PeerHttp:
    """How this agent calls its peers' APIs: the cluster serves HTTPS when this node does
    (one cluster, one scheme); peers are verified with ``tls_ca``, and this node's own
    certificate is its client certificate when the peers require one."""
    if not cfg.tls_cert:
        return PeerHttp(token=cfg.api_token or None)
    return PeerHttp(scheme="https", ca_file=cfg.tls_ca or None, client_cert=cfg.tls_cert,
                    client_key=cfg.tls_key, token=cfg.api_token or None)


def node_info(cfg: AgentConfig, runtime: DockerRuntime) -> NodeInfo:
    """This node as it registers: addresses, labels and capacity measured on the host."""
    try:
        engine = runtime.engine_capacity()
    except RuntimeFailure as exc:  # the engine may be down: the host view still counts
        log.warning("engine capacity unavailable (%s); using the host's", exc)
        engine = None
    measured = capacity.probe(**cfg.part("capacity"), engine=engine)
    log.info("capacity: %s", measured.describe())
    try:  # what placement constraints may name (node.hostname, node.platform.*, engine.version)
        platform = runtime.engine_platform()
    except RuntimeFailure as exc:
        log.warning("engine platform unavailable (%s); constraints on it will not match", exc)
        platform = EnginePlatform()
    return NodeInfo(id=cfg.id, api_addr=cfg.api_addr, raft_addr=cfg.raft_addr, gossip_addr=cfg.gossip_addr,
                    capacity=measured.capacity, labels=tuple(sorted(cfg.labels.items())),
                    host_volumes=tuple(sorted(cfg.host_volumes)), host_devices=tuple(sorted(cfg.host_devices)),
                    allow_privileged=cfg.allow_privileged, hostname=platform.hostname or socket.gethostname(),
                    os=platform.os, arch=platform.arch, engine_version=platform.version)
