"""A service's spec as the API shows it is a PUT body that declares the very same spec:
what ``orion service apply`` relies on to compare a file with what runs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orion.api.schema.fields import duration_text as duration
from orion.api.schema.fields import parse_duration
from orion.api.schema.services import parse_service_request
from orion.api.service_views import spec_body

durations = st.sampled_from(["500ms", "1s", "2s", "10s", "90s", "1m30s", "5m", "1h", "1.5s"])
bodies = st.fixed_dictionaries(
    {"image": st.sampled_from(["nginx:1.25", "registry.local:5000/team/app@sha256:" + "a" * 64]),
     "memory": st.sampled_from(["64M", 100_000_000, "1Gi"]),
     "count": st.integers(1, 20)},
    optional={
        "cpu": st.sampled_from([0.25, 1, "500m"]),
        "command": st.sampled_from([["sh", "-c", "exec httpd -f"], "nginx -g 'daemon off;'"]),
        "env": st.dictionaries(st.sampled_from(["A", "B_2"]),  # NUL: refused by design (test_validation.py)
                               st.text(st.characters(exclude_characters="\0"), max_size=5), max_size=2),
        "portBindings": st.sampled_from([{"80/tcp": ""}, {"80/tcp": "8080", "53/udp": ""}]),
        "nodeSelectors": st.sampled_from([{"zone": "a"}]),
        "restartPolicy": st.sampled_from(["never", "on-failure", "always"]),
        "pullPolicy": st.sampled_from(["always", "never"]),
        "healthCheck": st.one_of(
            st.fixed_dictionaries({"http": st.just("/healthz"), "port": st.just("80/tcp")},
                                  optional={"interval": st.just("10s"), "timeout": st.just("2s"),
                                            "startPeriod": durations, "failures": st.integers(1, 5)}),
            st.fixed_dictionaries({"tcp": st.just(True), "port": st.just(80)}),
            st.fixed_dictionaries({"exec": st.sampled_from([["pg_isready"], "redis-cli ping"])})),
        "update": st.fixed_dictionaries(
            {}, optional={"maxParallel": st.integers(1, 4), "minHealthyTime": st.just("3s"),
                          "healthyDeadline": st.just("2m"), "autoRevert": st.booleans(),
                          "order": st.sampled_from(["start-first", "stop-first"])}),
        "volumes": st.just([{"source": "data", "target": "/var/lib/data", "readOnly": True}]),
    })


@given(bodies)
def test_the_shown_spec_declares_the_same_spec_again(body):
    spec = parse_service_request("web", body)
    assert parse_service_request("web", spec_body(spec)) == spec


@given(st.integers(0, 200_000).map(lambda ms: ms / 1000))
def test_durations_read_back_as_written(seconds):
    assert abs(parse_duration(duration(seconds)) - seconds) < 1e-9


def test_durations_read_like_people_write_them():
    assert [duration(s) for s in (0.5, 2, 90, 300, 3600, 5400)] == ["500ms", "2s", "1m30s", "5m", "1h", "1h30m"]
