"""What the API answers, as types: the views build these, the OpenAPI document shows them.

``TypedDict`` rather than models: a view is a plain dict built once per record
(``orion/api/views.py``), and a ``TypedDict`` costs nothing at run time while
pydantic still reads it for the document. The contract test
(``tests/integration/test_api_contract.py``) checks live answers against it,
and ``tests/unit/api/test_openapi.py`` checks the views' output.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired

from typing_extensions import TypedDict

from orion.domain.model import TASK_STATES

TaskState = Literal[TASK_STATES]  # type: ignore[valid-type]


class Error(TypedDict):
    """Every refusal: what went wrong and what to do; ``field`` names the part of the request to fix."""

    error: str
    field: NotRequired[str]
    leader: NotRequired[str | None]
    needed: NotRequired[str]  # a 403: the scope the operation needs
    scope: NotRequired[str]  # a 403: the caller's scope


class Placement(TypedDict):
    nodeId: str
    generation: int


class VolumeView(TypedDict):
    source: str
    target: str
    readOnly: bool
    type: str


class FileView(TypedDict):
    """A file from a secret or config: which one, at which version, where, its mode (octal text)."""

    source: str
    target: str
    mode: str
    uid: int
    gid: int
    version: int


class SecretEnvView(TypedDict):
    """An environment variable holding a secret: its name, never its value."""

    secret: str


class ContainerView(TypedDict, total=False):
    """A task's container settings as its request spelled them (``orion/api/schema/container.py``);
    only those set appear."""

    user: str
    workingDir: str
    entrypoint: list[str]
    capAdd: list[str]
    capDrop: list[str]
    privileged: bool
    devices: list[str]
    labels: dict[str, str]
    logging: dict[str, Any]
    stopSignal: str
    stopGracePeriod: str
    init: bool
    ulimits: dict[str, Any]
    readOnly: bool
    tmpfs: list[str]
    hostname: str
    extraHosts: list[str]
    shmSize: int
    sysctls: dict[str, str]
    cpuShares: int


class Task(ContainerView):
    """A task; the detail keys appear on one task (``GET /tasks/<id>``, a create, a stop), with
    the container settings it asked for."""

    id: str
    name: str
    image: str
    state: TaskState
    desired: str
    nodeId: str | None
    ports: dict[str, int | None]
    reason: str
    reasonKind: str | None
    memory: int
    cpu: float
    generation: int
    createdIndex: int
    updatedIndex: int
    restarts: int
    exitCode: int | None
    migratingFrom: Placement | None
    service: str | None
    version: int | None
    health: str | None
    healthOutput: str | None
    ip: str | None
    containerId: NotRequired[str | None]
    command: NotRequired[list[str] | None]
    env: NotRequired[dict[str, str | SecretEnvView]]
    nodeSelectors: NotRequired[dict[str, str]]
    restartPolicy: NotRequired[str]
    pullPolicy: NotRequired[str]
    count: NotRequired[int]
    volumes: NotRequired[list[VolumeView]]
    secrets: NotRequired[list[FileView]]
    configs: NotRequired[list[FileView]]
    slot: NotRequired[int]
    deployment: NotRequired[int]
    healthSince: NotRequired[float | None]
    overlay: NotRequired[bool]


class ResourcesView(TypedDict):
    memory: int
    cpu: float


class Vtep(TypedDict):
    ip: str
    mac: str


class Node(TypedDict):
    """A registered node with what is reserved on it and its host's subnet (``vtep``: the underlay
    address its VXLAN packets go to, and the VTEP's MAC); ``gossip`` and ``healthScore`` are this
    node's gossip view, when it runs gossip."""

    id: str
    apiAddr: str
    raftAddr: str
    gossipAddr: str
    status: str
    ready: bool
    readyReason: str
    labels: dict[str, str]
    hostVolumes: list[str]
    hostDevices: list[str]
    allowPrivileged: bool
    keyIds: list[str]
    leader: bool
    capacity: ResourcesView
    used: ResourcesView
    free: ResourcesView
    portsInUse: list[str]
    subnet: str | None
    vtep: Vtep | None
    gossip: NotRequired[dict[str, Any]]
    healthScore: NotRequired[int]


class DrainedNode(Node):
    tasksToMove: list[str]


class Scaled(TypedDict):
    group: str
    count: int
    created: list[str]
    stopped: list[str]
    tasks: list[Task]


class Health(TypedDict):
    status: Literal["ok", "no-leader"]
    leader: str | None
    node: str
    appliedIndex: int
    version: str


class Raft(TypedDict, total=False):
    """This node's Raft view (keys as pysyncobj names them, plus ``digest``: replicas at equal
    indexes show equal digests)."""

    self: str
    leader: str | None
    is_leader: bool
    term: int
    commit_index: int
    applied_index: int
    members: list[str]
    digest: str
    digestIndex: int


class Restored(TypedDict):
    """A restore applied: the index it took effect at, the state's digest there (``GET /raft``
    shows the same at that index) and what the state holds."""

    index: int
    digest: str
    clusterId: str
    nodes: int
    tasks: int
    services: int


class Members(TypedDict):
    members: list[str]
    leader: str | None
    ready: bool
    voterCap: int
    gossip: list[str]


class Admitted(TypedDict):
    role: Literal["voter", "replica"]
    reason: str
    members: list[str]
    leader: str | None


class MembersLeft(TypedDict):
    members: list[str]


class Deployment(TypedDict):
    id: str
    seq: int
    version: int
    state: str
    reason: str
    startedAt: float
    revertTo: int | None
    rollback: bool
    kind: NotRequired[Literal["redeploy", "rebalance"]]
    progress: NotRequired[list[dict[str, Any]]]


class Replica(TypedDict):
    id: str
    slot: int
    node: NotRequired[str]
    version: int
    state: TaskState
    desired: str
    nodeId: str | None
    health: str
    healthOutput: str
    ip: str | None


class PublishView(TypedDict):
    published: int
    target: int
    protocol: Literal["tcp", "udp"]


class JobRun(TypedDict):
    """One run of a job: its attempts' counts, why it ended, the cron slot it ran for."""

    run: int
    version: int
    state: Literal["running", "succeeded", "failed", "cancelled", "skipped"]
    reason: str
    startedAt: float
    finishedAt: float | None
    slot: float | None
    attempts: int
    succeeded: int
    failed: int


class JobSummary(TypedDict):
    """A job's last run and, with a schedule, when it runs next (this node's clock)."""

    completions: int
    schedule: str
    lastRun: JobRun | None
    running: int
    nextRun: float | None


class Service(TypedDict):
    """A service; the detail keys (``spec`` as its PUT body, ``replicas``) on one service.
    ``count``: the replicas wanted (a global service's: its eligible nodes; a job's: its completions)."""

    name: str
    stack: str | None
    version: int
    image: str
    mode: Literal["replicated", "global", "job"]
    count: int
    tasks: dict[str, int]
    healthy: int
    deployment: Deployment
    stableVersion: int | None
    endpointMode: Literal["vip", "dnsrr"]
    vip: str | None
    publish: list[PublishView]
    job: NotRequired[JobSummary]
    spec: NotRequired[dict[str, Any]]
    replicas: NotRequired[list[Replica]]


class Rebalanced(Service):
    """A rebalance: the replicas it moves (none when the spread is even) and why."""

    moves: list[str]
    sentence: str


class SpecChange(TypedDict):
    changed: list[str]
    replace: bool
    scale: bool


class ServiceDeclared(Service):
    changed: bool
    notes: list[str]
    diff: NotRequired[SpecChange]


class ServiceVersion(TypedDict):
    version: int
    at: float
    copyOf: int | None
    image: str
    deployment: Deployment
    spec: dict[str, Any]


class ServiceDeleted(TypedDict):
    name: str
    deleted: bool
    stopping: list[str]


class Stack(TypedDict):
    """A stack: the services that carry its name, their replicas wanted and healthy, counted per state."""

    name: str
    services: list[str]
    count: int
    healthy: int
    tasks: dict[str, int]


class StackDetail(Stack):
    """``GET /stacks/<name>``: each service as ``GET /services/<name>`` shows it (spec, replicas)."""

    details: list[Service]


class StackDeleted(TypedDict):
    name: str
    deleted: list[str]
    stopping: list[str]
