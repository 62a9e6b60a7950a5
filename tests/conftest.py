"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import shutil

import pytest
from tls_kit import TlsFiles, make_tls


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA, the agents' certificate (IP SAN 127.0.0.1) and an operator's client one."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl tool is not installed (Debian: apt-get install openssl)")
    return make_tls(tmp_path_factory.mktemp("tls"))
