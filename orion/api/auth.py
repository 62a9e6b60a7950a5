"""Who is calling, whether they may, and the audit line of every write: one place for the app.

Before any route (:meth:`Auth.install`):

1. An open path (``/health``; ``/metrics`` when the agent leaves it open) needs nothing.
2. The caller is identified (``tokens.py``): a bearer token, else a client
   certificate listed in the tokens file, else ``401``. An agent with no token at
   all (a loopback demo) asks for nothing: everyone is ``anonymous`` with scope
   ``admin``, and the audit log still names the client certificate when there is one.
3. A request a peer forwarded (``orion exec``, ``orion logs`` through another node)
   carries the original caller in ``X-Orion-Caller``, signed with ``X-Orion-Caller-Proof``
   (HMAC-SHA256 under the Raft secret, which only agents hold, as the join proof
   is): verified, it becomes the identity, with the forwarding node as ``via``;
   forged, it is a ``403``. Without it the peer's own identity stands (its
   ``api_token``, ``default``).
4. The scope the route needs (``scopes.py``, one table) against the caller's:
   ``403`` naming the scope needed.

After every write (any method but GET/HEAD/OPTIONS, refused ones included) one
audit record (``audit.py``) goes to the audit log (``audit_file.py``). An exec
session writes its own records (start, and end with its exit code): its answer
is a ``101`` that the hook leaves alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, request

from orion.api.audit import created_ids, request_record, summarize
from orion.api.audit_file import AuditLog
from orion.api.http import error_response
from orion.api.scopes import ANONYMOUS, Identity, Scope, is_write, needed, refusal, template
from orion.api.tokens import TokenSource

IDENTITY_KEY = "orion.identity"
# The body of a write, read ahead of its route for the audit (JSON within the body limit only).
BODY_KEY = "orion.audit.body"
CALLER_HEADER = "X-Orion-Caller"
CALLER_PROOF_HEADER = "X-Orion-Caller-Proof"
_WHAT = "orion-caller-v1"


def _error(status: int, message: str, **extra: Any) -> Response:
    return error_response(status, message, "Authorization", **extra)


def certificate_subject(environ: Mapping[str, Any]) -> str:
    """The TLS client certificate's subject as RFC 4514 writes it (``CN=alice,O=ops``: what
    ``openssl x509 -noout -subject -nameopt RFC2253`` prints), or "" without one."""
    sock = environ.get("gunicorn.socket")
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return ""
    try:
        cert = getpeercert()
    except (OSError, ValueError):
        return ""
    return subject_text(cert.get("subject", ())) if cert else ""


_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
          "stateOrProvinceName": "ST", "localityName": "L", "domainComponent": "DC", "userId": "UID"}


def subject_text(rdns: Any) -> str:
    """``getpeercert()``'s subject (RDNs in the certificate's order) -> RFC 4514 (last RDN first)."""
    out = []
    for rdn in reversed(rdns):
        out.append("+".join(f"{_SHORT.get(k, k)}={_escape(v)}" for k, v in rdn))
    return ",".join(out)


def _escape(value: str) -> str:
    escaped = "".join("\\" + c if c in ',+"\\<>;=' else c for c in value)
    if escaped[:1] in ("#", " "):
        escaped = "\\" + escaped
    return escaped[:-1] + "\\ " if escaped.endswith(" ") else escaped


def caller_proof(secret: str, caller: str, method: str, path: str) -> str:
    """HMAC-SHA256 of the caller header, bound to the request it travels with."""
    message = "\n".join((_WHAT, caller, method.upper(), path)).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _caller_header(identity: Identity, node_id: str) -> str:
    return json.dumps({"name": identity.name, "scope": identity.scope.label, "how": identity.how,
                       "certificate": identity.certificate, "via": identity.via or node_id},
                      separators=(",", ":"), ensure_ascii=True)


class Auth:
    """The app's authentication, authorization and audit (see the module note).

    ``tokens``: the credentials (``TokenSource``); ``peer_secret``: the Raft secret, which
    signs and checks forwarded callers; ``audit``: where write records go (None: nowhere,
    in tests that do not look)."""

    def __init__(self, tokens: TokenSource, node_id: str, peer_secret: str, audit: AuditLog | None,
                 open_paths: frozenset[str], metrics_open: bool, clock: Callable[[], float] = time.time) -> None:
        self.tokens = tokens
        self.node_id = node_id
        self.peer_secret = peer_secret
        self.audit = audit
        self.open_paths = open_paths
        self.metrics_open = metrics_open
        self.clock = clock

    # -- identify ------------------------------------------------------------------------

    def identify(self, authorization: str, certificate: str) -> Identity | None:
        """The caller, from the ``Authorization`` header and the client certificate's subject;
        None: credentials are required and these are not any."""
        book = self.tokens.book()
        if not book.required:
            return Identity(ANONYMOUS, Scope.ADMIN, "anonymous", certificate=certificate)
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and given.strip():
            found = book.token(given.strip())
            return Identity(found.name, found.scope, found.how, certificate=certificate) if found else None
        return book.certificate(certificate) if certificate else None

    def vouched(self, peer: Identity, caller: str, proof: str, method: str, path: str) -> Identity | None:
        """The caller a peer forwarded, or None when the proof does not verify."""
        expected = caller_proof(self.peer_secret, caller, method, path)
        if not hmac.compare_digest(proof.encode(), expected.encode()):
            return None
        try:
            data = json.loads(caller)
            scope = Scope.parse(str(data["scope"]))
            return Identity(str(data["name"]), min(scope, peer.scope), str(data.get("how") or "token"),
                            certificate=str(data.get("certificate") or ""), via=str(data.get("via") or ""))
        except (ValueError, KeyError, TypeError):
            return None

    def vouch(self, identity: Identity | None, method: str, path: str) -> dict[str, str]:
        """The headers a request this node forwards for ``identity`` carries (``logs.py``, ``exec.py``)."""
        if identity is None:
            return {}
        caller = _caller_header(identity, self.node_id)
        return {CALLER_HEADER: caller, CALLER_PROOF_HEADER: caller_proof(self.peer_secret, caller, method, path)}

    # -- the app's hooks -------------------------------------------------------------------

    def install(self, app: Flask) -> None:
        """Register the checks before every route and the audit after every write: first of the
        app's hooks, so a request without credentials is refused before anything reads it."""
        app.before_request_funcs.setdefault(None, []).insert(0, self._before)
        app.after_request(self._after)

    def _before(self) -> Response | None:
        path = request.path
        if path in self.open_paths or (path == "/metrics" and self.metrics_open):
            return None
        identity = self.identify(request.headers.get("Authorization", ""), certificate_subject(request.environ))
        if identity is None:
            response = _error(401, "missing or wrong API token; send the header Authorization: Bearer <token> "
                                   "(orion --token or ORION_API_TOKEN)")
            response.headers["WWW-Authenticate"] = 'Bearer realm="orion"'
            return response
        caller = request.headers.get(CALLER_HEADER)
        if caller is not None:
            vouched = self.vouched(identity, caller, request.headers.get(CALLER_PROOF_HEADER, ""),
                                   request.method, path)
            if vouched is None:
                return _error(403, f"{CALLER_HEADER} does not verify: only an agent of this cluster (which holds "
                                   "its Raft secret) may forward a request on someone's behalf")
            identity = vouched
        request.environ[IDENTITY_KEY] = identity
        rule = request.url_rule
        scope = needed(request.method, template(rule.rule) if rule is not None else path)
        if not identity.allows(scope):
            return _error(403, refusal(identity, request.method, path, scope), needed=scope.label,
                          scope=identity.scope.label)
        if is_write(request.method) and self.audit is not None and _json_within_limit():
            # The route reads it again from the cache; the audit summarizes it. Any other body (a
            # snapshot file, a body over the limit) is left to its route, unread: the audit measures it.
            request.environ[BODY_KEY] = request.get_data(cache=True)
        return None

    def _after(self, response: Response) -> Response:
        if self.audit is None or not is_write(request.method) or response.status_code == 101:
            return response
        identity = request.environ.get(IDENTITY_KEY)
        body: Any = None
        if BODY_KEY in request.environ:
            body = summarize(request.environ[BODY_KEY], request.path)
        elif identity is not None and request.content_length:
            body = {"unread": request.content_length, "contentType": request.mimetype}
        answer = response.get_data() if 200 <= response.status_code < 300 and not response.is_streamed else b""
        self.audit.write(request_record(
            now=self.clock(), node=self.node_id, identity=identity, remote=request.remote_addr or "",
            method=request.method, path=request.script_root + request.path,
            resource=request.view_args or {}, query=request.args.to_dict(),
            body=body, status=response.status_code,
            created=created_ids(answer, response.mimetype or "")))
        return response


def _json_within_limit() -> bool:
    """A JSON body (or one without a type, as the strict reader takes it) with a length the app
    accepts: what the audit may read ahead of the route."""
    mimetype = request.mimetype
    json_body = not mimetype or mimetype == "application/json" or mimetype.endswith("+json")
    limit = request.max_content_length
    length = request.content_length
    return json_body and length is not None and length > 0 and (limit is None or length <= limit)


def identity_of(environ: Mapping[str, Any]) -> Identity | None:
    """Who the app identified for this request (None: an open path, or refused)."""
    return environ.get(IDENTITY_KEY)
