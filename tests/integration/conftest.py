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
from harness import Cluster, running
from selfheal_kit import IPS, HealCluster, engine_pool, make_heal_cluster, running_heal


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
def engines(request, docker_host):  # noqa: ARG001 - docker_host skips the module without an engine
    """One private Docker engine per node (self-healing tests: a node dies with its containers).
    A module that sets ``PUBLISH_ON_NODE_IPS = True`` has each engine publish ports on its own
    node's loopback address (``selfheal_kit.IPS``), so every node can publish the same host port."""
    publish = IPS[:3] if getattr(request.module, "PUBLISH_ON_NODE_IPS", False) else None
    with engine_pool(3, publish) as pool:
        yield pool


@pytest.fixture
def heal(request, tmp_path, engines) -> Iterator[HealCluster]:
    """Three agents over ``engines``, each labelled name=<its id> (a selector pins a task to one)."""
    with running_heal(request, make_heal_cluster(tmp_path, engines, label_names=True)) as hc:
        yield hc


@pytest.fixture
def cluster(request, tmp_path, docker_host, docker_client):
    c = Cluster(root=tmp_path, docker_host=docker_host)
    request.node.orion_cluster = c
    with running(c, docker_client):
        yield c


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    c = getattr(item, "orion_cluster", None)
    if c is not None and report.failed:
        report.sections.append(("orion agent logs", c.logs(tail=80)))
    return report
