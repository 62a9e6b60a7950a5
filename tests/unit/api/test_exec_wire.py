"""``orion exec``'s wire: frames cut anywhere decode the same, the splice relays both ways over
real sockets (back-pressure, a client that leaves, the agent stopping), the upgrade's client
keeps what arrives with the 101, and the route refuses before it upgrades."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from api_kit import NODE, full_app, registered_store
from hypothesis import given, settings
from hypothesis import strategies as st

from orion.api.exec_wire import (
    HEADER,
    PROTOCOL,
    RESIZE,
    STATUS,
    STDIN,
    STDOUT,
    Decoder,
    ProtocolError,
    Target,
    Way,
    dial,
    frame,
    parse_resize,
    resize_frame,
    splice,
    status_frame,
    upgrade_answer,
)
from orion.state.commands import Placement, PlaceTasks, ReportTaskState

frames_st = st.lists(st.tuples(st.sampled_from([STDIN, STDOUT, 2, STATUS, RESIZE]), st.binary(max_size=300)),
                     max_size=12)


@settings(max_examples=200, deadline=None)
@given(frames_st, st.lists(st.integers(min_value=1, max_value=50), max_size=40))
def test_frames_cut_anywhere_decode_to_the_same_frames(frames: list[tuple[int, bytes]], cuts: list[int]) -> None:
    stream = b"".join(frame(c, p) for c, p in frames)
    decoder, got, at = Decoder(), [], 0
    for size in [*cuts, len(stream)]:
        got += list(decoder.feed(stream[at:at + size]))
        at += size
    assert got == frames and decoder.pending == 0


def test_the_header_is_dockers_and_garbage_is_refused() -> None:
    assert frame(STDOUT, b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"  # docker's stdcopy header
    assert HEADER.size == 8
    with pytest.raises(ProtocolError):
        list(Decoder().feed(b"GET / HTTP/1.1\r\n"))
    assert parse_resize(json.loads(resize_frame(40, 120)[8:]).__repr__().replace("'", '"').encode()) == (40, 120)
    with pytest.raises(ProtocolError):
        parse_resize(b'{"rows": 0, "cols": 80}')


def pairs() -> tuple[tuple[socket.socket, socket.socket], tuple[socket.socket, socket.socket]]:
    return socket.socketpair(), socket.socketpair()


def test_the_splice_relays_both_ways_and_ends_after_the_last_words() -> None:
    (client, client_far), (server, server_far) = pairs()
    up = Way(client_far, server_far, feed=lambda d: d.upper())
    down = Way(server_far, client_far, end=lambda: status_frame(0))
    result: list[str] = []
    relay = threading.Thread(target=lambda: result.append(splice(up, down, lambda: False, poll=0.05)))
    relay.start()
    client.sendall(b"hello")
    assert server.recv(100) == b"HELLO"
    server.sendall(b"world")
    server.shutdown(socket.SHUT_WR)  # the engine's streams end: the status follows what was said
    relay.join(5)
    got = b""
    client.settimeout(2)
    while len(got) < 5 + 8 + 14:
        got += client.recv(100)
    assert got == b"world" + status_frame(0) and result == ["done"]


def test_a_slow_reader_holds_the_other_side_back_instead_of_filling_memory() -> None:
    (client, client_far), (server, server_far) = pairs()
    up, down = Way(client_far, server_far), Way(server_far, client_far)
    stop = threading.Event()
    relay = threading.Thread(target=splice, args=(up, down, stop.is_set, 0.05))
    relay.start()
    server.setblocking(False)
    sent = 0
    try:
        while sent < 64 << 20:
            sent += server.send(b"x" * 65536)
    except BlockingIOError:
        pass
    assert sent < 16 << 20, "the relay read on though nobody read what it wrote"
    stop.set()
    relay.join(5)
    assert not relay.is_alive()


def test_a_client_that_leaves_ends_the_splice_and_a_stop_ends_it_too() -> None:
    (client, client_far), (server, server_far) = pairs()
    result: list[str] = []
    relay = threading.Thread(target=lambda: result.append(
        splice(Way(client_far, server_far), Way(server_far, client_far), lambda: False, poll=0.05)))
    relay.start()
    client.close()
    relay.join(5)
    assert result == ["client gone"]
    (client, client_far), (server, server_far) = pairs()  # both ends kept open: only the stop ends it
    stop = threading.Event()
    relay = threading.Thread(target=lambda: result.append(
        splice(Way(client_far, server_far), Way(server_far, client_far), stop.is_set, poll=0.05)))
    relay.start()
    stop.set()
    relay.join(5)
    assert result == ["client gone", "stopped"]


def test_the_upgrade_keeps_the_frames_that_came_with_the_101() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    asked: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        data = b""
        while b'"sh"' not in data:
            data += conn.recv(1000)
        asked.append(data)
        conn.sendall(upgrade_answer("node9") + frame(STDOUT, b"early"))
        assert conn.recv(100) == frame(STDIN, b"typed")
        conn.sendall(status_frame(4))
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    answer = dial(Target(f"http://127.0.0.1:{port}/tasks/t1/exec", headers={"Authorization": "Bearer x"}),
                  b'{"command": ["sh"]}', 5)
    assert (answer.status, answer.headers["X-Orion-Node"], answer.early) == (101, "node9", frame(STDOUT, b"early"))
    answer.sock.sendall(frame(STDIN, b"typed"))
    assert list(Decoder().feed(answer.sock.recv(100))) == [(STATUS, b'{"exitCode": 4}')]
    thread.join(5)
    head = asked[0].decode()
    assert f"Upgrade: {PROTOCOL}" in head and "Authorization: Bearer x" in head and "Content-Length: 19" in head


def test_a_refusal_comes_back_as_its_json() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    body = b'{"error": "no task t1", "field": "id"}'

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(1000)
        conn.sendall(b"HTTP/1.1 404 NOT FOUND\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        conn.close()

    threading.Thread(target=serve).start()
    answer = dial(Target(f"http://127.0.0.1:{listener.getsockname()[1]}/x"), b"{}", 5)
    assert (answer.status, answer.json()) == (404, {"error": "no task t1", "field": "id"})


# -- the route's refusals, before any upgrade (the session itself: tests/integration/test_exec.py) ----

UPGRADE = {"Connection": "Upgrade", "Upgrade": PROTOCOL}


def test_the_route_refuses_before_it_upgrades() -> None:
    store = registered_store()
    client = full_app(store).test_client()
    resp = client.post("/tasks", json={"image": "busybox", "memory": "8M"})
    task_id = resp.json["id"]
    assert client.post(f"/tasks/{task_id}/exec", json={"command": ["sh"]}).json["field"] == "Upgrade"
    assert client.post("/tasks/nope/exec", json={"command": ["sh"]}, headers=UPGRADE).status_code == 404
    resp = client.post(f"/tasks/{task_id}/exec", json={"command": []}, headers=UPGRADE)
    assert (resp.status_code, resp.json["field"]) == (400, "command")
    resp = client.post(f"/tasks/{task_id}/exec", json={"command": ["sh"]}, headers=UPGRADE)
    assert (resp.status_code, resp.json["field"]) == (409, "id") and "no container yet" in resp.json["error"]
    store.submit(PlaceTasks(placements=(Placement(task_id, NODE.id, 0),)), 1.0)  # placed: generation 1
    store.submit(ReportTaskState(task_id=task_id, node_id=NODE.id, generation=1, state="running",
                                 container_id="c1"), 1.0)
    resp = client.post(f"/tasks/{task_id}/exec", json={"command": ["sh"]}, headers=UPGRADE)
    assert resp.status_code == 501  # the test client cannot hand a connection over; gunicorn can
