"""Service values: what a new spec changes, when a spec is the same, and the JSON round trip."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from orion.defaults import SERVICE_DEFAULTS
from orion.domain.model import PortBinding, TaskSpec
from orion.domain.service import (
    HealthCheck,
    ServiceSpec,
    UpdatePolicy,
    Volume,
)
from orion.domain.spec_diff import spec_diff

MiB = 1 << 20
BASE = ServiceSpec("web", TaskSpec("nginx:1.25", 64 * MiB, 100, restart_policy="always"), count=3)


def with_task(**changes) -> ServiceSpec:
    return replace(BASE, task=replace(BASE.task, **changes))


def test_the_template_is_one_replica_named_and_grouped_as_the_service():
    spec = ServiceSpec("web", TaskSpec("nginx", 64 * MiB, count=5, name="other", group="x"), count=2)
    assert (spec.task.count, spec.task.name, spec.task.group, spec.count) == (1, "web", "web", 2)


def test_defaults_are_nomads_update_block_with_start_first():
    u = UpdatePolicy()
    assert (u.max_parallel, u.min_healthy_time, u.healthy_deadline, u.auto_revert, u.order) == \
        (1, 10.0, 300.0, False, "start-first")
    assert HealthCheck("tcp", "80/tcp").failures == SERVICE_DEFAULTS["check_failures"] == 3


def test_a_new_image_replaces_replicas():
    diff = spec_diff(BASE, with_task(image="nginx:1.26"))
    assert (diff.changed, diff.replace, diff.scale) == (("image",), True, False)


def test_every_container_level_change_replaces():
    for changes, name in [({"memory": 128 * MiB}, "memory"), ({"cpu_millis": 200}, "cpu"),
                          ({"command": ("sh",)}, "command"), ({"env": (("A", "1"),)}, "env"),
                          ({"ports": (PortBinding(80),)}, "portBindings"),
                          ({"node_selectors": (("zone", "a"),)}, "nodeSelectors")]:
        diff = spec_diff(BASE, with_task(**changes))
        assert diff.changed == (name,) and diff.replace, name
    diff = spec_diff(BASE, replace(BASE, volumes=(Volume("data", "/data"),)))
    assert diff.changed == ("volumes",) and diff.replace


def test_count_only_is_a_scale_without_replacement():
    diff = spec_diff(BASE, replace(BASE, count=5))
    assert (diff.changed, diff.replace, diff.scale) == (("count",), False, True)


def test_restart_policy_check_and_update_block_change_in_place():
    new = replace(with_task(restart_policy="on-failure"), health_check=HealthCheck("tcp", "80/tcp"),
                  update=UpdatePolicy(max_parallel=2))
    diff = spec_diff(BASE, new)
    assert diff.changed == ("restartPolicy", "healthCheck", "update") and not diff.replace and not diff.scale


def test_volume_order_does_not_make_a_new_version():
    a, b = Volume("data", "/data"), Volume("logs", "/logs", True, "volume")
    assert replace(BASE, volumes=(a, b)) == replace(BASE, volumes=(b, a))


def test_the_replicas_mount_the_services_volumes():
    a, b = Volume("data", "/data"), Volume("logs", "/logs", True, "volume")
    spec = replace(BASE, volumes=(b, a))
    assert spec.task.volumes == (a, b) and spec.task.host_volumes == {"data"}
    assert replace(spec, volumes=()).task.volumes == ()  # the service's list is the one that counts


def test_a_service_spec_survives_json():
    spec = replace(BASE, health_check=HealthCheck("exec", argv=("pg_isready",), interval=5.0),
                   update=UpdatePolicy(3, 1.5, 60.0, True, "stop-first"),
                   volumes=(Volume("data", "/data", True),))
    assert ServiceSpec.from_dict(spec.to_dict()) == spec


@given(st.integers(1, 9), st.integers(1, 9), st.sampled_from(["a:1", "a:2"]), st.sampled_from(["a:1", "a:2"]))
def test_diff_is_empty_exactly_when_the_specs_are_equal(c1, c2, i1, i2):
    old, new = replace(with_task(image=i1), count=c1), replace(with_task(image=i2), count=c2)
    diff = spec_diff(old, new)
    assert diff.unchanged == (old == new)
    assert diff.replace == (i1 != i2) and diff.scale == (c1 != c2)
