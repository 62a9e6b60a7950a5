"""One Raft log entry applied to the machine: a command, or a ``Batch`` of them.

Writes that reach a store together share one Raft entry (``orion/store/coalescer.py``:
batched writes). :func:`apply_entry` is the replica's half: it unwraps a batch
on every replica and applies its commands in order through
:meth:`StateMachine.apply`, each as if it were an entry of its own, so each
keeps its own result, its own request-id deduplication and its own refusal. One
bad request never fails its batch-mates.

:class:`ReplicatedMachine` is Orion's state machine as the Raft backend is handed
it (``orion/raft/application.py``): a fresh machine, a restored one, its
snapshot, how an entry is applied, and how several entries travel as one. The
backend builds no machine of its own (etcd-raft's application owns its state
machine).
"""

from __future__ import annotations

from typing import Any

from orion.domain.model import TaskSpec
from orion.domain.service import REPLICATED, ServiceSpec
from orion.state.commands import Batch, Command, decode, encode
from orion.state.machine import StateMachine
from orion.state.results import BatchApplied, RefusalKind, Refused, Result

# The log format that introduced ``Batch`` entries (``LOG_VERSION``, orion/version.py):
# none is written until every node that may read the log again reads this format.
BATCH_LOG_VERSION = 1
# The log format that introduced ``NameCluster`` and ``RestoreSnapshot``: a cluster is named, and a
# snapshot restored, only once every node that may read the log again reads them.
SNAPSHOT_LOG_VERSION = 2
# The release that brought format 2 also answers read-index requests (linearizable reads):
# until every node reads format 2, some node may be of the release before, and reads stay local.
READ_INDEX_LOG_VERSION = 2
# The log format that introduced a service's modes and the commands that run them (``mode``,
# ``job``, constraints, ``spread``, ``maxPerNode``, ``update.rebalance`` in a spec; ``RedeployService``,
# ``RebalanceService``, ``ApplyJobPlan``, ``RunCronSlot``): an older node would read such a spec as a
# plain replicated one, or refuse the commands, and its replica would diverge. The API declares
# none of them until every node that may read the log again reads this format.
WORKLOADS_LOG_VERSION = 3
# The log format that introduced secrets, configs and registry credentials (``PutSecret``,
# ``DeleteSecret``, ``ResealSecrets``, ``PutRegistryAuth``, ``DeleteRegistryAuth``,
# ``ReportTaskWaiting``; a spec's ``files`` and secret ``env``): an older node refuses the commands
# and reads such a spec without its files, so its replica would diverge. None is written until
# every node that may read the log again reads this format. (4 is the overlay's:
# ``NETWORK_LOG_VERSION``, orion/state/network.py.)
SECRETS_LOG_VERSION = 5


def needs_workloads(spec: ServiceSpec) -> bool:
    """Does declaring ``spec`` need every node to read ``WORKLOADS_LOG_VERSION``?"""
    task = spec.task
    return bool(spec.mode != REPLICATED or task.constraints or task.spread or task.max_per_node
                or spec.update.rebalance)


def needs_secrets(spec: TaskSpec) -> bool:
    """Does declaring a task or service of ``spec`` need every node to read ``SECRETS_LOG_VERSION``?"""
    return bool(spec.files or spec.secret_env)


def apply_entry(machine: StateMachine, entry: str | bytes | Command, index: int) -> Result:
    """Apply one log entry; a batch is applied command by command, in order.

    The result of a batch is a :class:`BatchApplied`, one result per command, each
    exactly what that command would have returned as an entry of its own at this
    ``index``. An entry this node cannot read at all goes to the machine as it is,
    which refuses it with its reason.
    """
    command = entry
    if isinstance(entry, str | bytes):
        try:
            command = decode(entry.decode("utf-8", "replace") if isinstance(entry, bytes) else entry)
        except Exception:  # UnknownCommand or a malformed body: the machine words the refusal
            return machine.apply(entry, index)
    if isinstance(command, Batch):
        return BatchApplied(tuple(apply_entry(machine, c, index) for c in command.commands))
    return machine.apply(command, index)


def batch_of(*commands: Command) -> Batch:
    """One entry for ``commands``, applied in this order (a create and its placement, say)."""
    return Batch(commands=tuple(encode(c) for c in commands))


def batch_text(texts: list[str]) -> str:
    """The log entry for several encoded commands."""
    return encode(Batch(commands=tuple(texts)))


def results_of(result: Result, count: int) -> list[Result] | None:
    """The ``count`` per-command results of a batch entry's ``result``, in order, or None
    when the batch was answered as a whole (a node that does not know batches refused it)."""
    if isinstance(result, BatchApplied) and len(result.results) == count:
        return list(result.results)
    return None


def unreadable(result: Result) -> list[str]:
    """Why the machine could not read (parts of) an entry: a newer node wrote it during a
    rolling upgrade. Refused there, never a crash; the backend logs each reason."""
    parts = result.results if isinstance(result, BatchApplied) else (result,)
    return [part.detail for part in parts if isinstance(part, Refused) and part.kind == RefusalKind.UNREADABLE]


class ReplicatedMachine:
    """Orion's :class:`StateMachine` as the Raft backend replicates it (the backend's
    ``Application`` protocol, ``orion/raft/application.py``)."""

    def fresh(self) -> StateMachine:
        return StateMachine()

    def restore(self, data: Any) -> StateMachine:
        return StateMachine.restore(data)

    def snapshot(self, machine: StateMachine) -> dict[str, Any]:
        return machine.snapshot()

    def encode(self, command: Command) -> str:
        return encode(command)

    def apply(self, machine: StateMachine, entry: str, index: int) -> Result:
        return apply_entry(machine, entry, index)  # decoded there (what it cannot read is refused)

    def unreadable(self, result: Result) -> list[str]:
        return unreadable(result)

    def reads_confirmed(self, machine: StateMachine) -> bool:
        """Every node runs a release that answers read-index requests: the release that
        introduced them also introduced log format 2 (``orion/version.py``)."""
        return machine.log_version() >= READ_INDEX_LOG_VERSION

    def batches_read(self, machine: StateMachine) -> bool:
        """Every node that may read the log again reads a ``Batch`` (a rolling upgrade from a
        release without them may be under way: until it is done, each write is its own entry)."""
        return machine.log_version() >= BATCH_LOG_VERSION

    def combine(self, entries: list[str]) -> str:
        return batch_text(entries)

    def results(self, result: Result, count: int) -> list[Result] | None:
        return results_of(result, count)
