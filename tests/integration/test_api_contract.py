"""The API against its own OpenAPI document, fuzzed on a live 3-node cluster (schemathesis).

Every documented operation gets generated requests, valid ones (positive) and ones the
document calls invalid (negative), derandomized so a run replays, bounded in examples and
time (FUZZ_SECONDS). Asserted for each answer: never a 5xx, the answer matches the schema
the document gives for its status and content type, and nothing the document calls
invalid is accepted with a 2xx.

The agents are given a Docker engine socket that does not exist: no node is ever ready,
so nothing is pulled or run and tasks stay pending (loopback ports, no engine needed).
Two bounds are imposed on generated data, both to keep the cluster small and the run
short, not to avoid checking anything: a held read
(``?index=``) waits at most 1s, and ``count`` in bodies is capped at 3 (a count of 1000 is
a valid request, it just makes 1000 pending tasks).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import schemathesis
from harness import Cluster
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.cluster]

NO_ENGINE = "unix:///nonexistent/orion-contract/docker.sock"
# A cap for a machine in trouble, not a speed goal: 40 operations x 2 modes (with secrets, configs,
# registries and the overlay's two reads) take about 2 minutes on 2 shared cores.
FUZZ_SECONDS = 180.0
EXAMPLES = 25  # per operation and mode
CHECKS = [not_a_server_error, response_schema_conformance, negative_data_rejection, status_code_conformance,
          content_type_conformance]


TOKEN = "contract-token"


@pytest.fixture
def cluster(request, tmp_path: Path):
    # With a token, the bearer scheme the document declares is exercised too (401 without it).
    c = Cluster(root=tmp_path, docker_host=NO_ENGINE, extra_env={"ORION_API_TOKEN": TOKEN},
                client={"headers": {"Authorization": f"Bearer {TOKEN}"}})
    request.node.orion_cluster = c
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _bounded(case: schemathesis.Case, mode: GenerationMode) -> None:
    if isinstance(case.query, dict) and "index" in case.query and (mode.is_positive or "wait" not in case.query):
        # Reads block: a held one costs its wait, from the budget. A negative case too (its invalid part may be
        # a path name the route refuses only after the hold), unless its wait is what it makes invalid.
        case.query["wait"] = "100ms"
    if not mode.is_positive:
        return
    if isinstance(case.body, dict) and isinstance(case.body.get("count"), int) and case.body["count"] > 3:
        case.body["count"] = 3


def _fuzzer(operation: schemathesis.APIOperation, mode: GenerationMode, base_url: str, session: requests.Session,
            ran: list[int]):
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: schemathesis.Case) -> None:
        _bounded(case, mode)
        response = case.call(base_url=base_url, session=session, timeout=20)
        ran.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    return fuzz


def test_every_operation_keeps_its_contract_under_fuzzing(cluster: Cluster) -> None:
    node = cluster.nodes[1]  # a follower, most likely: writes are forwarded to the leader
    config = schemathesis.Config.from_dict({"auth": {"openapi": {"bearer": {"bearer": TOKEN}}}})
    schema = schemathesis.openapi.from_url(f"{node.url}/v1/openapi.json", config=config,
                                           headers={"Authorization": f"Bearer {TOKEN}"})
    session = requests.Session()
    failures: list[str] = []
    ran: list[int] = []
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if time.monotonic() - started > FUZZ_SECONDS:
                failures.append(f"fuzzing budget of {FUZZ_SECONDS:.0f}s spent before {operation.label} ({mode})")
                break
            try:
                _fuzzer(operation, mode, node.url, session, ran)()
            except Unsatisfiable:  # nothing to make invalid (GET /health takes no input)
                continue
            except Exception as exc:  # noqa: BLE001 - every operation is fuzzed; all failures reported at the end
                failures.append(f"{operation.label} ({mode}): {exc}")
    elapsed = time.monotonic() - started
    print(f"contract: {len(ran)} requests in {elapsed:.1f}s, statuses {sorted(set(ran))}")
    assert len(ran) > 100
    assert not failures, "\n\n".join(failures)
