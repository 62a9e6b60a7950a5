"""A small HTTP client of the Orion API, used by the CLI (and handy in scripts).

Every failure becomes a :class:`ClientError` whose message a person can act on:
the CLI prints it as is, never a traceback. ``requests`` is the only I/O here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

DEFAULT_ADDR = "http://127.0.0.1:8000"
# Every call goes to the versioned paths (``orion/api/schema/openapi.py``'s PREFIX; the seed's
# unversioned ones are served alike, for old scripts): a later /v2 cannot change what this client asks.
API_PREFIX = "/v1"
# POST /tasks may wait for a Raft commit (write_timeout, 5 s) and a placement (2 s)
# on the server: the client waits well beyond both before giving up.
DEFAULT_TIMEOUT = 30.0


class ClientError(Exception):
    """Something the user must fix or retry; ``status`` is the HTTP code (None: no answer)."""

    def __init__(self, message: str, status: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


def normalize_addr(addr: str) -> str:
    """``127.0.0.1:8000`` -> ``http://127.0.0.1:8000``: people type what the agent prints."""
    addr = addr.strip().rstrip("/")
    if "://" not in addr:
        addr = "http://" + addr
    return addr


def _reason(exc: requests.RequestException) -> str:
    text = str(exc)
    lowered = text.lower()
    for needle, short in (("connection refused", "connection refused"),
                          ("name or service not known", "unknown host"),
                          ("nodename nor servname", "unknown host"),
                          ("no route to host", "no route to host"),
                          ("network is unreachable", "network unreachable"),
                          ("connection reset", "connection reset"),
                          ("remote end closed", "connection closed without an answer")):
        if needle in lowered:
            return short
    return text.split(":")[-1].strip(" )'\"") or type(exc).__name__


def _tls_reason(exc: requests.exceptions.SSLError, client_cert: bool) -> str:
    """The TLS failure, and the option that fixes it. An agent that requires a client
    certificate says so with an alert (TLS 1.3) or just closes the connection (EOF)."""
    text = str(exc)
    lowered = text.lower()
    if "certificate verify failed" in lowered or "mismatch, certificate is not valid" in lowered:
        if "mismatch" in lowered or "doesn't match" in lowered:
            return ("certificate verify failed: the agent's certificate does not name this address; "
                    "use an --addr its certificate names (subjectAltName)")
        return ("certificate verify failed: the agent's certificate is not signed by a CA this client "
                "trusts; pass --ca-cert / ORION_CACERT with the cluster's CA")
    if "key values mismatch" in lowered or "pem lib" in lowered:
        return "--client-cert and --client-key are not a certificate and its matching key"
    if any(alert in lowered for alert in ("certificate required", "handshake failure", "unknown ca",
                                          "bad certificate", "eof occurred in violation")):
        if client_cert:
            return ("the agent refused the client certificate; pass a --client-cert / ORION_CLIENT_CERT "
                    "signed by the CA the agent trusts (its tls_client_ca)")
        return ("the agent requires a client certificate; pass --client-cert and --client-key "
                "(ORION_CLIENT_CERT / ORION_CLIENT_KEY) signed by the cluster's CA")
    if "wrong version number" in lowered or "record layer failure" in lowered:
        return "the agent speaks plain HTTP, not TLS; use an http:// --addr"
    return text.split("Caused by ")[-1].strip(" ()")


class OrionClient:
    """One method per API call; each returns the decoded JSON answer."""

    def __init__(self, addr: str = DEFAULT_ADDR, token: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, session: requests.Session | None = None, *,
                 ca_cert: str | None = None, client_cert: str | None = None,
                 client_key: str | None = None) -> None:
        """``ca_cert`` verifies an https agent (else the system's CAs); ``client_cert`` and
        ``client_key`` are presented to an agent that requires client certificates."""
        self.addr = normalize_addr(addr)
        self.timeout = timeout
        self._session = session or requests.Session()
        # Given with each request: requests lets REQUESTS_CA_BUNDLE override a Session's
        # ``verify`` (psf/requests#3829), and --ca-cert must win over the environment.
        self._tls: dict[str, Any] = {}
        if ca_cert:
            self._tls["verify"] = ca_cert
        if client_cert:
            self._tls["cert"] = (client_cert, client_key) if client_key else client_cert
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None,
                accept: tuple[int, ...] = (), timeout: float | None = None,
                answer_headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """Send one request; return (status, JSON). A status >= 400 not in ``accept`` raises.
        ``answer_headers``, when given, receives the answer's headers."""
        resp = self._send(method, path, body=body, headers=headers, timeout=timeout or self.timeout)
        return self._decode(method, path, resp, accept, answer_headers)

    def stream(self, path: str, params: dict[str, str], timeout: float | None) -> Iterator[bytes]:
        """GET ``path`` and yield its body as it arrives (``timeout``: longest wait for the next
        bytes; None waits as long as it takes, for a followed log). An error answer raises."""
        resp = self._send("GET", path, params=params, timeout=(self.timeout, timeout), stream=True)
        with resp:
            if resp.status_code >= 400:
                self._decode("GET", path, resp, (), None)
            try:
                yield from resp.iter_content(chunk_size=None)
            except requests.RequestException as exc:
                raise ClientError(f"the stream from {self.addr} broke off: {_reason(exc)}") from None

    def download(self, path: str, params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        """GET ``path`` as bytes (a file the API answers); (the bytes, the answer's headers)."""
        resp = self._send("GET", path, params=params, timeout=self.timeout)
        if resp.status_code >= 400:
            self._decode("GET", path, resp, (), None)
        return resp.content, dict(resp.headers)

    def upload(self, method: str, path: str, data: bytes, params: dict[str, str], timeout: float) -> Any:
        """Send ``data`` as the body (``application/octet-stream``); the JSON answer."""
        resp = self._send(method, path, params=params, timeout=max(timeout, self.timeout), data=data,
                          headers={"Content-Type": "application/octet-stream"})
        return self._decode(method, path, resp, (), None)[1]

    def _send(self, method: str, path: str, *, timeout: Any, body: Any = None, headers: dict[str, str] | None = None,
              params: dict[str, str] | None = None, stream: bool = False, data: bytes | None = None,
              ) -> requests.Response:
        url = self.addr + versioned(path)
        try:
            return self._session.request(method, url, json=body, data=data, timeout=timeout, params=params,
                                         stream=stream, headers={**self._headers, **(headers or {})}, **self._tls)
        except requests.exceptions.InvalidURL as exc:
            raise ClientError(f"--addr {self.addr!r} is not a valid URL ({exc}); use http://HOST:PORT") \
                from None
        except requests.exceptions.MissingSchema:
            raise ClientError(f"--addr {self.addr!r} needs a scheme; use http://HOST:PORT") from None
        except requests.exceptions.Timeout:
            raise ClientError(
                f"Orion at {self.addr} did not answer within {self.timeout:g}s; the cluster may be electing "
                "a leader or overloaded: check `orion status`, or raise --timeout"
            ) from None
        except requests.exceptions.SSLError as exc:
            reason = _tls_reason(exc, "cert" in self._tls)
            raise ClientError(f"TLS with Orion at {self.addr} failed: {reason}") from None
        except requests.exceptions.ConnectionError as exc:
            reason = _reason(exc)
            hint = "Is `orion agent` running? Set --addr or ORION_ADDR."
            if reason in ("connection closed without an answer", "connection reset") \
                    and self.addr.startswith("http://"):
                hint = "If the agent serves HTTPS, use an https:// --addr."
            raise ClientError(f"cannot reach Orion at {self.addr}: {reason}. {hint}") from None
        except OSError as exc:  # requests: a --ca-cert/--client-cert path that does not exist
            raise ClientError(f"{exc}; check --ca-cert, --client-cert and --client-key") from None
        except requests.RequestException as exc:
            raise ClientError(f"request to {url} failed: {exc}") from None

    def _decode(self, method: str, path: str, resp: requests.Response, accept: tuple[int, ...],
                answer_headers: dict[str, str] | None) -> tuple[int, Any]:
        url = self.addr + path
        try:
            data = resp.json()
        except ValueError:
            raise ClientError(
                f"{method} {url} answered {resp.status_code} without JSON; is {self.addr} an Orion agent?",
                resp.status_code,
            ) from None
        if answer_headers is not None:
            answer_headers.update(resp.headers)
        if resp.status_code >= 400 and resp.status_code not in accept:
            message = data.get("error") if isinstance(data, dict) else None
            field = data.get("field") if isinstance(data, dict) else None
            if resp.status_code == 401 and "Authorization" not in self._headers:
                message = f"{message or 'unauthorized'} (this cluster needs --token or ORION_API_TOKEN)"
            raise ClientError(message or f"{method} {path} failed with HTTP {resp.status_code}",
                              resp.status_code, field)
        return resp.status_code, data

    def run(self, spec: dict[str, Any], idempotency_key: str | None = None) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.request("POST", "/tasks", body=spec, headers=headers)[1]

    def tasks(self, state: str | None = None, stale: bool = False) -> list[dict[str, Any]]:
        """``stale``: this node's replica as it is (docs/api.md, "Consistency"); else linearizable."""
        query = [f"state={state}"] if state else []
        query += ["stale"] if stale else []
        return self.request("GET", "/tasks" + ("?" + "&".join(query) if query else ""))[1]

    def task(self, task_id: str) -> dict[str, Any]:
        return self.request("GET", f"/tasks/{_path_segment(task_id)}")[1]

    def stop(self, task_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"/tasks/{_path_segment(task_id)}")[1]

    def logs(self, task_id: str, params: dict[str, str], follow: bool) -> Iterator[bytes]:
        """A task's output as it arrives (docs/api.md, GET /tasks/<id>/logs)."""
        return self.stream(f"/tasks/{_path_segment(task_id)}/logs", params, None if follow else self.timeout)

    def nodes(self, stale: bool = False) -> list[dict[str, Any]]:
        return self.request("GET", "/nodes?stale" if stale else "/nodes")[1]

    def raft(self) -> dict[str, Any]:
        return self.request("GET", "/raft")[1]

    def watch(self, path: str, index: int, wait: float, stale: bool = False) -> tuple[Any, int]:
        """A blocking query (docs/api.md): GET ``path`` once the node has applied beyond
        ``index``, or after ``wait`` seconds; return (JSON, the answer's X-Orion-Index).
        ``stale``: no read point first (see ``orion/cli/watch.py`` for when a watcher asks)."""
        got: dict[str, str] = {}
        sep = "&" if "?" in path else "?"
        query = f"index={index}&wait={wait:g}s" + ("&stale" if stale else "")
        _, data = self.request("GET", f"{path}{sep}{query}", timeout=wait + self.timeout, answer_headers=got)
        return data, int(got.get("X-Orion-Index", index))

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, body): 503 is an answer here, not an error."""
        status, body = self.request("GET", "/health", accept=(503,))
        return status == 200, body


def versioned(path: str) -> str:
    """``/tasks`` -> ``/v1/tasks``; a path already under ``/v1`` stays as it is."""
    return path if path == API_PREFIX or path.startswith(API_PREFIX + "/") else API_PREFIX + path


def _path_segment(value: str) -> str:
    return requests.utils.quote(value, safe="")
