"""Ending the agent from inside gunicorn's worker with exit code 2 and one line.

A refusal found after start-up (the cluster refuses this host's subnet lease: its underlay
MTU is below the overlay's) cannot be fixed by restarting, so it must end the agent as a
start-up refusal does (exit 2: systemd's RestartPreventExitStatus). The worker cannot set
the master's exit code itself: it leaves the line in the data dir and exits with gunicorn's
"worker failed to boot" code, on which the master halts; ``AgentServer.run`` then prints the
line and exits 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR: the master halts instead of forking a new worker.
WORKER_BOOT_ERROR = 3
_FILE = "refused"


def end_agent(data_dir: str, line: str) -> None:
    """In the worker: leave ``line`` for the master and exit at once (containers stay)."""
    try:
        Path(data_dir, _FILE).write_text(line + "\n")
    except OSError:
        pass
    print(f"Error: {line}", file=sys.stderr, flush=True)
    os._exit(WORKER_BOOT_ERROR)


def take_refusal(data_dir: str) -> str | None:
    """In the master, after it halted: the worker's line (removed), or None."""
    path = Path(data_dir, _FILE)
    try:
        line = path.read_text().strip()
        path.unlink()
    except OSError:
        return None
    return line or None
