"""``orion top`` in a real terminal (tmux) against a real 3-node cluster.

The screen must list the three nodes and a running task; after SIGKILL of a
node that holds no task (and is not the leader, so nothing else moves) the same
``orion top`` shows it dead, with no restart; once a second node is killed the
header says the node it talks to has no quorum; ``q`` exits 0. The task runs on the
shared engine; the node ``orion top`` talks to is the task's own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.docker]

ORION = str(Path(sys.executable).parent / "orion")


class Tmux:
    """One detached tmux session of a fixed size running one command."""

    def __init__(self, command: str, width: int = 150, height: int = 40) -> None:
        self.name = f"orion-top-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                        command], check=True)

    def screen(self) -> str:
        done = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True)
        return done.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; the screen:\n{screen}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def tmux_ok() -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed: scripts/ensure-test-tools.sh installs it")


def node_status(screen: str, node_id: str) -> str:
    """The STATUS column of the node's row in the nodes panel ('' when the row is not shown)."""
    for line in screen.splitlines():
        words = line.replace(" * ", " ").split()
        if node_id in words and words.index(node_id) + 1 < len(words):
            return words[words.index(node_id) + 1]
    return ""


def test_top_shows_a_node_die_without_a_restart(tmux_ok, cluster, test_image, tmp_path) -> None:
    leader = cluster.wait(cluster.leader, 30, "a leader")
    answer = leader.post("/tasks", json={"image": test_image, "memory": "16M", "name": "topweb",
                                         "command": ["sleep", "3600"]}).json()
    task_id = answer["id"]
    task = cluster.wait(lambda: (t := leader.get(f"/tasks/{task_id}").json())["state"] == "running" and t,
                        60, "the task running")
    home = next(n for n in cluster.nodes if n.id == task["nodeId"])
    victim = next(n for n in cluster.nodes if n is not leader and n is not home)
    exit_file = tmp_path / "top-exit"
    # The address after the command, as people type it (`orion top --addr URL`, like kubectl's flags).
    session = Tmux(f"{ORION} top --addr {home.url}; echo $? > {exit_file}")
    try:
        screen = session.wait_for(
            lambda s: all(node_status(s, n.id) == "alive" for n in cluster.nodes) and task_id in s and "running" in s,
            30, "three nodes alive and the running task")
        cluster.kill(victim)
        screen = session.wait_for(lambda s: node_status(s, victim.id) == "dead" and f"node {victim.id} dead" in s,
                                  30, f"{victim.id} dead in the nodes panel and the events line")
        assert "running" in next(line for line in screen.splitlines() if task_id in line)
        third = next(n for n in cluster.nodes if n not in (home, victim))
        cluster.kill(third)  # home alone: one of three, no quorum
        session.wait_for(lambda s: "NO QUORUM" in s, 30, "the header to say the node lost quorum")
        session.keys("q")
        cluster.wait(lambda: exit_file.exists() and exit_file.read_text().strip(), 10, "orion top to exit")
        assert exit_file.read_text().strip() == "0"
    finally:
        session.close()
