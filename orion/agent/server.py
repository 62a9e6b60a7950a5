"""gunicorn, configured for a process that owns a Raft engine.

pysyncobj's engine must live in exactly one process, so: one worker, no
``--preload`` (the app, and with it the engine, is built in the worker after
the fork), ``max_requests = 0`` (a recycled worker would drop the replica),
and the agent stopped in ``worker_exit``. This is a custom
``BaseApplication``: no gunicorn command line or config file can undo it.

The worker is ``HoldingWorker`` (``worker.py``): gunicorn's gthread whose event
loop holds blocking queries without a thread and runs followed logs on threads
of their own, so neither can starve ``/health`` or the writes. Each held
connection is a file descriptor: the worker may hold ``max_blocking_queries``
and ``max_log_follows`` of them beyond what plain requests had, and
:func:`raise_open_files` lifts the soft limit to fit.
"""

from __future__ import annotations

import logging
import resource
import signal
import socket
import ssl
import sys
import threading
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.sock import create_sockets

from orion.agent.fatal import take_refusal
from orion.agent.systemd import hide_notify_socket
from orion.agent.worker import HoldingWorker, HoldSettings
from orion.config import AgentConfig

log = logging.getLogger("orion.agent.server")

# How long a thread may hold the GIL while another waits for it (CPython's default: 5 ms).
# The Raft tick thread and the request threads each do a little and then wait on a socket;
# behind a loop's pass (reconcile, healing) they waited up to 5 ms for every step of a
# write. 1 ms, measured with bench/write_path.py: one client's p50 5.3 -> 4.1 ms and 16
# clients +20-40 % creates/s; 0.2 ms costs more in switching than it saves.
GIL_SWITCH_INTERVAL = 0.001
# Connections for plain requests, idle keep-alive ones included: gunicorn's own default
# worker_connections, what the agent had before it held blocking queries beside them.
PLAIN_CONNECTIONS = 1000
# File descriptors beside the API's connections: Raft peers, the journal, gossip, the
# engine's socket, a forwarded follow's connection to its owner node, log files.
OTHER_FILES = 512


def worker_connections(cfg: AgentConfig) -> int:
    """The connections the worker may have open at once: plain ones, held ones, followed logs,
    exec sessions (each also holds a connection to its engine or to the task's node: OTHER_FILES)."""
    return PLAIN_CONNECTIONS + cfg.max_blocking_queries + cfg.max_log_follows + cfg.max_exec_sessions


def raise_open_files(needed: int) -> int:
    """Lift the soft RLIMIT_NOFILE to ``needed`` (at most the hard limit; systemd's unit sets
    65536, a shell often 1024) and return what it is now; below ``needed`` it logs how to fix."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning("only %d open files allowed (hard limit), %d wanted for max_blocking_queries and "
                    "max_log_follows: raise LimitNOFILE (ulimit -n) or lower them", soft, needed)
    return soft


def setup_logging(level: str) -> None:
    """One line per event on stderr: journald adds the timestamp under systemd."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


class AgentServer(BaseApplication):
    """Serves one node's API; the agent is built inside the single worker."""

    def __init__(self, cfg: AgentConfig, listener: socket.socket | None = None) -> None:
        """``listener``: the API's socket, already bound (orion/agent/preflight.py); without
        one gunicorn binds ``cfg.port`` itself (and retries a taken port for 5 s)."""
        self.cfg_agent = cfg
        self.listener = listener
        self.agent: Any = None
        self._ssl_context: ssl.SSLContext | None = None
        self.holding: HoldSettings | None = None
        super().__init__()

    def load_config(self) -> None:
        cfg = self.cfg_agent
        settings = {
            "bind": [f"{cfg.bind}:{cfg.port}"],
            "workers": 1,
            "worker_class": HoldingWorker,
            "threads": cfg.http_threads,
            "worker_connections": worker_connections(cfg),
            "preload_app": False,
            "max_requests": 0,
            "timeout": 30,
            "graceful_timeout": int(cfg.shutdown_timeout),
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": cfg.log_level,
            "proc_name": f"orion-agent-{cfg.id}",
            "worker_exit": self._worker_exit,
            "post_worker_init": self._post_worker_init,
        }
        if cfg.tls_cert:
            settings.update(certfile=cfg.tls_cert, keyfile=cfg.tls_key, ssl_context=self._tls_context)
            if cfg.tls_client_ca:
                # mTLS: no certificate signed by this CA, no handshake (Nomad's verify_https_client).
                settings.update(ca_certs=cfg.tls_client_ca, cert_reqs=ssl.CERT_REQUIRED)
        # gunicorn >= 23 opens a control socket at one fixed path per user: several agents
        # on one host would fight over it, and nothing of Orion's uses it.
        if "control_socket_disable" in self.cfg.settings:
            settings["control_socket_disable"] = True
        for key, value in settings.items():
            self.cfg.set(key, value)

    def _tls_context(self, conf: Any, default_factory: Any) -> ssl.SSLContext:
        """gunicorn asks for a context per connection; build it once (reading and parsing the
        key each time costs a new client a millisecond) and refuse TLS below 1.2."""
        if self._ssl_context is None:
            context = default_factory()
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._ssl_context = context
        return self._ssl_context

    def run(self) -> None:
        """gunicorn's own ``run``, but serving on the socket bound before it started: an
        arbiter that has listeners binds nothing, so it has no taken port to retry."""
        arbiter = Arbiter(self)
        if self.listener is not None:
            arbiter.LISTENERS = create_sockets(self.cfg, arbiter.log, [self.listener.detach()])
        try:
            arbiter.run()
        except RuntimeError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            sys.exit(1)
        except SystemExit:
            refusal = take_refusal(self.cfg_agent.data_dir)  # the worker ended the agent (fatal.py)
            if refusal is None:
                raise
            print(f"Error: {refusal}", file=sys.stderr)
            sys.exit(2)

    def load(self) -> Any:
        setup_logging(self.cfg_agent.log_level)
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)  # the worker: where Raft and the requests run
        # Start-up milestones (bench/start_ready.py reads them back: where the time to ready goes).
        log.info("worker: building the agent")
        # In the worker, after the fork. The replica first: it hears its leader (or elects
        # itself) while the rest is imported and built (orion/agent/store_first.py).
        from orion.agent.store_first import start_store

        store = start_store(self.cfg_agent)
        from orion.agent.compose import build_agent

        self.agent, app = build_agent(self.cfg_agent, store)
        from orion.api.exec import is_exec_request
        from orion.api.logs import is_followed_log

        def streams(method: str, path: str, query: str) -> bool:
            return is_followed_log(method, path, query) or is_exec_request(method, path)

        # Read by HoldingWorker once the app is built (orion/agent/worker.py).
        self.holding = HoldSettings(max_held=self.cfg_agent.max_blocking_queries,
                                    max_streams=self.cfg_agent.max_log_follows + self.cfg_agent.max_exec_sessions,
                                    streams=streams)
        return app

    def _post_worker_init(self, worker: Any) -> None:
        if self.agent is not None:
            self.agent.start()
            release_held_reads_on_term(self.agent.closing)
            log.info("worker: agent started")

    def _worker_exit(self, server: Any, worker: Any) -> None:
        if self.agent is not None:
            self.agent.stop()


def release_held_reads_on_term(closing: threading.Event) -> None:
    """Chain the worker's SIGTERM handler: first release blocking reads (held for up to
    minutes, see orion/api/http.py), then let gunicorn drain as usual. gunicorn installs
    its handler before post_worker_init, so this runs in front of it."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        closing.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def serve(cfg: AgentConfig, listener: socket.socket | None = None) -> None:
    """Run the node until SIGTERM/SIGINT (gunicorn handles the signals); ``listener`` is
    the API's socket from the preflight."""
    setup_logging(cfg.log_level)
    hide_notify_socket()
    raise_open_files(worker_connections(cfg) + OTHER_FILES)
    log.info("orion agent %s: api %s://%s%s, raft %s, data %s", cfg.id, cfg.api_scheme, cfg.api_addr,
             " (client certificates required)" if cfg.tls_client_ca else "", cfg.raft_addr, cfg.data_dir)
    AgentServer(cfg, listener).run()
