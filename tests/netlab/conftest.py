"""The overlay lab fixture: one lab (3 engine hosts and a stranger) per test module.

Needs root, iproute2, nft, iptables and dockerd; ORION_TEST_NETLAB=0 skips. A failing test
prints the engines' and agents' log tails. The lab's bring-up times are printed at teardown
(pytest -s) and kept in ``lab.timings``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from netlab_kit import Lab


def lab_missing() -> str:
    if os.environ.get("ORION_TEST_NETLAB", "1") == "0":
        return "ORION_TEST_NETLAB=0"
    if os.geteuid() != 0:
        return "the overlay lab needs root (network namespaces, dockerd)"
    missing = [t for t in ("ip", "nft", "iptables", "dockerd", "nsenter", "unshare", "ping") if not shutil.which(t)]
    return f"missing tools: {' '.join(missing)} (scripts/ensure-test-tools.sh)" if missing else ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    why = lab_missing()
    if why:
        pytest.skip(why)
    lab = Lab()
    try:
        lab.up()
    except BaseException:
        print(lab.logs())
        lab.down()
        raise
    print(f"\nnetlab slot {lab.slot} up: " + ", ".join(f"{k} {v:.1f}" for k, v in lab.timings.items()))
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture(autouse=True)
def _logs_on_failure(request) -> Iterator[None]:
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "lab" in request.fixturenames:
        lab: Lab = request.getfixturevalue("lab")
        print(lab.logs())
        for path in sorted(lab.workdir.glob("agent-*.jsonl")):
            print(f"--- {path.name}\n" + "\n".join(path.read_text().splitlines()[-20:]))
