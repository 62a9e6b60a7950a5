"""Pull policies against a real private registry (Debian's ``docker-registry``).

No public registry is reachable here, so the test runs its own on loopback
(the engine trusts 127.0.0.0/8 registries over plain HTTP), pushes the local
test image into it, removes the local copy, and lets the runtime pull it back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import docker
import pytest
from harness import free_ports, http_get
from registry_kit import serving_registry
from test_docker_runtime import make_task

from orion.runtime import RuntimeFailure
from orion.runtime.docker import DockerRuntime

pytestmark = pytest.mark.docker



@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Iterator[str]:
    with serving_registry(tmp_path_factory.mktemp("registry")) as address:
        yield address


@pytest.fixture
def pushed(registry, docker_client, test_image) -> Iterator[str]:
    """A fresh repository in the registry holding the test image, absent locally."""
    ref = f"{registry}/orion/pulltest-{uuid.uuid4().hex[:8]}:v1"
    repo, tag = ref.rsplit(":", 1)
    docker_client.images.get(test_image).tag(repo, tag)
    for line in docker_client.images.push(repo, tag=tag, stream=True, decode=True):
        assert "error" not in line, line
    docker_client.images.remove(ref)
    yield ref
    try:
        docker_client.images.remove(ref, force=True)
    except docker.errors.ImageNotFound:
        pass


def test_if_not_present_pulls_a_missing_image_and_runs_it(docker_host, pushed, node_id, docker_client):
    runtime = DockerRuntime(docker_host)
    (port,) = free_ports(1)
    state = runtime.start(make_task(pushed, node_id, ports=(_binding(port),)), node_id)
    assert state.status == "running"
    assert docker_client.images.get(pushed) is not None
    assert "hello from orion" in http_get(port)


def test_never_refuses_a_missing_image_with_the_reason(docker_host, pushed, node_id):
    runtime = DockerRuntime(docker_host)
    with pytest.raises(RuntimeFailure, match="pull policy never"):
        runtime.start(make_task(pushed, node_id, pull_policy="never"), node_id)


def test_always_pulls_even_when_present_and_fails_clearly_when_it_cannot(docker_host, pushed, registry, node_id):
    runtime = DockerRuntime(docker_host)
    runtime.ensure_image(pushed, "always")  # pulls although nothing is local
    runtime.ensure_image(pushed, "always")  # and again although it is
    missing = f"{registry}/orion/does-not-exist:v1"
    with pytest.raises(RuntimeFailure, match="pull"):
        runtime.start(make_task(missing, node_id, pull_policy="always"), node_id)


def _binding(port: int):
    from orion.domain.model import PortBinding

    return PortBinding(80, "tcp", port)
