"""Fixtures for tests against real processes: a Docker engine and agent clusters.

A failing test that used a cluster prints every agent's log tail, so a red CI
run shows what the cluster did.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import docker
import pytest
from engines import Engines
from harness import Cluster
from selfheal_kit import drop_all_test_rules


@pytest.fixture(scope="session")
def docker_host() -> str:
    host = os.environ.get("ORION_TEST_DOCKER_HOST")
    if not host:
        pytest.skip("ORION_TEST_DOCKER_HOST is not set: run scripts/ensure-dockerd.sh (the test command does)")
    return host


@pytest.fixture(scope="session")
def docker_client(docker_host: str):
    client = docker.DockerClient(base_url=docker_host)
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_image() -> str:
    return os.environ.get("ORION_TEST_IMAGE", "orion/busybox:latest")


@pytest.fixture
def node_id(request, docker_client) -> Iterator[str]:
    """A node id of the test's own; every container labelled with it is removed afterwards."""
    node = f"test-{request.module.__name__.removeprefix('test_')[:8]}-{uuid.uuid4().hex[:8]}"
    yield node
    for c in docker_client.containers.list(all=True, filters={"label": f"orion.node={node}"}):
        try:
            c.remove(force=True)
        except docker.errors.APIError:
            pass


@pytest.fixture(scope="module")
def engines(docker_host):  # noqa: ARG001 - docker_host skips the module without an engine
    """One private Docker engine per node (self-healing tests: a node dies with its containers)."""
    drop_all_test_rules()
    pool = Engines(3)
    try:
        pool.start()
        yield pool
    finally:
        drop_all_test_rules()
        pool.destroy()


def _remove_cluster_containers(client, cluster: Cluster) -> None:
    for node in cluster.nodes:
        for c in client.containers.list(all=True, filters={"label": f"orion.node={node.id}"}):
            try:
                c.remove(force=True)
            except docker.errors.APIError:
                pass


@pytest.fixture
def cluster(request, tmp_path, docker_host, docker_client):
    c = Cluster(root=tmp_path, docker_host=docker_host)
    request.node.orion_cluster = c
    _remove_cluster_containers(docker_client, c)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        _remove_cluster_containers(docker_client, c)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    c = getattr(item, "orion_cluster", None)
    if c is not None and report.failed:
        report.sections.append(("orion agent logs", c.logs(tail=80)))
    return report
