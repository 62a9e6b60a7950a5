"""Commands cross the Raft log as JSON: every type must survive encode -> decode,
and anything a node cannot read must be recognised as such, not guessed at."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orion.domain.constraints import parse as parse_constraint
from orion.domain.job import OVERLAPS, RUN_STATES, SLOT_ACTIONS, JobPolicy
from orion.domain.model import NODE_STATES, TASK_STATES, NodeInfo, NoFitKind, PortBinding, Resources, TaskSpec
from orion.domain.network import NetworkSettings, Publish
from orion.domain.secrets import EnvSecret, FileRef
from orion.domain.service import (
    DEPLOYMENT_STATES,
    HEALTH_STATES,
    HealthCheck,
    ServiceSpec,
    SlotProgress,
    StartReplica,
    StopReplica,
    UpdatePolicy,
    Volume,
)
from orion.state.commands import (
    COMMAND_TYPES,
    AcquireLease,
    ApplyDeploymentPlan,
    ApplyJobPlan,
    Command,
    CreateTask,
    DeleteRegistryAuth,
    DeleteSecret,
    DeleteService,
    FinishMigration,
    InitNetwork,
    MarkUnschedulable,
    MigrateTasks,
    NameCluster,
    Placement,
    PlaceTasks,
    PutRegistryAuth,
    PutSecret,
    PutService,
    RebalanceService,
    RedeployService,
    RegisterNode,
    ReleaseLease,
    ReportTaskHealth,
    ReportTaskState,
    ReportTaskWaiting,
    Reseal,
    ResealSecrets,
    RestartTask,
    RestoreSnapshot,
    RollbackService,
    RunCronSlot,
    ScaleTask,
    SetNodeReadiness,
    SetNodeStatus,
    StopTask,
    UnknownCommand,
    base,
    command,
    decode,
    encode,
    handles,
    optional,
)
from orion.state.entries import batch_of
from orion.state.machine import StateMachine
from orion.state.results import RefusalKind, Refused

text = st.text(max_size=12)
ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=10)
pairs = st.dictionaries(st.text(min_size=1, max_size=6), text, max_size=3).map(
    lambda d: tuple(sorted(d.items())))
ports = st.builds(
    PortBinding,
    container_port=st.integers(1, 65535),
    protocol=st.sampled_from(["tcp", "udp"]),
    host_port=st.none() | st.integers(1, 65535),
)
specs = st.builds(
    TaskSpec,
    image=st.text(min_size=1, max_size=20),
    memory=st.integers(0, 1 << 40),
    cpu_millis=st.integers(0, 64_000),
    name=text,
    command=st.none() | st.lists(text, max_size=3).map(tuple),
    env=pairs,
    ports=st.lists(ports, max_size=3).map(tuple),
    node_selectors=pairs,
    restart_policy=st.sampled_from(["never", "on-failure", "always"]),
    pull_policy=st.sampled_from(["if-not-present", "always", "never"]),
    count=st.integers(1, 10),
    group=st.just("") | ids,
    overlay=st.booleans(),
    constraints=st.sets(st.sampled_from(["node.labels.zone != a", "node.labels.zone in (a, b)",
                                         "node.labels.ssd exists", "engine.version >= 20.10"]), max_size=2)
    .map(lambda texts: tuple(sorted(parse_constraint(t) for t in texts))),
    spread=st.just("") | st.just("zone"),
    max_per_node=st.integers(0, 3),
    files=st.lists(st.builds(FileRef, kind=st.sampled_from(["secret", "config"]), source=ids,
                             target=ids.map(lambda i: "/run/" + i), mode=st.integers(0, 0o777),
                             uid=st.integers(0, 65535), gid=st.integers(0, 65535), version=st.integers(0, 9)),
                   max_size=2).map(lambda fs: tuple(sorted(fs))),
    secret_env=st.lists(st.builds(EnvSecret, name=ids, source=ids, version=st.integers(0, 9)),
                        max_size=2).map(lambda es: tuple(sorted(es))),
)
nodes = st.builds(
    NodeInfo,
    id=ids,
    api_addr=text,
    raft_addr=text,
    gossip_addr=text,
    capacity=st.builds(Resources, st.integers(0, 1 << 40), st.integers(0, 64_000)),
    labels=pairs,
    status=st.sampled_from(NODE_STATES),
    status_index=st.integers(0, 10**9),
    ready=st.booleans(),
    ready_reason=text,
    hostname=st.just("") | ids,
    os=st.sampled_from(["", "linux"]),
    arch=st.sampled_from(["", "x86_64", "aarch64"]),
    engine_version=st.sampled_from(["", "20.10.24+dfsg1", "24.0.7"]),
    key_ids=st.lists(ids, max_size=2).map(tuple),
)
seconds = st.floats(0, 1e6, allow_nan=False)
service_specs = st.builds(
    ServiceSpec,
    name=ids,
    task=specs,
    count=st.integers(0, 10),
    health_check=st.none() | st.builds(HealthCheck, kind=st.sampled_from(["http", "tcp", "exec"]),
                                       port=st.just("80/tcp"), path=st.just("/healthz"),
                                       argv=st.lists(text, max_size=2).map(tuple), interval=seconds,
                                       timeout=seconds, start_period=seconds, failures=st.integers(1, 10)),
    update=st.builds(UpdatePolicy, max_parallel=st.integers(1, 5), min_healthy_time=seconds,
                     healthy_deadline=seconds, auto_revert=st.booleans(),
                     order=st.sampled_from(["start-first", "stop-first"]), rebalance=st.booleans()),
    mode=st.sampled_from(["replicated", "global", "job"]),
    job=st.none() | st.builds(JobPolicy, completions=st.integers(1, 9), parallelism=st.integers(1, 3),
                              retries=st.integers(0, 5), backoff=seconds, deadline=seconds,
                              schedule=st.sampled_from(["", "0 3 * * *", "*/5 * * * * *"]),
                              zone=st.sampled_from(["", "Europe/Paris"]), overlap=st.sampled_from(OVERLAPS)),
    volumes=st.lists(st.builds(Volume, source=ids, target=ids.map(lambda i: "/" + i), read_only=st.booleans(),
                               type=st.sampled_from(["host", "volume"])), max_size=2).map(tuple),
    endpoint_mode=st.sampled_from(["vip", "dnsrr"]),
    publish=st.lists(st.builds(Publish, st.integers(1, 65535), st.integers(1, 65535), st.sampled_from(["tcp", "udp"])),
                     max_size=2).map(tuple),
    overlay=st.booleans(),
)
single_commands = st.one_of(
    st.builds(RegisterNode, request_id=text, node=nodes),
    st.builds(SetNodeStatus, request_id=text, node_id=ids, status=st.sampled_from(NODE_STATES)),
    st.builds(CreateTask, request_id=text, task_id=ids, spec=specs, idempotency_key=text),
    st.builds(
        PlaceTasks,
        request_id=text,
        placements=st.lists(st.builds(Placement, ids, ids, st.integers(0, 100)), max_size=4).map(tuple),
    ),
    st.builds(MarkUnschedulable, request_id=text, task_id=ids, reason=text, kind=st.sampled_from(NoFitKind)),
    st.builds(
        ReportTaskState,
        request_id=text,
        task_id=ids,
        node_id=ids,
        generation=st.integers(0, 100),
        state=st.sampled_from(TASK_STATES),
        container_id=st.none() | ids,
        host_ports=st.dictionaries(st.sampled_from(["80/tcp", "53/udp", "8080/tcp"]), st.integers(1, 65535))
        .map(lambda d: tuple(sorted(d.items()))),
        exit_code=st.none() | st.integers(-255, 255),
        reason=text,
        ip=st.none() | st.ip_addresses(v=4).map(str),
    ),
    st.builds(StopTask, request_id=text, task_id=ids),
    st.builds(RestartTask, request_id=text, task_id=ids, generation=st.integers(0, 100), node_id=st.just("") | ids,
              at=st.floats(0, 2e9, allow_nan=False), reason=text),
    st.builds(ScaleTask, request_id=text, task_id=ids, count=st.integers(0, 1000),
              new_task_ids=st.lists(ids, max_size=4).map(tuple)),
    st.builds(SetNodeReadiness, request_id=text, node_id=ids, ready=st.booleans(), reason=text),
    st.builds(MigrateTasks, request_id=text,
              placements=st.lists(st.builds(Placement, ids, ids, st.integers(0, 100)), max_size=4).map(tuple)),
    st.builds(FinishMigration, request_id=text, task_id=ids, generation=st.integers(0, 100), reason=text),
    st.builds(PutService, request_id=text, spec=service_specs, at=seconds, create=st.booleans()),
    st.builds(RollbackService, request_id=text, name=ids, version=st.integers(0, 20), at=seconds),
    st.builds(DeleteService, request_id=text, name=ids),
    st.builds(ApplyDeploymentPlan, request_id=text, service=ids, seq=st.integers(1, 50), step=st.integers(0, 50),
              state=st.sampled_from(DEPLOYMENT_STATES), reason=text,
              start=st.lists(st.builds(StartReplica, ids, st.integers(0, 9), st.integers(1, 9), st.just("") | ids),
                             max_size=3).map(tuple),
              stop=st.lists(st.builds(StopReplica, ids, st.integers(0, 9), text), max_size=3).map(tuple),
              progress=st.lists(st.builds(SlotProgress, st.integers(0, 9), st.sampled_from(["done", "queued"]),
                                          st.none() | ids, st.lists(ids, max_size=2).map(tuple), st.just("") | ids),
                                max_size=3).map(tuple),
              revert_to=st.none() | st.integers(1, 9), at=seconds),
    st.builds(ReportTaskHealth, request_id=text, task_id=ids, node_id=ids, generation=st.integers(0, 100),
              status=st.sampled_from(HEALTH_STATES), since=seconds, output=text),
    st.builds(InitNetwork, request_id=text,
              settings=st.builds(NetworkSettings, cidr=st.sampled_from(["10.42.0.0/16", "10.0.0.0/8"]),
                                 host_prefix=st.integers(17, 30), vni=st.integers(1, 1 << 20),
                                 port=st.integers(1, 65535), mtu=st.integers(576, 9000),
                                 service_cidr=st.sampled_from(["10.43.0.0/16", "192.168.0.0/24"]))),
    st.builds(AcquireLease, request_id=text, node_id=ids, host=ids, underlay_ip=st.ip_addresses(v=4).map(str),
              underlay_mtu=st.integers(0, 9000)),
    st.builds(ReleaseLease, request_id=text, host=ids, reason=text),
    st.builds(NameCluster, request_id=text, cluster_id=ids),
    st.builds(RedeployService, request_id=text, name=ids, at=seconds),
    st.builds(RebalanceService, request_id=text, name=ids, moves=st.lists(ids, max_size=3).map(tuple), at=seconds),
    st.builds(ApplyJobPlan, request_id=text, service=ids, run=st.integers(1, 9), step=st.integers(0, 9),
              state=st.sampled_from(RUN_STATES), reason=text, start=st.lists(ids, max_size=3).map(tuple),
              stop=st.lists(ids, max_size=3).map(tuple), failures_seen=st.integers(0, 9), at=seconds),
    st.builds(RunCronSlot, request_id=text, service=ids, slot=seconds, action=st.sampled_from(SLOT_ACTIONS),
              missed=st.integers(0, 5), at=seconds),
    st.builds(RestoreSnapshot, request_id=text, body=text, digest=text, force=st.booleans()),
    st.builds(PutSecret, request_id=text, kind=st.sampled_from(["secret", "config"]), name=ids, data=text,
              size=st.integers(0, 1 << 20), digest=text, template=st.booleans(), at=seconds, create=st.booleans()),
    st.builds(DeleteSecret, request_id=text, kind=st.sampled_from(["secret", "config"]), name=ids),
    st.builds(ResealSecrets, request_id=text,
              items=st.lists(st.builds(Reseal, st.sampled_from(["secret", "registry"]), ids, st.integers(0, 9), ids,
                                       text, text), max_size=3).map(tuple)),
    st.builds(PutRegistryAuth, request_id=text, server=ids, username=text, sealed=text, digest=text, at=seconds),
    st.builds(DeleteRegistryAuth, request_id=text, server=ids),
    st.builds(ReportTaskWaiting, request_id=text, task_id=ids, node_id=ids, generation=st.integers(0, 100),
              reason=text),
)
commands = single_commands | st.lists(single_commands, max_size=4).map(lambda cs: batch_of(*cs))


@given(commands)
def test_every_command_survives_encode_then_decode(command):
    assert decode(encode(command)) == command


def test_the_strategy_covers_every_command_type():
    assert set(COMMAND_TYPES) == {
        "register_node", "set_node_status", "create_task", "place_tasks",
        "mark_unschedulable", "report_task_state", "stop_task", "restart_task", "scale_task",
        "set_node_readiness", "migrate_tasks", "finish_migration",
        "put_service", "rollback_service", "delete_service", "apply_deployment_plan", "report_task_health", "batch",
        "init_network", "acquire_lease", "release_lease",
        "name_cluster", "restore_snapshot", "redeploy_service", "rebalance_service", "apply_job_plan",
        "run_cron_slot",
        "put_secret", "delete_secret", "reseal_secrets", "put_registry_auth", "delete_registry_auth",
        "report_task_waiting",
    }


@pytest.mark.parametrize(
    "command",
    [
        RegisterNode(request_id="r1", node=NodeInfo("n1", "127.0.0.1:1", "127.0.0.1:2",
                                                    capacity=Resources(1 << 30, 2000),
                                                    labels=(("disk", "ssd"),))),
        SetNodeStatus(node_id="n1", status="dead"),
        CreateTask(task_id="t1", spec=TaskSpec("orion/busybox:latest", 64 << 20,
                                               ports=(PortBinding(80, "tcp", 8080),)), idempotency_key="k"),
        PlaceTasks(placements=(Placement("t1", "n1", 0), Placement("t2", "n2", 3))),
        MarkUnschedulable(task_id="t1", reason="no alive nodes", kind=NoFitKind.NO_NODES),
        ReportTaskState(task_id="t1", node_id="n1", generation=1, state="running", container_id="abc",
                        host_ports=(("80/tcp", 8080),)),
        StopTask(task_id="t1"),
        batch_of(StopTask(task_id="t1"), CreateTask(task_id="t2", spec=TaskSpec("img", 8 << 20))),
    ],
    ids=lambda c: c.TYPE,
)
def test_encoding_names_the_type_and_version(command):
    body = json.loads(encode(command))
    assert body["type"] == command.TYPE
    assert body["v"] == command.VERSION
    assert decode(encode(command)) == command


def test_a_mark_unschedulable_written_before_kinds_reads_as_other():
    old = '{"reason":"no alive nodes","request_id":"r","task_id":"t1","type":"mark_unschedulable","v":1}'
    assert decode(old) == MarkUnschedulable(request_id="r", task_id="t1", reason="no alive nodes",
                                            kind=NoFitKind.OTHER)


# Written by the secrets commands before they were declared with @command (wt/secrets 5d4f8a8, each
# with a hand-written reader): the derived codec reads them and writes the same bytes.
SECRET_ENTRIES_BEFORE = [
    '{"at":1.5,"create":true,"data":"env","digest":"d","kind":"secret","name":"db","request_id":"r1","size":3,'
    '"template":false,"type":"put_secret","v":1}',
    '{"kind":"config","name":"c","request_id":"r2","type":"delete_secret","v":1}',
    '{"items":[{"data":"e","digest":"d","kind":"secret","name":"db","old_key":"k1","version":1}],"request_id":"r3",'
    '"type":"reseal_secrets","v":1}',
    '{"at":2.0,"digest":"d","request_id":"r4","sealed":"x","server":"s:5000","type":"put_registry_auth",'
    '"username":"u","v":1}',
    '{"request_id":"r5","server":"s","type":"delete_registry_auth","v":1}',
    '{"generation":3,"node_id":"n","reason":"why","request_id":"r6","task_id":"t","type":"report_task_waiting","v":1}',
    '{"data":"e","digest":"d","kind":"secret","name":"db","size":1,"type":"put_secret","v":1,"at":1.0}',
]


@pytest.mark.parametrize("entry", SECRET_ENTRIES_BEFORE[:-1])
def test_a_secret_command_written_before_its_declaration_reads_back_byte_for_byte(entry):
    assert encode(decode(entry)) == entry


def test_a_put_secret_without_its_optional_fields_reads_them_as_their_defaults():
    """The hand-written reader let an entry lack ``template`` and ``create``; so does the declaration."""
    command = decode(SECRET_ENTRIES_BEFORE[-1])
    assert isinstance(command, PutSecret) and (command.template, command.create, command.request_id) == \
        (False, False, "")


def test_a_kind_this_node_does_not_know_reads_as_other():
    """A newer node may name a kind added since (say, gpus): still readable, counted as other."""
    new = encode(MarkUnschedulable(task_id="t1", reason="no node has a gpu")).replace('"other"', '"gpu"')
    assert '"kind":"gpu"' in new
    assert decode(new).kind == NoFitKind.OTHER


def test_a_tasks_ip_is_written_only_when_set():
    """Log format 4 added it to a command of format 1: a report without one is the bytes it was."""
    before = encode(ReportTaskState(task_id="t1", node_id="n1", generation=1, state="running"))
    assert '"ip"' not in before and decode(before).ip is None
    after = encode(ReportTaskState(task_id="t1", node_id="n1", generation=1, state="running", ip="10.42.0.2"))
    assert '"ip":"10.42.0.2"' in after and decode(after).ip == "10.42.0.2"


def test_a_batch_carries_each_command_as_its_own_log_text():
    """So a node that cannot read one of them refuses that one alone (orion/state/entries.py)."""
    stop = StopTask(request_id="r", task_id="t")
    batch = batch_of(stop, StopTask(task_id="u"))
    assert batch.commands[0] == encode(stop)
    assert json.loads(encode(batch))["commands"][1] == encode(StopTask(task_id="u"))


def test_encoding_is_canonical_text():
    """Sorted keys, no spaces: equal commands are equal bytes in every replica's log."""
    a = encode(StopTask(request_id="r", task_id="t"))
    assert a == encode(StopTask(task_id="t", request_id="r"))
    assert " " not in a


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        '{"v": 1}',
        '{"type": "launch_rockets", "v": 1}',
        '{"type": "stop_task", "v": 99, "task_id": "t"}',
        '{"type": "batch", "v": 1}',
    ],
)
def test_unreadable_entries_raise_unknown_command(raw):
    with pytest.raises(UnknownCommand):
        decode(raw)


# -- declaring a command: one declaration and its handler ---------------------------------------


@pytest.fixture
def registry(monkeypatch):
    """Commands declared in a test stay in the test."""
    monkeypatch.setattr(base, "COMMAND_TYPES", dict(base.COMMAND_TYPES))
    return base.COMMAND_TYPES


def test_a_new_command_is_its_declaration_and_its_handler(registry):
    """The codec derives from the fields, the dispatch from the mark: nothing else to register."""

    @command
    class Evict(Command):
        TYPE: ClassVar[str] = "evict"
        node_id: str = ""
        tasks: tuple[Placement, ...] = ()
        grace: float | None = optional(None)

    class Machine(StateMachine):
        @handles(Evict)
        def _evict(self, cmd: Evict, index: int) -> Refused:
            return Refused(RefusalKind.WRONG_STATE, f"nothing to evict on {cmd.node_id} at {index}")

    evict = Evict(request_id="r", node_id="n1", tasks=(Placement("t1", "n1", 2),), grace=1.5)
    assert decode(encode(evict)) == evict
    assert decode('{"node_id":"n1","request_id":"","tasks":[],"type":"evict","v":1}') == Evict(node_id="n1")
    assert Machine().apply(encode(evict), 7) == Refused(RefusalKind.WRONG_STATE, "nothing to evict on n1 at 7")


def test_a_command_without_a_handler_or_with_two_stops_the_machine_being_built(registry):
    @command
    class Orphan(Command):
        TYPE: ClassVar[str] = "orphan"

    with pytest.raises(TypeError, match="without a handler: orphan"):
        StateMachine()

    class Twice(StateMachine):
        @handles(Orphan, StopTask)
        def _again(self, cmd: Command, index: int) -> Refused:
            return Refused(RefusalKind.OTHER, "")

    with pytest.raises(TypeError, match="two handlers for StopTask"):
        Twice()


def test_a_type_is_declared_once(registry):
    with pytest.raises(TypeError, match="stop_task"):
        @command
        class AnotherStop(Command):
            TYPE: ClassVar[str] = "stop_task"
