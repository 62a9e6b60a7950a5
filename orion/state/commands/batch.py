"""The ``Batch`` entry: several writes committed as one log entry (batched writes)."""

from __future__ import annotations

from typing import ClassVar

from orion.state.commands.base import Command, command


@command
class Batch(Command):
    """Writes committed as one log entry (batched writes, ``orion/store/coalescer.py``): each an
    encoded command, applied as an entry of its own, with its own result and refusal.

    An entry, not a command of the machine: ``orion/state/entries.py`` unwraps it on every
    replica, and the machine itself has no handler for it (``ENTRY_ONLY``). An element that
    is not text reads as its text and, not being a command, is refused alone.
    """

    TYPE: ClassVar[str] = "batch"
    ENTRY_ONLY: ClassVar[bool] = True
    commands: tuple[str, ...] = ()
