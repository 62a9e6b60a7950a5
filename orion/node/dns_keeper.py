"""Keeps this host's DNS server on its bridge gateway while the agent runs.

The gateway is known once the host holds a lease; the keeper then binds :53 there (UDP and
TCP). When several agents drive one engine (the loopback demo) they share one lease, one
gateway and one port: one of them binds it, the others find it taken and try again every
``retry`` seconds, so when the serving agent stops, another takes over within that period.
A lease that moves to another subnet moves the server with it.

Stopping the keeper closes the server (a socket of this process, gone with it anyway) so a
sibling agent can take the port; the datapath and the load balancer are left as they are.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Server(Protocol):
    def start(self) -> tuple[str, int]: ...
    def stop(self, timeout: float = 5.0) -> None: ...


class DnsKeeper:
    def __init__(self, gateway: Callable[[], str | None], make: Callable[[str], Server], retry: float) -> None:
        self._gateway = gateway
        self._make = make
        self._retry = retry
        self._server: Server | None = None
        self._bound_to: str | None = None
        self._last_error = ""
        self.wake = threading.Event()

    @property
    def serving(self) -> str | None:
        """The gateway this agent's server answers on, or None (no lease, or a sibling serves)."""
        return self._bound_to

    def run_once(self) -> str | None:
        gateway = self._gateway()
        if self._server is not None and gateway != self._bound_to:
            self._server.stop()
            self._server, self._bound_to = None, None
        if self._server is not None or gateway is None:
            return None
        server = self._make(gateway)
        try:
            address = server.start()
        except OSError as exc:
            error = f"DNS on {gateway} not bound ({exc.strerror or exc}); retrying every {self._retry:g} s"
            if error != self._last_error:  # once per cause, not every retry
                self._last_error = error
                return error
            return None
        self._server, self._bound_to, self._last_error = server, gateway, ""
        return f"DNS serving on {address[0]}:{address[1]}"

    def run_forever(self, stop_event: threading.Event) -> None:
        while not stop_event.is_set():
            try:
                sentence = self.run_once()
            except Exception:  # noqa: BLE001 - a failed pass never ends DNS for good
                log.exception("DNS keeper pass crashed; retrying")
                sentence = None
            if sentence:
                log.info("%s", sentence)
            self.wake.wait(self._retry)
            self.wake.clear()
        if self._server is not None:
            self._server.stop()
            self._server, self._bound_to = None, None
