"""Typed, versioned commands: the only way replicated state changes.

Each command is declared once, with ``@command`` (``base.py``: the log codec derives from
its fields, its handler is marked ``@handles`` where it lives in the machine). The
declarations live by role: ``nodes.py``, ``tasks.py``, ``services.py``, ``workloads.py`` (the
modes': job runs, cron slots, redeploys, rebalances), ``network.py`` (the overlay's settings
and subnet leases), ``cluster.py`` (the cluster's id, a restored snapshot), ``secrets.py``
(secrets, configs, registry credentials, a task waiting for them), and the ``Batch`` entry
(``batch.py``); importing this package registers them all.
"""

from orion.state.commands.base import (
    COMMAND_TYPES,
    Command,
    UnknownCommand,
    command,
    decode,
    encode,
    handler_table,
    handles,
    optional,
)
from orion.state.commands.batch import Batch
from orion.state.commands.cluster import NameCluster, RestoreSnapshot
from orion.state.commands.network import AcquireLease, InitNetwork, ReleaseLease
from orion.state.commands.nodes import RegisterNode, SetNodeReadiness, SetNodeStatus
from orion.state.commands.secrets import (
    DeleteRegistryAuth,
    DeleteSecret,
    PutRegistryAuth,
    PutSecret,
    ReportTaskWaiting,
    Reseal,
    ResealSecrets,
)
from orion.state.commands.services import (
    ApplyDeploymentPlan,
    DeleteService,
    PutService,
    ReportTaskHealth,
    RollbackService,
)
from orion.state.commands.tasks import (
    CreateTask,
    FinishMigration,
    MarkUnschedulable,
    MigrateTasks,
    Placement,
    PlaceTasks,
    ReportTaskState,
    RestartTask,
    ScaleTask,
    StopTask,
)
from orion.state.commands.workloads import ApplyJobPlan, RebalanceService, RedeployService, RunCronSlot

__all__ = [
    "COMMAND_TYPES", "AcquireLease", "ApplyDeploymentPlan", "ApplyJobPlan", "Batch", "Command", "CreateTask",
    "DeleteRegistryAuth", "DeleteSecret", "DeleteService", "FinishMigration", "InitNetwork", "MarkUnschedulable",
    "MigrateTasks", "NameCluster", "PlaceTasks", "Placement", "PutRegistryAuth", "PutSecret", "PutService",
    "RebalanceService", "RedeployService", "RegisterNode", "ReleaseLease", "ReportTaskHealth", "ReportTaskState",
    "ReportTaskWaiting", "Reseal", "ResealSecrets", "RestartTask", "RestoreSnapshot", "RollbackService",
    "RunCronSlot", "ScaleTask", "SetNodeReadiness", "SetNodeStatus", "StopTask", "UnknownCommand", "command",
    "decode", "encode", "handler_table", "handles", "optional",
]
