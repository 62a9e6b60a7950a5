"""Placement constraints (orion/domain/constraints.py): the forms Swarm writes, their meaning on a
node that lacks the attribute, version comparison, and errors that say how to write one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orion.domain.constraints import Constraint, ConstraintError, parse, version_key
from orion.domain.model import NodeInfo

NODE = NodeInfo("n1", "", "", labels=(("disk", "ssd"), ("zone", "a")), hostname="web-1", os="linux",
                arch="x86_64", engine_version="20.10.24+dfsg1")


@pytest.mark.parametrize("text, holds", [
    ("node.labels.zone == a", True), ("node.labels.zone==a", True), ("node.labels.zone != a", False),
    ("node.labels.zone in (a, b)", True), ("node.labels.zone in [b,c]", False), ("node.labels.zone not in (b)", True),
    ("node.labels.disk exists", True), ("node.labels.gpu exists", False), ("node.labels.gpu not exists", True),
    ("node.labels.gpu != yes", True),  # a node without the label is "not yes"
    ("node.labels.gpu == yes", False), ("node.labels.gpu in (yes)", False), ("node.labels.gpu not in (yes)", True),
    ("node.hostname == web-1", True), ("node.id != n1", False), ("node.platform.os == linux", True),
    ("node.platform.arch == aarch64", False), ("engine.version >= 20.10", True), ("engine.version > 20.10.24", False),
    ("engine.version < 24", True), ("engine.version <= 20.10.24", True),
])
def test_what_each_form_means_on_a_node(text, holds):
    assert parse(text).matches(NODE) is holds


def test_a_constraint_reads_back_from_its_canonical_text():
    c = parse("  node.os==linux ")
    assert c == Constraint("node.platform.os", "==", ("linux",)) and str(c) == "node.platform.os == linux"
    assert parse(str(parse("node.labels.zone in [b, a, a]"))) == Constraint("node.labels.zone", "in", ("a", "b"))


@pytest.mark.parametrize("text, error", [
    ("zone == a", "unknown attribute 'zone'"),
    ("node.labels.zone ~ a", "is not a constraint"),
    ("node.labels.zone in ()", "'in' takes a list of values"),
    ("node.labels.zone exists yes", "'exists' takes no value"),
    ("node.labels.zone ==", "'==' needs a value"),
    ("engine.version >= latest", "'>=' compares versions"),
    ("node.labels.a b == c", "is not a label name"),
])
def test_a_bad_constraint_says_how_to_write_one(text, error):
    with pytest.raises(ConstraintError, match=error):
        parse(text)


def test_versions_compare_number_by_number():
    assert version_key("20.10.24+dfsg1") == (20, 10, 24) and version_key("v24.0") == (24,)
    assert version_key("20.10") == version_key("20.10.0") and version_key("latest") is None


labels = st.fixed_dictionaries({}, optional={"zone": st.sampled_from(["a", "b"]), "disk": st.just("ssd")})


@given(labels, st.sampled_from(["node.labels.zone", "node.labels.disk"]), st.sampled_from(["a", "b", "ssd"]))
def test_each_operator_and_its_negation_never_agree(node_labels, attribute, value):
    node = NodeInfo("n", "", "", labels=tuple(sorted(node_labels.items())))
    for yes, no in (("==", "!="), ("in", "not in"), ("exists", "not exists")):
        arg = "" if "exists" in yes else (f" ({value})" if "in" in yes else f" {value}")
        assert parse(f"{attribute} {yes}{arg}").matches(node) != parse(f"{attribute} {no}{arg}").matches(node)
