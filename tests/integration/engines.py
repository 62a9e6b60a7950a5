"""One private Docker engine per test node, so a node can die with its containers.

Each engine is started with ``scripts/ensure-dockerd.sh`` (its own socket, data
root, exec root, pid file and bridge, ``--iptables=false`` so it keeps off the
main engine's chains; published ports answer on the host through docker-proxy)
and gets the test image from ``scripts/build-test-image.sh``.

``kill(i)`` is a machine losing power as far as Docker is concerned: SIGKILL to
dockerd, its containerd, every shim of that engine and every process under
them (the containers themselves and docker-proxy), found through /proc.
``start(i)`` brings the engine back (its old containers come back exited).
Only processes whose command line names this engine's own paths are touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[2]
ENSURE = ROOT / "scripts" / "ensure-dockerd.sh"


@dataclass
class Engine:
    index: int
    base: Path  # run dir: socket, exec root, pid file
    data_root: Path
    bridge: str
    cidr: str
    # Publish ports on this host address only (dockerd --ip), as separate machines would:
    # then two nodes' engines can hold the same static host port at once (a drain migrating).
    publish_ip: str = ""

    @property
    def sock(self) -> Path:
        return self.base / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    @property
    def exec_root(self) -> Path:
        return self.base / "exec"

    @property
    def pidfile(self) -> Path:
        return self.base / "docker.pid"

    def env(self) -> dict[str, str]:
        return {**os.environ, "ORION_DOCKER_SOCK": str(self.sock), "ORION_DOCKER_DATA_ROOT": str(self.data_root),
                "ORION_DOCKER_EXEC_ROOT": str(self.exec_root), "ORION_DOCKER_PIDFILE": str(self.pidfile),
                "ORION_DOCKER_BRIDGE": self.bridge, "ORION_DOCKER_BRIDGE_CIDR": self.cidr,
                "ORION_DOCKER_IPTABLES": "false", "ORION_DOCKER_LOG": f"/tmp/{self.bridge}.log",
                "DOCKER_HOST": self.host,
                **({"ORION_DOCKER_EXTRA_ARGS": f"--ip {self.publish_ip}"} if self.publish_ip else {})}

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        out = subprocess.run([str(ENSURE)], env=self.env(), capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"engine {self.index} did not start:\n{out.stdout}\n{out.stderr}")

    def _pids(self) -> list[int]:
        """dockerd, and every process of this engine: its tree and its shims' trees."""
        marker = str(self.exec_root)
        children: dict[int, list[int]] = {}
        roots: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            pid = int(entry.name)
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(pid)
            if marker in cmd and ("dockerd" in cmd or "containerd" in cmd):
                roots.append(pid)
        try:
            roots.append(int(self.pidfile.read_text().strip()))
        except (OSError, ValueError):
            pass
        seen: set[int] = set()
        stack = list(roots)
        while stack:
            pid = stack.pop()
            if pid in seen or pid <= 1:
                continue
            seen.add(pid)
            stack.extend(children.get(pid, ()))
        return sorted(seen)

    def kill(self) -> None:
        """SIGKILL the engine and everything it runs (the node's containers die)."""
        for _ in range(3):  # a shim may spawn while we look: go round until nothing is left
            pids = self._pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        self.pidfile.unlink(missing_ok=True)
        # A killed containerd may linger as a zombie (nothing reaps it here): a stale pid file
        # would make the next dockerd wait for it forever.
        (self.exec_root / "containerd" / "containerd.pid").unlink(missing_ok=True)

    def alive(self) -> bool:
        try:
            client = docker.DockerClient(base_url=self.host, timeout=5)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:  # noqa: BLE001
            return False

    def remove_containers(self) -> None:
        try:
            client = docker.DockerClient(base_url=self.host, timeout=30)
        except Exception:  # noqa: BLE001
            return
        try:
            for c in client.containers.list(all=True, filters={"label": "orion.managed=1"}):
                try:
                    c.remove(force=True)
                except docker.errors.APIError:
                    pass
        except Exception:  # noqa: BLE001
            pass
        finally:
            client.close()

    def destroy(self) -> None:
        self.kill()
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        # dockerd bind-mounts its data root, overlays and network namespaces (swarm) live under
        # it and the exec root: lazily unmount every mount below either, deepest first.
        roots = (str(self.data_root), str(self.base))
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for point in sorted((m for m in mounts if m.startswith(roots)), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
        for path in (self.data_root, self.base):
            shutil.rmtree(path, ignore_errors=True)


class Engines:
    """``n`` engines with distinct bridges (by default 172.31.24x.0/24, orionh1..n)."""

    def __init__(self, n: int, run_dir: Path = Path("/run/orion-heal"),
                 data_dir: Path = Path("/var/lib/orion-heal"), bridge_prefix: str = "orionh",
                 subnet_base: int = 240, publish_ips: list[str] | None = None) -> None:
        self.items = [Engine(i, run_dir / f"e{i}", data_dir / f"e{i}", f"{bridge_prefix}{i}",
                             f"172.31.{subnet_base + i}.1/24", (publish_ips or [""] * n)[i - 1])
                      for i in range(1, n + 1)]

    def __getitem__(self, i: int) -> Engine:
        return self.items[i]

    def start(self) -> None:
        for engine in self.items:
            engine.start()

    def destroy(self) -> None:
        for engine in self.items:
            engine.destroy()
        for parent in {e.base.parent for e in self.items} | {e.data_root.parent for e in self.items}:
            shutil.rmtree(parent, ignore_errors=True)
