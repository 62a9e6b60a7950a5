"""The replicated state machine: typed commands and the deterministic machine that applies them.

No clock, no I/O: every replica that applies the same log reaches the same state.
Commands are declared in ``commands/`` (one declaration each, by role), what an apply
returns in ``results.py`` (a ``Refused`` or a typed success). ``entries.py`` is how
one log entry (a command or a batch) reaches the machine and how the Raft backend
is handed it; the store that feeds it is ``orion/store/``, the pysyncobj backend
``orion/raft/``.
"""
