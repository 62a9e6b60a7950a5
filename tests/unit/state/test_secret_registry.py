"""Secrets, configs and registry credentials in the state machine (orion/state/secrets.py): versions,
pinning, the services a new version rolls, the in-use refusal, re-sealing, and a snapshot that holds
no value."""

from __future__ import annotations

import base64
import json

from result_kit import accepted, refused

from orion.domain.model import TaskSpec
from orion.domain.sealing import digest, parse_keyring, seal, sealed_key_id
from orion.domain.secrets import EnvSecret, FileRef
from orion.domain.service import FAILED_DEPLOYMENT, REVERTED, SUCCESSFUL, ServiceSpec, UpdatePolicy
from orion.state.commands import (
    ApplyDeploymentPlan,
    CreateTask,
    DeleteRegistryAuth,
    DeleteSecret,
    PutRegistryAuth,
    PutSecret,
    PutService,
    Reseal,
    ResealSecrets,
    RollbackService,
    StopTask,
)
from orion.state.machine import StateMachine
from orion.state.results import RefusalKind, Resealed, SecretDeleted, SecretStored, result_from_dict

OLD = parse_keyring(base64.b64encode(bytes(range(32))).decode())
NEW = parse_keyring(base64.b64encode(bytes(range(40, 72))).decode() + "\n" +
                    base64.b64encode(bytes(range(32))).decode())
VALUE = b"correct horse battery staple"


class World:
    def __init__(self) -> None:
        self.m = StateMachine()
        self.index = 0

    def apply(self, command):
        self.index += 1
        return self.m.apply(command, self.index)

    def put_secret(self, name: str, value: bytes, create: bool = False, ring=OLD):
        return self.apply(PutSecret(kind="secret", name=name, data=seal(ring, value, "secret", name), size=len(value),
                                    digest=digest(ring, value), at=float(self.index), create=create))


def uses_db(name: str = "web", max_parallel: int = 2) -> ServiceSpec:
    return ServiceSpec(name, TaskSpec("app:1", 64 << 20, files=(FileRef("secret", "db", "/run/secrets/db", 0o400),),
                                      secret_env=(EnvSecret("PW", "db"),)),
                       count=4, update=UpdatePolicy(max_parallel=max_parallel))


def test_a_new_value_is_the_next_version_and_the_same_value_changes_nothing():
    w = World()
    assert accepted(w.put_secret("db", VALUE, create=True)).version == 1
    assert w.put_secret("db", VALUE) == SecretStored("secret", "db", 1, changed=False)
    assert accepted(w.put_secret("db", b"new")).version == 2
    assert "orion secret update" in refused(w.put_secret("db", b"x", create=True), RefusalKind.EXISTS).detail


def test_the_machine_keeps_no_plain_secret_whoever_wrote_the_entry():
    w = World()
    result = w.apply(PutSecret(kind="secret", name="db", data="hunter2", size=7, digest="d", at=1.0))
    assert "not a sealed value" in refused(result, RefusalKind.INVALID).detail
    assert w.m.secrets.get("secret", "db") is None


def test_a_service_reads_the_current_version_and_a_missing_secret_is_refused():
    w = World()
    missing = refused(w.apply(PutService(spec=uses_db(), at=1.0)), RefusalKind.NOT_FOUND)
    assert missing.detail == "no secret db; create it first (orion secret create db -f FILE)"
    task_spec = TaskSpec("app:1", 64 << 20, files=(FileRef("secret", "db", "/s", 0o400),))
    refused(w.apply(CreateTask(task_id="t1", spec=task_spec)), RefusalKind.NOT_FOUND)
    w.put_secret("db", VALUE)
    assert accepted(w.apply(PutService(spec=uses_db(), at=2.0))).version == 1
    task = w.m.services.get("web").spec.task
    assert [f.version for f in task.files] == [1] and [e.version for e in task.secret_env] == [1]
    assert accepted(w.apply(PutService(spec=uses_db(), at=3.0))).changed is False  # the same spec: no new version


def test_a_new_version_rolls_every_service_that_reads_it_and_no_other():
    w = World()
    w.put_secret("db", VALUE)
    w.apply(PutService(spec=uses_db("web"), at=1.0))
    w.apply(PutService(spec=uses_db("api"), at=1.0))
    w.apply(PutService(spec=ServiceSpec("other", TaskSpec("app:1", 64 << 20)), at=1.0))
    result = accepted(w.put_secret("db", b"rotated"))
    assert result.rolled == ("api", "web")
    for name in ("api", "web"):
        record = w.m.services.get(name)
        assert record.current.version == 2 and record.deployment.state == "running"
        assert [f.version for f in record.spec.task.files] == [2]
    assert w.m.services.get("other").current.version == 1


def test_old_versions_stay_while_a_task_reads_them_and_go_after():
    w = World()
    w.put_secret("db", b"one")
    w.apply(CreateTask(task_id="t1", spec=TaskSpec("app:1", 64 << 20, files=(FileRef("secret", "db", "/s", 0o400),))))
    w.put_secret("db", b"two")
    w.put_secret("db", b"three")
    assert [v.version for v in w.m.secrets.get("secret", "db").versions] == [1, 3]  # 1: t1 reads it
    w.apply(StopTask(task_id="t1"))
    assert accepted(w.put_secret("db", b"three")).changed is False
    w.put_secret("db", b"four")
    assert [v.version for v in w.m.secrets.get("secret", "db").versions] == [1, 4]  # t1 is still in the state


def test_a_secret_in_use_cannot_be_deleted_and_the_refusal_names_the_services():
    w = World()
    w.put_secret("db", VALUE)
    w.apply(PutService(spec=uses_db("web"), at=1.0))
    in_use = refused(w.apply(DeleteSecret(kind="secret", name="db")), RefusalKind.IN_USE)
    assert in_use.detail == "secret db is in use by service(s) web: remove it from their specs first"
    refused(w.apply(DeleteSecret(kind="secret", name="nope")), RefusalKind.NOT_FOUND)
    w.put_secret("free", VALUE)
    assert w.apply(DeleteSecret(kind="secret", name="free")) == SecretDeleted("secret", "free")


def test_a_reseal_applies_only_to_values_still_under_the_old_key_and_keeps_versions():
    w = World()
    w.put_secret("db", VALUE)
    w.apply(PutService(spec=uses_db(), at=1.0))
    old = w.m.secrets.get("secret", "db").current
    item = Reseal("secret", "db", 1, OLD.primary_id, seal(NEW, VALUE, "secret", "db"), digest(NEW, VALUE))
    assert w.apply(ResealSecrets(items=(item,))) == Resealed(resealed=("secret db v1",))
    now = w.m.secrets.get("secret", "db").current
    assert (now.version, now.size) == (old.version, old.size) and sealed_key_id(now.data) == NEW.primary_id
    assert w.apply(ResealSecrets(items=(item,))) == Resealed(skipped=("secret db v1",))  # a second rotation raced
    assert w.m.services.get("web").current.version == 1  # nothing rolled


def test_registry_credentials_are_kept_sealed_replaced_and_forgotten():
    w = World()
    sealed = seal(OLD, b"token", "registry", "r.local:5000")
    login = PutRegistryAuth(server="r.local:5000", username="ci", sealed=sealed, digest="d1", at=1.0)
    assert w.apply(login) == SecretStored("registry", "r.local:5000", 0, changed=True)
    assert accepted(w.apply(PutRegistryAuth(server="r.local:5000", username="ci", sealed=sealed, digest="d1",
                                            at=2.0))).changed is False
    assert w.m.secrets.registry("r.local:5000").username == "ci"
    refused(w.apply(PutRegistryAuth(server="x", username="u", sealed="plain", digest="d", at=1.0)), RefusalKind.INVALID)
    assert w.apply(DeleteRegistryAuth(server="r.local:5000")) == SecretDeleted("registry", "r.local:5000")
    refused(w.apply(DeleteRegistryAuth(server="r.local:5000")), RefusalKind.NOT_FOUND)


def test_a_snapshot_holds_no_value_and_restores_to_the_same_state():
    w = World()
    w.put_secret("db", VALUE)
    config = base64.b64encode(b"port=80").decode()
    w.apply(PutSecret(kind="config", name="app.conf", data=config, size=7, digest="sha256:x", at=1.0))
    w.apply(PutService(spec=uses_db(), at=1.0))
    snapshot = w.m.snapshot()
    text = json.dumps(snapshot)
    assert VALUE.decode() not in text and base64.b64encode(VALUE).decode() not in text
    again = StateMachine.restore(json.loads(text))
    assert again.snapshot() == snapshot
    assert "secrets" not in StateMachine().snapshot()  # unused, as before secrets existed


def test_an_auto_revert_to_a_version_that_reads_a_deleted_secret_fails_the_deployment_instead():
    w = World()
    w.put_secret("db", VALUE)
    w.apply(PutService(spec=uses_db(), at=1.0))
    first = w.m.services.get("web").deployment
    accepted(w.apply(ApplyDeploymentPlan(service="web", seq=first.seq, step=0, state=SUCCESSFUL, at=2.0)))
    plain = ServiceSpec("web", TaskSpec("app:2", 64 << 20), count=4)
    accepted(w.apply(PutService(spec=plain, at=3.0)))
    assert w.apply(DeleteSecret(kind="secret", name="db")) == SecretDeleted("secret", "db")
    second = w.m.services.get("web").deployment
    result = accepted(w.apply(ApplyDeploymentPlan(service="web", seq=second.seq, step=0, state=REVERTED,
                                                  reason="unhealthy", revert_to=1, at=4.0)))
    assert result.reverted is None and result.deployment.state == FAILED_DEPLOYMENT
    assert result.deployment.reason == "unhealthy; not reverted: no secret db; create it first " \
                                       "(orion secret create db -f FILE)"
    assert w.m.services.get("web").current.version == 2  # nothing declared
    refused(w.apply(RollbackService(name="web", version=1, at=5.0)), RefusalKind.NOT_FOUND)


def test_every_secret_result_survives_its_plain_form_and_json():
    w = World()
    results = [w.put_secret("db", VALUE), w.put_secret("db", VALUE), w.apply(DeleteSecret(kind="secret", name="db")),
               w.apply(ResealSecrets(items=())), Resealed(("secret a v1",), ("registry r",)),
               SecretStored("registry", "r.local:5000", 0, True), SecretStored("secret", "db", 3, True, ("web",))]
    for result in results:
        assert result_from_dict(json.loads(json.dumps(result.to_dict()))) == result
