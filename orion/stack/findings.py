"""What reading a compose file finds, as values: the file is wrong, Orion cannot honour a key, or a note.

Every finding names its key path in the file (``services.web.deploy.replicas``,
``services.web.ports[1]``), as Compose names them, so the person at the terminal
knows which line to change. The converter collects them in a :class:`Findings`
while it walks the file; the CLI prints them and decides (refuse, or go on with
``--ignore-unsupported``), and tests compare them as values.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Invalid:
    """The file is wrong: refused whatever the flags (a schema violation, a missing variable, a value
    Orion's API refuses)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True, order=True)
class Unsupported:
    """A key Orion cannot honour. Refused unless ``--ignore-unsupported``; then it is left out, and
    with ``skips`` the whole service is (the service cannot run as written: a global or job mode, an
    image to build)."""

    path: str
    reason: str
    skips: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" + (" (the service is left out)" if self.skips else "")


@dataclass
class Findings:
    """The collector one conversion fills; ``notes`` are things worth saying that change nothing."""

    invalid: list[Invalid] = field(default_factory=list)
    unsupported: list[Unsupported] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def bad(self, path: str, message: str) -> None:
        self.invalid.append(Invalid(path, message))

    def cannot(self, path: str, reason: str, skips: bool = False) -> None:
        self.unsupported.append(Unsupported(path, reason, skips))

    def note(self, path: str, text: str) -> None:
        self.notes.append(f"{path}: {text}" if path else text)

    def skipped(self, prefix: str) -> bool:
        """Is the service at ``prefix`` (``services.web``) left out by one of its unsupported keys?"""
        return any(u.skips and (u.path == prefix or u.path.startswith(prefix + ".")) for u in self.unsupported)


def key_path(*parts: str | int) -> str:
    """``("services", "web", "ports", 1)`` -> ``services.web.ports[1]``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
