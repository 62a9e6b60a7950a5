"""Orion's DNS server as a process inside a lab namespace (bound to that host's bridge
gateway, as in production), its view read from a JSON file at query time, so a test
changes what the server answers by rewriting the file.

    ip netns exec NS python lab_dns_server.py ADDRESS VIEW.json RESOLV.conf

Prints "ready" once listening; runs until killed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

from orion.network.dns_server import DnsServer
from orion.network.view import DiscoveryView, Endpoint, Node, Service, ServicePort


def view_from_json(data: dict) -> DiscoveryView:
    services = tuple(Service(s["name"], s["mode"], s.get("vip"), tuple(ServicePort(**p) for p in s.get("ports", ())))
                     for s in data["services"])
    return DiscoveryView(services, tuple(Endpoint(**e) for e in data["endpoints"]),
                         tuple(Node(**n) for n in data["nodes"]), data.get("serial", 0))


class FileView:
    """The view in ``path``, parsed again whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._view = DiscoveryView()
        self._lock = threading.Lock()

    def __call__(self) -> DiscoveryView:
        stat = os.stat(self._path)
        with self._lock:
            if (stat.st_mtime_ns, stat.st_size) != self._stamp:
                self._view = view_from_json(json.loads(self._path.read_text()))
                self._stamp = (stat.st_mtime_ns, stat.st_size)
            return self._view


def main() -> None:
    address, view_path, resolv = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    server = DnsServer(address, 53, FileView(view_path), resolv)
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print("ready", flush=True)
    done.wait()
    server.stop()


if __name__ == "__main__":
    main()
