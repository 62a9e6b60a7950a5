"""What the replicated state keeps per service, and how a rollback picks its version.

Split from ``orion/state/services.py`` (whose ``ServiceRegistry`` changes these records
through the service commands): the records are values, read by the API's views and the
deployment loop too, and their plain form is part of the machine's snapshot.

A :class:`ServiceRecord` holds the service's versions, newest last and bounded
(``SERVICE_DEFAULTS["versions_kept"]``), each with the deployment that rolled it out; the
last fully healthy version (``stable``, kept however old: auto-revert needs its spec); and
the current deployment's progress and ``step`` (plans applied to it, so a stale plan is
refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orion.domain.service import SUCCESSFUL, Deployment, ServiceSpec, SlotProgress
from orion.state.results import RefusalKind, Refused

NOT_FOUND, WRONG_STATE = RefusalKind.NOT_FOUND, RefusalKind.WRONG_STATE


@dataclass(frozen=True)
class VersionRecord:
    """One version of a service: its spec, when it was declared, why, and its rollout.

    ``copy_of``: the earlier version whose spec a rollback or revert declared again.
    """

    version: int
    spec: ServiceSpec
    at: float
    deployment: Deployment
    copy_of: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "spec": self.spec.to_dict(), "at": self.at,
                "deployment": self.deployment.to_dict(), "copy_of": self.copy_of}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VersionRecord:
        copy_of = d.get("copy_of")
        return cls(int(d["version"]), ServiceSpec.from_dict(d["spec"]), float(d["at"]),
                   Deployment.from_dict(d["deployment"]), None if copy_of is None else int(copy_of))


@dataclass(frozen=True)
class ServiceRecord:
    """A service as replicated: ``versions`` oldest first (the current one last)."""

    name: str
    versions: tuple[VersionRecord, ...]
    stable: VersionRecord | None = None
    step: int = 0
    progress: tuple[SlotProgress, ...] = ()

    @property
    def current(self) -> VersionRecord:
        return self.versions[-1]

    @property
    def spec(self) -> ServiceSpec:
        return self.current.spec

    @property
    def deployment(self) -> Deployment:
        return self.current.deployment

    def version(self, number: int) -> VersionRecord | None:
        """Version ``number`` if still kept (the stable one always is)."""
        found = [v for v in self.versions if v.version == number]
        if not found and self.stable is not None and self.stable.version == number:
            return self.stable
        return found[0] if found else None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "versions": [v.to_dict() for v in self.versions],
                "stable": self.stable.to_dict() if self.stable else None, "step": self.step,
                "progress": [p.to_dict() for p in self.progress]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServiceRecord:
        stable = d.get("stable")
        return cls(str(d["name"]), tuple(VersionRecord.from_dict(v) for v in d["versions"]),
                   VersionRecord.from_dict(stable) if stable else None, int(d.get("step", 0)),
                   tuple(SlotProgress.from_dict(p) for p in d.get("progress") or ()))


def rollback_target(record: ServiceRecord, version: int = 0) -> VersionRecord | Refused:
    """The version a rollback declares again, or why there is none.

    ``version`` 0 picks the newest earlier version whose rollout succeeded and whose
    spec differs from the current one (Swarm's "previous spec", minus the failed ones).
    """
    current = record.current
    if version:
        found = record.version(version)
        if found is None:
            kept = ", ".join(str(v.version) for v in record.versions)
            return Refused(NOT_FOUND, f"version {version} of {record.name} is not kept (kept: {kept})")
        if found.spec == current.spec:
            return Refused(WRONG_STATE,
                           f"version {version} has the spec {record.name} runs now (version {current.version})")
        return found
    candidates = [v for v in (*record.versions, *([record.stable] if record.stable else []))
                  if v.version < current.version and v.deployment.state == SUCCESSFUL and v.spec != current.spec]
    if not candidates:
        return Refused(NOT_FOUND, f"{record.name} has no earlier version that rolled out healthy; "
                                  "name one with ?version=N (GET /services/<name>/versions)")
    return max(candidates, key=lambda v: v.version)

