"""The replicated state machine: typed commands and the deterministic machine that applies them.

No clock, no I/O: every replica that applies the same log reaches the same state.
``entries.py`` is how one log entry (a command or a batch) reaches the machine and
how the Raft backend is handed it; the store that feeds it is ``orion/store/``,
the pysyncobj backend ``orion/raft/``.
"""

# The network's commands enter the log codec's table on import: every reader of the log has them.
from orion.state import network_commands  # noqa: F401
