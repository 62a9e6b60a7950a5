"""Config templates (orion/node/templates.py): substitution only, variables checked up front."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orion.node.templates import TemplateValues, render, template_problem

VALUES = TemplateValues(service="web", slot="2", task="web.2.d1", version="3", node="node1", node_addr="10.0.0.5",
                        overlay_ip="10.200.0.7", endpoints={"db": ("10.0.0.6:5432", "10.0.0.5:5432")})


def test_a_template_reads_the_task_s_own_values():
    text = ("upstream ${service}-${slot} on $node (${node_addr}, overlay ${overlay_ip}) v$version task ${task}\n"
            "db=${endpoints:db} cache=${endpoints:cache} price=$$5\n")
    assert render(text, VALUES) == ("upstream web-2 on node1 (10.0.0.5, overlay 10.200.0.7) v3 task web.2.d1\n"
                                    "db=10.0.0.5:5432,10.0.0.6:5432 cache= price=$5\n")


@pytest.mark.parametrize("text,problem", [
    ("line\n${servce}", "line 2: unknown variable ${servce}; known: ${service}"),
    ("$__class__", "line 1: unknown variable ${__class__}"),
    ("${env:HOME}", "line 1: unknown variable ${env:HOME}"),
    ("a\nb\ncost: 5$", "line 3: '$' is not followed by a variable; write $$ for a dollar sign"),
    ("${service", "line 1: '$' is not followed by a variable"),
])
def test_a_template_with_an_unknown_variable_or_a_lone_dollar_is_refused_by_line(text, problem):
    found = template_problem(text)
    assert found is not None and found.startswith(problem)
    with pytest.raises(ValueError, match="line"):
        render(text, VALUES)


@given(st.text(alphabet=st.characters(blacklist_characters="$"), max_size=200))
def test_text_without_a_dollar_renders_as_it_is(text):
    assert template_problem(text) is None and render(text, VALUES) == text

