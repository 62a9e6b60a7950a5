"""A service world for unit tests: the API app and the leader's real deployment loop over
one LocalStore, with a clock the test moves.

The leader's part is played in the open: :meth:`ServiceWorld.step` runs the
real ``DeploymentLoop`` pass by pass, places what it created on the one node
and reports the containers running and healthy (or as told), as the scheduler
and the node would. Raft itself is not under test.
"""

from __future__ import annotations

from typing import Any

from api_kit import NODE
from flask.testing import FlaskClient
from parts import api_deps

from orion.api.app import applied_signal, create_app
from orion.api.ops import ops_blueprint
from orion.api.services import services_blueprint
from orion.api.stacks import stacks_blueprint
from orion.control.deployment_loop import DeploymentLoop
from orion.domain.model import PENDING
from orion.domain.service import HEALTHY
from orion.state.commands import Placement, PlaceTasks, RegisterNode, ReportTaskHealth, ReportTaskState
from orion.state.results import Result
from orion.store.local import LocalStore

WEB = {"name": "web", "image": "app:1", "memory": "64M", "count": 2,
       "healthCheck": {"http": "/", "port": "80/tcp", "interval": "1s", "timeout": "1s", "failures": 1},
       "update": {"maxParallel": 1, "minHealthyTime": "2s", "healthyDeadline": "30s", "autoRevert": True}}


class ServiceWorld:
    """The API app and the leader's deployment loop over one LocalStore, with a movable clock."""

    def __init__(self) -> None:
        self.store = LocalStore()
        self.store.submit(RegisterNode(node=NODE), 1.0)
        self.now = 1000.0
        app = create_app(api_deps(self.store))
        app.register_blueprint(services_blueprint(self.store, 5.0, applied_signal(app), clock=lambda: self.now))
        app.register_blueprint(ops_blueprint(self.store, 5.0))
        app.register_blueprint(stacks_blueprint(self.store, 5.0))
        self.http: FlaskClient = app.test_client()
        self.loop = DeploymentLoop(self.store, interval=0.5, write_timeout=5.0, clock=lambda: self.now)

    def submit(self, command: Any) -> Result:
        return self.store.submit(command, 1.0)

    def replicas(self) -> list[Any]:
        return self.store.read(lambda m: m.services.replicas("web"))[0]

    def step(self, seconds: float = 1.0, health: str = HEALTHY) -> str | None:
        """One leader pass; then what was created runs (and reports ``health``) and stopped ones stop."""
        done = self.loop.run_once()
        said = done.sentence if done.acted else None
        every, _ = self.store.read(lambda m: [t for s in m.services.all() for t in m.services.replicas(s.name)])
        for task in every:
            if task.state == PENDING and task.desired == "run":
                self.submit(PlaceTasks(placements=(Placement(task.id, NODE.id, task.generation),)))
                self.submit(ReportTaskState(task_id=task.id, node_id=NODE.id, generation=1, state="running",
                                            container_id=f"c-{task.id}"))
                self.submit(ReportTaskHealth(task_id=task.id, node_id=NODE.id, generation=1,
                                             status=health if task.version > 1 else HEALTHY, since=self.now,
                                             output="HTTP 200"))
            elif task.state == "stopping":
                self.submit(ReportTaskState(task_id=task.id, node_id=NODE.id, generation=task.generation,
                                            state="stopped"))
        self.now += seconds
        return said

    def settle(self, health: str = HEALTHY, passes: int = 30) -> None:
        for _ in range(passes):
            self.step(health=health)
