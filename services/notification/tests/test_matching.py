"""Event type patterns, subject globs and subject templates (their form is the contract's rule, checked here too)."""

from __future__ import annotations

import re

import pytest

from chassis import validation
from protomesh.notification.v1 import notification_pb2
from services.notification.matching import (
    PLACEHOLDERS,
    candidate_patterns,
    domain_event_types,
    pattern_problem,
    render_template,
    subject_matches,
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
    ("protomesh.agent.v1.Execution*", "unknown event type"),  # a bad form, which the contract refuses first
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


def template_problems(template: str) -> list[str]:
    """What the contract's rules say about a subject template (chassis.validation, as before a servicer)."""
    channel = notification_pb2.EmailChannel(to=["ops@example.com"], subject_template=template)
    return [v.description for v in validation.violations(channel) if v.field == "subject_template"]


@pytest.mark.parametrize(("template", "refused"), [
    ("[protomesh] {event} {subject}", False),
    ("{{literal}} {data.error} {data.nested.n}", False),
    ("{{{event}}}", False),
    ("{nope}", True),
    ("{data}", True),
    ("{data.}", True),
    ("{event", True),
    ("event}", True),
    ("{{event}", True),
    ("{__class__}", True),
    ("line\nbreak", True),
    ("x" * 201, True),
])
def test_the_contract_refuses_templates_the_renderer_cannot_render(template: str, refused: bool) -> None:
    assert bool(template_problems(template)) is refused, template_problems(template)


def test_the_contract_accepts_exactly_the_renderers_placeholders() -> None:
    """The contract's subject_template rule lists the placeholders itself; it must agree with PLACEHOLDERS."""
    assert all(template_problems(f"{{{name}}}") == [] for name in PLACEHOLDERS)
    named = re.findall(r"\{(\w+)\}", template_problems("{nope}")[0])
    assert set(named) == set(PLACEHOLDERS), named
