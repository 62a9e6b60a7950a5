"""Engine health is node health: the readiness rule as scenario transcripts.

Each scenario is a list of probes ``(time, engine answered)``; the transcript
is what :func:`readiness.step` decides after each one, read like a log. The
runner is then driven against a real state machine (``LocalStore``) with a
fake clock and engine, to show it reports only changes.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from result_kit import refused

from orion.domain.model import NodeInfo, Resources
from orion.node import readiness
from orion.node.readiness_loop import ReadinessLoop
from orion.state.commands import RegisterNode, SetNodeReadiness
from orion.state.results import RefusalKind
from orion.store.local import LocalStore

GRACE = 8.0


def transcript(probes: list[tuple[float, bool]], start: float = 0.0) -> list[str]:
    last, lines = start, []
    for now, answered in probes:
        last, decided = readiness.step(last, answered, now, GRACE)
        verdict = "ready" if decided.ready else f"NOT READY ({decided.reason})"
        lines.append(f"t={now:g} {'up' if answered else 'down'} -> {verdict}")
    return lines


def every_second(pattern: str, start: int = 1) -> list[tuple[float, bool]]:
    """'uu..u': one probe per second, u = the engine answered, . = it did not."""
    return [(float(start + i), c == "u") for i, c in enumerate(pattern)]


def test_grace_boundary_an_engine_silent_for_exactly_the_grace_is_still_ready():
    assert transcript(every_second("u........."))[-3:] == [
        "t=8 down -> ready",
        "t=9 down -> ready",  # 8 s since the last answer (t=1): not longer than the grace
        "t=10 down -> NOT READY (docker engine has not answered for 9s)",
    ]


def test_a_docker_restart_of_a_few_seconds_does_not_trip_it():
    lines = transcript(every_second("uuu.....uuu"))  # five silent probes: systemctl restart docker
    assert all(line.endswith("ready") for line in lines)


def test_a_flapping_engine_that_answers_within_every_grace_stays_ready():
    lines = transcript(every_second("u......u......u......u"))
    assert all(line.endswith("-> ready") for line in lines)


def test_a_flapping_engine_with_long_silences_goes_not_ready_and_back_each_time():
    lines = transcript(every_second("u" + "." * 9 + "u" + "." * 9 + "u"))
    assert [line.split("-> ")[1][:9] for line in lines if "NOT" in line or " up " in line] == [
        "ready", "NOT READY", "ready", "NOT READY", "ready"]


def test_recovery_the_first_answer_makes_it_ready_again():
    lines = transcript(every_second("u" + "." * 12 + "u"))
    assert lines[-2] == "t=13 down -> NOT READY (docker engine has not answered for 12s)"
    assert lines[-1] == "t=14 up -> ready"


def test_an_engine_that_never_answered_gets_the_grace_from_when_watching_began():
    assert transcript([(5.0, False), (9.0, False)], start=0.0) == [
        "t=5 down -> ready", "t=9 down -> NOT READY (docker engine has not answered for 9s)"]


@given(st.lists(st.tuples(st.floats(0.01, 20), st.booleans()), max_size=40))
def test_not_ready_exactly_when_silent_longer_than_the_grace(steps):
    last = now = 0.0
    for gap, answered in steps:
        now += gap
        new_last, decided = readiness.step(last, answered, now, GRACE)
        assert decided.ready == (answered or now - last <= GRACE)
        assert new_last == (now if answered else last)
        last = new_last


# -- the runner, against a real state machine -----------------------------------------------


class Engine:
    def __init__(self) -> None:
        self.up = True
        self.timeouts: list[float] = []

    def ping(self, timeout: float) -> bool:
        self.timeouts.append(timeout)
        return self.up


def loop_with(engine: Engine, clock: list[float]) -> tuple[ReadinessLoop, LocalStore]:
    store = LocalStore()
    store.submit(RegisterNode(node=NodeInfo("n1", "a", "r", capacity=Resources(1 << 30, 1000))), 1)
    loop = ReadinessLoop("n1", store, engine.ping, grace=GRACE, interval=1.0, write_timeout=1.0,
                         mono=lambda: clock[0])
    return loop, store


def test_the_runner_reports_only_changes_and_the_registry_follows():
    engine, clock = Engine(), [0.0]
    loop, store = loop_with(engine, clock)
    seen = []
    for t, up in [(1, True), (2, False), (9, False), (10, False), (11, False), (12, True), (13, True)]:
        clock[0], engine.up = float(t), up
        seen.append(f"t={t} {loop.run_once()}")
    assert seen == [
        "t=1 ready", "t=2 ready", "t=9 ready",
        "t=10 reported not ready: docker engine has not answered for 9s",
        "t=11 not ready: docker engine has not answered for 9s",
        "t=12 reported ready: the engine answers",
        "t=13 ready",
    ]
    node, _ = store.read(lambda m: m.node("n1"))
    assert node.ready and node.ready_reason == ""
    assert set(engine.timeouts) == {1.0}  # a ping slower than a probe period is no answer


def test_the_runner_repairs_a_registry_that_disagrees():
    """A re-registration resets readiness to ready: the next pass says not ready again."""
    engine, clock = Engine(), [0.0]
    loop, store = loop_with(engine, clock)
    engine.up, clock[0] = False, 20.0
    assert loop.run_once().sentence.startswith("reported not ready")
    store.submit(RegisterNode(node=NodeInfo("n1", "a", "r", capacity=Resources(1 << 30, 1000))), 1)
    assert loop.run_once().sentence.startswith("reported not ready")
    assert not store.read(lambda m: m.node("n1"))[0].ready


def test_readiness_commands_are_refused_for_an_unknown_node_and_idempotent():
    store = LocalStore()
    refused(store.submit(SetNodeReadiness(node_id="nx", ready=False, reason="x"), 1), RefusalKind.NOT_FOUND)
    store.submit(RegisterNode(node=NodeInfo("n1", "a", "r")), 1)
    assert store.submit(SetNodeReadiness(node_id="n1", ready=False, reason="down"), 1).changed is True
    assert store.submit(SetNodeReadiness(node_id="n1", ready=False, reason="down"), 1).changed is False
    assert store.submit(SetNodeReadiness(node_id="n1", ready=True, reason="ignored"), 1).node.ready_reason == ""
