"""Event type patterns, subject globs and subject templates."""

from __future__ import annotations

import pytest

from services.notification.matching import (
    candidate_patterns,
    domain_event_types,
    pattern_problem,
    render_template,
    subject_matches,
    template_problem,
    type_matches,
)


def test_domain_event_types_come_from_every_events_proto() -> None:
    types = domain_event_types()
    assert "protomesh.agent.v1.ExecutionFailed" in types
    assert all(".v1." in t for t in types)
    assert not any(t.startswith("protomesh.events.v1.") for t in types), "the envelope is not a domain event"
    assert not any(t.endswith("Request") or t.endswith("Response") for t in types)


@pytest.mark.parametrize(("pattern", "matches"), [
    ("protomesh.agent.v1.ExecutionFailed", True),
    ("protomesh.agent.v1.*", True),
    ("protomesh.agent.*", True),
    ("protomesh.*", True),
    ("*", True),
    ("protomesh.agent.v1.ExecutionSucceeded", False),
    ("protomesh.context.v1.*", False),
    ("protomesh.agent.v1.Execution*", False),
])
def test_type_matches(pattern: str, matches: bool) -> None:
    assert type_matches(pattern, "protomesh.agent.v1.ExecutionFailed") is matches


def test_candidate_patterns_are_the_exact_name_and_its_wildcards() -> None:
    assert candidate_patterns("protomesh.agent.v1.AgentRegistered") == [
        "protomesh.agent.v1.AgentRegistered", "*", "protomesh.*", "protomesh.agent.*", "protomesh.agent.v1.*"]


@pytest.mark.parametrize(("pattern", "problem"), [
    ("protomesh.agent.v1.ExecutionFailed", None),
    ("protomesh.agent.v1.*", None),
    ("*", None),
    ("protomesh.agent.v1.NoSuchEvent", "unknown event type"),
    ("protomesh.agent.v1.Agent", "unknown event type"),  # a contract message, but not an event
    ("protomesh.nothing.v1.*", "matches no domain event type"),
    ("protomesh.agent.v1.Execution*", "trailing wildcard"),
    ("", "trailing wildcard"),
    ("protomesh..v1.X", "trailing wildcard"),
])
def test_pattern_problems(pattern: str, problem: str | None) -> None:
    found = pattern_problem(pattern)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


@pytest.mark.parametrize(("glob", "subject", "matches"), [
    ("", "anything/at-all", True),
    ("executions/*", "executions/5f0c", True),
    ("executions/*", "agents/5f0c", False),
    ("agents/?", "agents/7", True),
    ("executions/[ab]*", "executions/b1", True),
    ("Executions/*", "executions/1", False),
])
def test_subject_globs(glob: str, subject: str, matches: bool) -> None:
    assert subject_matches(glob, subject) is matches


def test_templates_render_placeholders_data_fields_and_escaped_braces() -> None:
    values = {"event": "ExecutionFailed", "subject": "executions/1", "type": "protomesh.agent.v1.ExecutionFailed"}
    data = {"error": "division by zero", "nested": {"n": 3}}
    rendered = render_template("{{x}} {event} on {subject}: {data.error} {data.nested.n} [{data.missing}]",
                               values, data)
    assert rendered == "{x} ExecutionFailed on executions/1: division by zero 3 []"


@pytest.mark.parametrize(("template", "problem"), [
    ("[protomesh] {event} {subject}", None),
    ("{{literal}} {data.error}", None),
    ("{nope}", "unknown placeholder {nope}"),
    ("{data}", "unknown placeholder {data}"),
    ("{event", "unbalanced brace"),
    ("event}", "unbalanced brace"),
    ("{__class__}", "unknown placeholder"),
])
def test_template_problems(template: str, problem: str | None) -> None:
    found = template_problem(template)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
