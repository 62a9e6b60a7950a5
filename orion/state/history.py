"""What the state machine remembers beyond the live tasks, and how much: all of it bounded.

Split from ``orion/state/machine.py`` (which dispatches to it) because each of
these grows with every request unless something forgets, and forgetting must
be deterministic: no clock, only the log, so every replica forgets the same
entries at the same index.

* **Finished tasks.** A task is *finished* when it is in a terminal state and
  nothing will start it again: the user stopped it, or its restart policy does
  not restart how it ended (a lost task that is still wanted is placed again; a
  failed one under ``always`` may be restarted once its restart window passes,
  so it is not finished). Restarts reuse the task's id (a new generation, not a
  new record), but every stopped one-off task, every replica a scale-down
  stopped and every completed batch task used to stay in the state for ever.
  Now at most ``per_group`` finished tasks are kept per service (the tasks
  sharing a group) and ``total`` in all; beyond that the oldest (by the index
  at which they last changed, then id) are purged with everything kept about
  them. Nomad and Swarm bound their task history the same way. The per-service
  rule spares the service's first task (``PATCH /tasks/<id>`` scales a service
  through a member's id, and the first one is what ``orion run`` printed), so
  only the overall limit ever takes it.
* **Failures** per task (node, leader time), for the restart policy: the last
  ``MAX_FAILURES_KEPT``, and gone with their task.
* **Idempotency keys** (``Idempotency-Key`` -> task id): gone with their task;
  a retry that late creates a new task.
* **Request ids** and the answers given to them (a retried command gets the
  first answer back): the last ``remembered_requests``. Kept as the typed results
  themselves (immutable: nothing to copy); a snapshot holds their plain form
  (``results.py``: the dicts the release before typed results kept, which reads them).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from orion.defaults import FINISHED_TASKS_PER_GROUP, FINISHED_TASKS_TOTAL, REMEMBERED_REQUESTS
from orion.domain.model import DESIRED_STOP, LOST, TERMINAL_STATES, Task, wants_restart
from orion.domain.replicas import group_of
from orion.state.results import Result, result_from_dict

# Failure records kept per task (node, leader wall time): enough for the restart
# limit and the down-ranking window (orion/control/restart.py), bounded for snapshots.
MAX_FAILURES_KEPT = 20


def finished(task: Task) -> bool:
    """Over for good: terminal, and neither the user nor the restart policy will run it again."""
    if task.state not in TERMINAL_STATES or task.migrating_from is not None:
        return False
    if task.desired == DESIRED_STOP:
        return True
    return task.state != LOST and not wants_restart(task.spec.restart_policy, task.state)


class History:
    """The machine's bounded memory; changed only from the machine's handlers."""

    def __init__(self, remembered_requests: int = REMEMBERED_REQUESTS, per_group: int = FINISHED_TASKS_PER_GROUP,
                 total: int = FINISHED_TASKS_TOTAL) -> None:
        self.remembered_requests = remembered_requests
        self.per_group = per_group
        self.total = total
        # request id -> first result: a frozen value, so keeping it costs no copy (a JSON copy, the
        # dicts' way, was paid by every replica for every command: bench/write_path.py)
        self._answers: OrderedDict[str, Result] = OrderedDict()
        self._keys: dict[str, str] = {}  # idempotency key -> task id
        self._key_of: dict[str, str] = {}  # task id -> its idempotency key
        self._failures: dict[str, tuple[tuple[str, float], ...]] = {}
        # Finished tasks: id -> (age, group, created index), and per group the ids;
        # age = (updated index, id), the order they are purged in.
        self._finished: dict[str, tuple[tuple[int, str], str, int]] = {}
        self._groups: dict[str, set[str]] = {}
        self._crowded: set[str] = set()  # groups over per_group since the last purge

    # -- request ids ----------------------------------------------------------------------
    def answer(self, request_id: str) -> Result | None:
        """The first result given to ``request_id``, if it is still remembered."""
        return self._answers.get(request_id) if request_id else None

    def remember(self, request_id: str, result: Result) -> None:
        if not request_id:
            return
        self._answers[request_id] = result
        while len(self._answers) > self.remembered_requests:
            self._answers.popitem(last=False)

    # -- idempotency keys -----------------------------------------------------------------
    def task_for_key(self, key: str) -> str | None:
        return self._keys.get(key)

    def remember_key(self, key: str, task_id: str) -> None:
        self._keys[key] = task_id
        self._key_of[task_id] = key

    # -- failures -------------------------------------------------------------------------
    def failures(self, task_id: str) -> tuple[tuple[str, float], ...]:
        return self._failures.get(task_id, ())

    def record_failure(self, task_id: str, node_id: str, at: float) -> None:
        self._failures[task_id] = (self._failures.get(task_id, ()) + ((node_id, at),))[-MAX_FAILURES_KEPT:]

    # -- finished tasks -------------------------------------------------------------------
    def track(self, task: Task) -> None:
        """Note ``task``'s new value (every change of a task comes through here)."""
        group = group_of(task)
        if not finished(task):
            if self._finished.pop(task.id, None) is not None:
                self._groups[group].discard(task.id)
            return
        self._finished[task.id] = ((task.updated_index, task.id), group, task.created_index)
        members = self._groups.setdefault(group, set())
        members.add(task.id)
        if len(members) > self.per_group:
            self._crowded.add(group)

    def purge(self) -> list[str]:
        """Forget the finished tasks beyond the limits, oldest first; return their ids so the
        machine drops the tasks themselves. Deterministic: sorted, no clock, no hash order."""
        gone: list[str] = []
        for group in sorted(self._crowded):
            members = self._groups.get(group, set())
            if len(members) <= self.per_group:
                continue
            first = min(members, key=lambda i: (self._finished[i][2], i))
            by_age = sorted(members - {first}, key=lambda i: self._finished[i][0])
            gone += [self._forget(i) for i in by_age[: len(members) - self.per_group]]
        self._crowded.clear()
        if len(self._finished) > self.total:
            by_age = sorted(self._finished, key=lambda i: self._finished[i][0])
            gone += [self._forget(i) for i in by_age[: len(self._finished) - self.total]]
        return gone

    def _forget(self, task_id: str) -> str:
        _, group, _ = self._finished.pop(task_id)
        members = self._groups[group]
        members.discard(task_id)
        if not members:
            del self._groups[group]
        self._failures.pop(task_id, None)
        key = self._key_of.pop(task_id, None)
        if key is not None:
            del self._keys[key]
        return task_id

    def finished_count(self) -> int:
        return len(self._finished)

    # -- snapshots ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The machine snapshot's fields for this memory (the names it has always had)."""
        return {
            "idempotency_keys": dict(sorted(self._keys.items())),
            "requests": [[rid, result.to_dict()] for rid, result in self._answers.items()],
            "failures": {k: [list(f) for f in v] for k, v in sorted(self._failures.items())},
            "remembered_requests": self.remembered_requests,
            "finished_per_group": self.per_group,
            "finished_total": self.total,
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> History:
        """From a snapshot; the machine then tracks each restored task. A snapshot from before
        the finished-task limits existed keeps its tasks until the next purge trims them."""
        history = cls(int(data.get("remembered_requests", REMEMBERED_REQUESTS)),
                      int(data.get("finished_per_group", FINISHED_TASKS_PER_GROUP)),
                      int(data.get("finished_total", FINISHED_TASKS_TOTAL)))
        for key, task_id in dict(data.get("idempotency_keys", {})).items():
            history.remember_key(str(key), str(task_id))
        for rid, result in data.get("requests", ()):
            history._answers[str(rid)] = result_from_dict(result)
        history._failures = {str(k): tuple((str(n), float(at)) for n, at in v)
                             for k, v in dict(data.get("failures", {})).items()}
        return history
