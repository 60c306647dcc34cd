"""Built-in agent types: each validates its input and does real work, cancellably, in a worker thread."""

from __future__ import annotations

import ast
import math
import operator
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeGuard

from chassis.errors import Violations
from services.agent import field_report


class Cancelled(Exception):
    """The execution was stopped while running."""


class RunContext:
    """Handed to a running agent type: report progress, notice a stop request."""

    def __init__(self) -> None:
        self.progress = 0.0
        self._stop = threading.Event()

    def report(self, fraction: float) -> None:
        """Record progress (0..1); raise Cancelled if a stop was requested."""
        self.progress = min(max(fraction, 0.0), 1.0)
        if self._stop.is_set():
            raise Cancelled()

    def request_stop(self) -> None:
        """Ask the running work to stop at its next progress report."""
        self._stop.set()


@dataclass(frozen=True)
class AgentTypeSpec:
    """A built-in agent type."""

    name: str
    description: str
    capabilities: tuple[str, ...]
    input_fields: dict[str, str]
    validate: Callable[[dict[str, Any], Violations], None]
    run: Callable[[dict[str, Any], RunContext], dict[str, Any]]


# --- text-analyzer -------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
MAX_TEXT_CHARS = 1_000_000


def _validate_text(data: dict[str, Any], v: Violations) -> None:
    text = data.get("text")
    if not isinstance(text, str) or text.strip() == "":
        v.add("input.text", "required: a non-empty string")
    else:
        v.check(len(text) <= MAX_TEXT_CHARS, "input.text", f"at most {MAX_TEXT_CHARS} characters")
    top = data.get("top", 10)
    v.check(_is_int(top) and 1 <= top <= 100, "input.top", "a whole number from 1 to 100")


def _run_text(data: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    text: str = data["text"]
    words = [w.lower() for w in _WORD.findall(text)]
    ctx.report(0.5)
    counts = Counter(words)
    sentences = len(_SENTENCE_END.findall(text)) or (1 if words else 0)
    top = int(data.get("top", 10))
    return {
        "characters": len(text),
        "words": len(words),
        "unique_words": len(counts),
        "sentences": sentences,
        "average_word_length": round(sum(map(len, words)) / len(words), 3) if words else 0.0,
        "top_words": [{"word": w, "count": c} for w, c in counts.most_common(top)],
        "reading_time_seconds": round(len(words) / 238 * 60, 1),
    }


# --- calculator ----------------------------------------------------------------------------------

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos, "tan": math.tan, "log": math.log,
    "log10": math.log10, "exp": math.exp, "abs": abs, "round": round, "min": min, "max": max,
    "floor": math.floor, "ceil": math.ceil,
}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
MAX_EXPRESSION_CHARS = 500


class ExpressionError(ValueError):
    """The expression is not valid arithmetic, or cannot be evaluated."""


def evaluate(expression: str) -> float | int:
    """Evaluate arithmetic safely: numbers, + - * / // % **, parentheses, a few math functions."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"not an arithmetic expression: {exc.msg}") from None

    def walk(node: ast.AST) -> float | int:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name) and node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](walk(node.operand))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 1000:
                raise ExpressionError("exponent too large (at most 1000)")
            try:
                return _BINARY[type(node.op)](left, right)
            except ZeroDivisionError:
                raise ExpressionError("division by zero") from None
            except OverflowError:
                raise ExpressionError("result too large") from None
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
                and not node.keywords):
            try:
                return _FUNCTIONS[node.func.id](*(walk(a) for a in node.args))
            except (ValueError, TypeError) as exc:
                raise ExpressionError(f"{node.func.id}: {exc}") from None
        raise ExpressionError(f"unsupported element: {ast.dump(node)[:60]}")

    return walk(tree)


def _validate_calc(data: dict[str, Any], v: Violations) -> None:
    expression = data.get("expression")
    if not isinstance(expression, str) or expression.strip() == "":
        v.add("input.expression", "required: an arithmetic expression such as \"2 * (3 + 4)\"")
    else:
        v.check(len(expression) <= MAX_EXPRESSION_CHARS, "input.expression",
                f"at most {MAX_EXPRESSION_CHARS} characters")


def _run_calc(data: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    value = evaluate(data["expression"])
    if isinstance(value, int) and abs(value) > 2**53:
        return {"expression": data["expression"], "result": float(value), "exact": str(value)}
    return {"expression": data["expression"], "result": value}


# --- prime-finder --------------------------------------------------------------------------------

MAX_PRIME_LIMIT = 10_000_000_000
_SEGMENT = 1 << 18


def _validate_primes(data: dict[str, Any], v: Violations) -> None:
    limit = data.get("limit")
    v.check(_is_int(limit) and 2 <= limit <= MAX_PRIME_LIMIT, "input.limit",
            f"required: a whole number from 2 to {MAX_PRIME_LIMIT}")


def _small_primes(n: int) -> list[int]:
    sieve = bytearray([1]) * (n + 1)
    sieve[0:2] = b"\x00\x00"
    for i in range(2, math.isqrt(n) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(range(i * i, n + 1, i)))
    return [i for i in range(n + 1) if sieve[i]]


def _run_primes(data: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Segmented sieve of Eratosthenes up to `limit`, reporting progress per segment."""
    limit = int(data["limit"])
    base = _small_primes(math.isqrt(limit))
    count = 0
    first: list[int] = []
    last: list[int] = []
    for low in range(2, limit + 1, _SEGMENT):
        high = min(low + _SEGMENT - 1, limit)
        segment = bytearray([1]) * (high - low + 1)
        for p in base:
            if p * p > high:
                break
            start = max(p * p, (low + p - 1) // p * p)
            segment[start - low :: p] = bytearray(len(range(start, high + 1, p)))
        found = [low + i for i, flag in enumerate(segment) if flag]
        count += len(found)
        if len(first) < 10:
            first.extend(found[: 10 - len(first)])
        if found:
            last = (last + found)[-10:]
        ctx.report((high - 1) / (limit - 1) if limit > 2 else 1.0)
    return {"limit": limit, "count": count, "largest": last[-1] if last else None, "first": first, "last": last}


# --- json-transformer ----------------------------------------------------------------------------

_OPERATIONS = ("pick", "omit", "rename", "set", "flatten")


def _validate_json(data: dict[str, Any], v: Violations) -> None:
    v.check(isinstance(data.get("document"), dict), "input.document", "required: a JSON object")
    operations = data.get("operations")
    if not isinstance(operations, list) or operations == []:
        v.add("input.operations", f"required: a list of operations, each with op in {', '.join(_OPERATIONS)}")
        return
    for i, op in enumerate(operations):
        path = f"input.operations[{i}]"
        if not v.check(isinstance(op, dict) and op.get("op") in _OPERATIONS, f"{path}.op",
                       f"one of {', '.join(_OPERATIONS)}"):
            continue
        kind = op["op"]
        if kind in ("pick", "omit"):
            v.check(isinstance(op.get("keys"), list) and all(isinstance(k, str) for k in op["keys"]),
                    f"{path}.keys", "a list of key names")
        elif kind == "rename":
            v.check(isinstance(op.get("from"), str) and isinstance(op.get("to"), str), f"{path}.from",
                    "rename needs string 'from' and 'to'")
        elif kind == "set":
            v.check(isinstance(op.get("key"), str) and "value" in op, f"{path}.key", "set needs 'key' and 'value'")


def _flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def _run_json(data: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    doc = dict(data["document"])
    operations = data["operations"]
    for i, op in enumerate(operations):
        kind = op["op"]
        if kind == "pick":
            doc = {k: doc[k] for k in op["keys"] if k in doc}
        elif kind == "omit":
            doc = {k: v for k, v in doc.items() if k not in set(op["keys"])}
        elif kind == "rename" and op["from"] in doc:
            doc[op["to"]] = doc.pop(op["from"])
        elif kind == "set":
            doc[op["key"]] = op["value"]
        elif kind == "flatten":
            doc = _flatten(doc)
        ctx.report((i + 1) / len(operations))
    return {"document": doc, "operations_applied": len(operations)}


def _is_int(value: Any) -> TypeGuard[float]:
    # JSON numbers arrive through google.protobuf.Struct as floats, so a whole float counts.
    return isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()


AGENT_TYPES: dict[str, AgentTypeSpec] = {
    spec.name: spec
    for spec in (
        AgentTypeSpec(
            "text-analyzer", "Counts words, sentences and characters and finds the most frequent words.",
            ("text.analyze", "text.statistics"),
            {"text": "the text to analyse (required)", "top": "how many top words to return (default 10)"},
            _validate_text, _run_text,
        ),
        AgentTypeSpec(
            "calculator", "Evaluates an arithmetic expression safely (no code execution).",
            ("math.evaluate",),
            {"expression": "arithmetic with + - * / // % **, parentheses, sqrt/sin/log/..., pi, e (required)"},
            _validate_calc, _run_calc,
        ),
        AgentTypeSpec(
            "prime-finder", "Finds all primes up to a limit with a segmented sieve; long limits show progress.",
            ("math.primes", "compute.batch"),
            {"limit": f"find primes up to this number, 2..{MAX_PRIME_LIMIT} (required)"},
            _validate_primes, _run_primes,
        ),
        AgentTypeSpec(
            "json-transformer", "Applies pick/omit/rename/set/flatten operations to a JSON document.",
            ("data.transform",),
            {"document": "a JSON object (required)", "operations": "list of {op, ...} (required)"},
            _validate_json, _run_json,
        ),
        AgentTypeSpec(
            field_report.NAME, "Summarises the organization's fields from the field service: area, crops, seasons.",
            ("fields.report",),
            {"max_fields": f"how many fields to cover, by name, 1..{field_report.MAX_FIELDS} (default "
                           f"{field_report.DEFAULT_MAX_FIELDS})"},
            field_report.validate, field_report.run,
        ),
    )
}
