"""Fixtures for tests against real processes: a Docker engine and agent clusters.

A failing test that used a cluster prints every agent's log tail, so a red CI
run shows what the cluster did.
"""

from __future__ import annotations

import os

import docker
import pytest
from harness import Cluster


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
