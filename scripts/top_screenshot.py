"""Render ``orion top`` during a node kill to docs/img/orion-top.png (the README's picture).

    .venv/bin/python scripts/top_screenshot.py   # needs tmux, rsvg-convert (librsvg2-bin), the test engine

A real 3-node cluster on the test Docker engine (ORION_TEST_DOCKER_HOST) runs a
few busybox tasks; a filler pinned to one follower makes it the fullest node,
so the unpinned tasks land there too. That follower is SIGKILLed while
``orion top`` (in tmux) watches; once its tasks have moved, the pane is captured
with its colours (``capture-pane -e``), drawn by Rich as SVG and converted to PNG.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker
from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from harness import Cluster  # noqa: E402

ORION = str(Path(sys.executable).parent / "orion")
IMAGE = os.environ.get("ORION_TEST_IMAGE", "orion/busybox:latest")
WIDTH, HEIGHT = 132, 30


def pane(session: str, colours: bool = False) -> str:
    args = ["tmux", "capture-pane", "-p", "-t", session] + (["-e"] if colours else [])
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def main() -> None:
    docker_host = os.environ.get("ORION_TEST_DOCKER_HOST", "unix:///run/orion-test/docker.sock")
    out = ROOT / "docs" / "img" / "orion-top.png"
    session = f"orion-top-shot-{uuid.uuid4().hex[:6]}"
    engine = docker.DockerClient(base_url=docker_host)
    with tempfile.TemporaryDirectory() as root:
        tag = uuid.uuid4().hex[:4]
        cluster = Cluster(root=Path(root), docker_host=docker_host, tag=tag,
                          labels=[{"name": f"node{i}-{tag}"} for i in (1, 2, 3)])
        try:
            cluster.start()
            leader = cluster.wait(cluster.leader, 30, "a leader")
            victim, other = [n for n in cluster.nodes if n is not leader]
            sleep = {"image": IMAGE, "command": ["sleep", "3600"]}
            leader.post("/tasks", json={**sleep, "name": "batch", "memory": "2G", "nodeSelectors": {"name": victim.id}})
            leader.post("/tasks", json={**sleep, "name": "db", "memory": "512M", "nodeSelectors": {"name": other.id}})
            leader.post("/tasks", json={**sleep, "name": "cache", "memory": "256M",
                                        "nodeSelectors": {"name": leader.id}, "portBindings": {"6379/tcp": ""}})
            leader.post("/tasks", json={**sleep, "name": "web", "memory": "64M", "count": 3,
                                        "portBindings": {"80/tcp": ""}})
            cluster.wait(lambda: all(t["state"] == "running" for t in leader.get("/tasks").json()), 60, "running")
            subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(WIDTH), "-y", str(HEIGHT),
                            f"TERM=xterm-256color {ORION} --addr {leader.url} top"], check=True)
            cluster.wait(lambda: "web" in pane(session), 30, "orion top drawn")
            time.sleep(2)
            cluster.kill(victim)
            cluster.wait(lambda: len(re.findall(r"task \w+ moved", pane(session))) >= 3, 60, "web tasks moved")
            time.sleep(1)
            ansi = pane(session, colours=True)
            subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
            cluster.stop()
            for node in cluster.nodes:
                for c in engine.containers.list(all=True, filters={"label": f"orion.node={node.id}"}):
                    c.remove(force=True)
    console = Console(record=True, width=WIDTH, file=io.StringIO(), force_terminal=True, color_system="truecolor")
    console.print(Text.from_ansi(ansi.rstrip("\n")), end="")
    svg = Path(tempfile.mkdtemp()) / "orion-top.svg"
    console.save_svg(str(svg), title="orion top — a node killed, its tasks moved")
    # Rich pads with no-break spaces that librsvg collapses unless told to preserve them.
    svg.write_text(svg.read_text().replace("<svg ", '<svg xml:space="preserve" ', 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["rsvg-convert", "--zoom", "1.5", "-o", str(out), str(svg)], check=True)
    print(out)


if __name__ == "__main__":
    main()
