"""How secrets, configs and registry credentials look over HTTP, and a task's references to them.

Metadata only for a secret: name, versions, sizes, keyed digests, the key that seals it and the
services that read it. Its sealed bytes are never put in an answer (they would let anyone with
the token try keys offline), and its value cannot be: no node's API opens it. A config is not
secret: ``GET /configs/<name>`` shows its bytes (base64).
"""

from __future__ import annotations

from typing import Any

from orion.api.schema import secrets as s
from orion.domain.model import TaskSpec
from orion.domain.sealing import SealError, sealed_key_id
from orion.domain.secrets import SECRET, FileRef, RegistryAuth, StoredObject


def _key_of(envelope: str) -> str | None:
    try:
        return sealed_key_id(envelope)
    except SealError:
        return None


def object_view(obj: StoredObject, used_by: list[str], detail: bool = False) -> s.SecretView:
    current = obj.current
    return {"name": obj.name, "version": current.version, "created": current.created, "size": current.size,
            "digest": current.digest, "usedBy": used_by,
            "keyId": _key_of(current.data) if obj.kind == SECRET else None, "template": current.template,
            "versions": [{"version": v.version, "created": v.created, "size": v.size, "digest": v.digest}
                         for v in obj.versions],
            "data": current.data if detail and obj.kind != SECRET else None}


def registry_view(auth: RegistryAuth) -> s.RegistryView:
    return {"server": auth.server, "username": auth.username, "created": auth.created, "digest": auth.digest,
            "keyId": _key_of(auth.sealed) or ""}


def file_view(ref: FileRef, pinned: bool) -> dict[str, Any]:
    """A file reference as a task shows it (``pinned``: with the version it reads) or as a PUT body."""
    view: dict[str, Any] = {"source": ref.source, "target": ref.target, "mode": f"{ref.mode:04o}",
                            "uid": ref.uid, "gid": ref.gid}
    if pinned:
        view["version"] = ref.version
    return view


def file_fields(spec: TaskSpec, pinned: bool) -> dict[str, Any]:
    """``secrets`` and ``configs`` of a task or service body, only those it has."""
    out: dict[str, Any] = {}
    for kind in ("secret", "config"):
        refs = [file_view(r, pinned) for r in spec.files if r.kind == kind]
        if refs:
            out[kind + "s"] = refs
    return out


def env_view(spec: TaskSpec) -> dict[str, Any]:
    """The environment as declared: a secret's variable shows which secret, never its value."""
    return {**dict(spec.env), **{e.name: {"secret": e.source} for e in spec.secret_env}}
