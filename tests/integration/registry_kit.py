"""A private registry on loopback (Debian's ``docker-registry``), for the pull-policy and the
registry-login tests: no public registry is reachable here, and the engine trusts 127.0.0.0/8
registries over plain HTTP."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from harness import free_ports

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


@contextmanager
def serving_registry(root: Path, extra_config: str = "", ready_status: int = 200) -> Iterator[str]:
    """A registry storing under ``root`` until the block ends; yields its ``host:port``.
    ``extra_config``: more of its YAML (an ``auth:`` block); it is ready once ``/v2/`` answers
    ``ready_status`` (401 behind auth)."""
    if not Path(REGISTRY).exists():
        pytest.skip("Debian's docker-registry is not installed (scripts/ensure-test-tools.sh installs it)")
    (port,) = free_ports(1)
    (root / "config.yml").write_text(
        "version: 0.1\nlog: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n" + extra_config)
    proc = subprocess.Popen([REGISTRY, "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL,
                            stderr=open(root / "registry.log", "wb"))  # noqa: SIM115
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == ready_status:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "registry did not answer: " + (root / "registry.log").read_text()
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
