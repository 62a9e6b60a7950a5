"""How one agent talks HTTP to another agent's API: scheme, trust, identity, token.

Every agent-to-agent call (joining, the autopilot's probe, a forwarded log read) goes through one
:class:`PeerHttp` value, built once from the agent's settings and handed to
each part. So a cluster that serves HTTPS and requires client certificates
(mTLS, as Nomad and Consul do) and a bearer token is spoken to the same way
from every place, and no part can forget the token or fall back to plain HTTP.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import requests

# requests' timeout: seconds for each wait, or (connect, read) with None for a read that may wait
# for ever (a followed log, see orion/api/logs.py).
Timeout = float | tuple[float, float | None]


@dataclass(frozen=True)
class PeerHttp:
    """``scheme`` of the peers' APIs; ``ca_file`` verifies their server certificates
    (None: the system's trust store); ``client_cert``/``client_key`` are presented when
    the peers require client certificates; ``token`` is the API's bearer token."""

    scheme: str = "http"
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    token: str | None = None

    def url(self, addr: str, path: str) -> str:
        """``HOST:PORT`` (as peers advertise it) -> a URL; a full URL is kept as given."""
        base = addr if "://" in addr else f"{self.scheme}://{addr}"
        return base.rstrip("/") + path

    def request(self, method: str, addr: str, path: str, timeout: Timeout, **kw: Any) -> requests.Response:
        """One call to a peer. ``verify`` and ``cert`` go with each request, not on a Session:
        requests lets REQUESTS_CA_BUNDLE override a Session's ``verify`` (psf/requests#3829)."""
        headers = {**kw.pop("headers", {}), **self.auth_headers()}
        return requests.request(method, self.url(addr, path), timeout=timeout, headers=headers,
                                verify=self.ca_file or True, cert=self._cert(), **kw)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def ssl_context(self) -> ssl.SSLContext | None:
        """The same trust and identity for a connection requests does not make (an upgraded
        one: ``orion exec`` forwarded to the task's node); None over plain HTTP."""
        if self.scheme != "https":
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context

    def _cert(self) -> tuple[str, str] | str | None:
        if not self.client_cert:
            return None
        return (self.client_cert, self.client_key) if self.client_key else self.client_cert

    def get(self, addr: str, path: str, timeout: Timeout, **kw: Any) -> requests.Response:
        return self.request("GET", addr, path, timeout, **kw)

    def post(self, addr: str, path: str, timeout: Timeout, **kw: Any) -> requests.Response:
        return self.request("POST", addr, path, timeout, **kw)
