"""The built-in agent types compute real results, validate input, and stop when asked."""

from __future__ import annotations

import threading

import pytest

from chassis.errors import Violations
from services.agent.agent_types import AGENT_TYPES, Cancelled, ExpressionError, RunContext, evaluate
from services.agent.runner import ALLOWED_TRANSITIONS, sources_of


def run(type_name: str, data: dict) -> dict:
    return AGENT_TYPES[type_name].run(data, RunContext())


def violations(type_name: str, data: dict) -> set[str]:
    v = Violations()
    AGENT_TYPES[type_name].validate(data, v)
    return {item.field for item in v.items}


@pytest.mark.parametrize(("expression", "expected"), [
    ("2 * (3 + 4)", 14), ("2 ** 10", 1024), ("7 // 2", 3), ("-3 + 1", -2), ("sqrt(16) + abs(-1)", 5.0),
    ("round(pi, 2)", 3.14), ("max(1, 5, 3)", 5),
])
def test_calculator_evaluates_arithmetic(expression: str, expected: float) -> None:
    assert evaluate(expression) == expected


@pytest.mark.parametrize("expression", ["__import__('os')", "open('x')", "1 +", "2 ** 100000", "1/0", "x"])
def test_calculator_refuses_code_and_bad_arithmetic(expression: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(expression)


def test_prime_finder_counts_primes() -> None:
    assert run("prime-finder", {"limit": 100})["count"] == 25
    result = run("prime-finder", {"limit": 2_000_000})
    assert result["count"] == 148933
    assert result["first"] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert result["largest"] == 1999993


def test_prime_finder_stops_when_asked() -> None:
    ctx = RunContext()
    timer = threading.Timer(0.2, ctx.request_stop)
    timer.start()
    with pytest.raises(Cancelled):
        AGENT_TYPES["prime-finder"].run({"limit": 10_000_000_000}, ctx)
    assert 0 < ctx.progress < 0.5


def test_json_transformer_applies_operations_in_order() -> None:
    out = run("json-transformer", {"document": {"a": 1, "b": {"c": 2}, "d": 3}, "operations": [
        {"op": "omit", "keys": ["d"]}, {"op": "rename", "from": "a", "to": "x"}, {"op": "flatten"},
        {"op": "set", "key": "y", "value": True}]})
    assert out["document"] == {"x": 1, "b.c": 2, "y": True}


def test_inputs_are_validated_with_field_paths() -> None:
    assert violations("calculator", {}) == {"input.expression"}
    assert violations("prime-finder", {"limit": 1}) == {"input.limit"}
    assert violations("prime-finder", {"limit": 10.5}) == {"input.limit"}
    assert violations("text-analyzer", {"text": " ", "top": 0}) == {"input.text", "input.top"}
    assert violations("json-transformer", {"document": [], "operations": [{"op": "explode"}]}) == {
        "input.document", "input.operations[0].op"}
    assert violations("calculator", {"expression": "1+1"}) == set()


def test_execution_state_machine_allows_only_forward_moves() -> None:
    assert set(sources_of("RUNNING")) == {"PENDING"}
    assert set(sources_of("STOPPED")) == {"PENDING", "RUNNING"}
    assert set(sources_of("SUCCEEDED")) == {"RUNNING"}
    for final in ("SUCCEEDED", "FAILED", "STOPPED"):
        assert ALLOWED_TRANSITIONS[final] == frozenset()
