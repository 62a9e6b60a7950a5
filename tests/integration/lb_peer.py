"""The programs the load-balancer lab runs inside its network namespaces (standard
library only; started with ``ip netns exec NS python3 lb_peer.py ...``).

    serve NAME PORT           HTTP/1.1 (keep-alive) and UDP on PORT, both answering NAME
    get URL COUNT [TIMEOUT]   COUNT requests, a new connection each; one line per request:
                              the name, or "error <reason>"
    udp HOST PORT COUNT       COUNT datagrams, each from a new socket; the names, one a line
    session HOST PORT         one keep-alive connection: a GET per line read on stdin, the
                              answer (or "error ...") printed; "close" ends it
    resolve NAME              the addresses glibc resolves NAME to, one a line (or "error ...")
"""

from __future__ import annotations

import http.client
import http.server
import socket
import sys
import threading


def serve(name: str, port: int) -> None:
    body = name.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the session test holds one connection

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", port))

    def answer_udp() -> None:
        while True:
            _, peer = udp.recvfrom(512)
            udp.sendto(body, peer)

    threading.Thread(target=answer_udp, daemon=True).start()
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


def get(url: str, count: int, timeout: float) -> None:
    host, _, port = url.removeprefix("http://").rstrip("/").partition(":")
    for _ in range(count):
        try:
            conn = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
            conn.request("GET", "/")
            print(conn.getresponse().read().decode(), flush=True)
            conn.close()
        except OSError as exc:
            print(f"error {type(exc).__name__}", flush=True)


def udp(host: str, port: int, count: int) -> None:
    for _ in range(count):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            try:
                sock.sendto(b"who", (host, port))
                print(sock.recv(512).decode(), flush=True)
            except OSError as exc:
                print(f"error {type(exc).__name__}", flush=True)


def session(host: str, port: int) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    for line in sys.stdin:
        if line.strip() == "close":
            break
        try:
            conn.request("GET", "/")
            print(conn.getresponse().read().decode(), flush=True)
        except OSError as exc:
            print(f"error {type(exc).__name__}", flush=True)
    conn.close()


def resolve(name: str) -> None:
    try:
        infos = socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)
    except OSError as exc:
        print(f"error {type(exc).__name__}", flush=True)
        return
    for address in dict.fromkeys(info[4][0] for info in infos):
        print(address, flush=True)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "serve":
        serve(args[0], int(args[1]))
    elif command == "get":
        get(args[0], int(args[1]), float(args[2]) if len(args) > 2 else 3.0)
    elif command == "udp":
        udp(args[0], int(args[1]), int(args[2]))
    elif command == "session":
        session(args[0], int(args[1]))
    elif command == "resolve":
        resolve(args[0])
    else:
        raise SystemExit(f"unknown command {command}")
