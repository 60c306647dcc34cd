"""What every client of an external system offers, and how its failures become the mesh's errors.

A client is made for one integration from its config and decrypted credentials. The connections
(services.integration.connections) wraps every call in the integration's resilience policies; a
client only has to do one attempt within the seconds it is given and raise:

- Unavailable / DeadlineExceeded when the system is down, failing or slow (these count for the
  circuit breaker and may be retried),
- ResourceExhausted when the system throttles (retried, not counted),
- InvalidArgument / NotFound / FailedPrecondition for the caller's or the configuration's mistakes.

Every message passes through `scrub`, so no credential value ever reaches a response or a log.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import decimal
import sys
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chassis.errors import DeadlineExceeded, ServiceError, Unavailable, Violations
from protomesh.integration.v1 import integration_pb2
from services.integration.targets import TargetGuard

if TYPE_CHECKING:
    import aiohttp

MASK = "***"


def secret_forms(credentials: Mapping[str, str]) -> list[str]:
    """Every form in which a credential could leak: the values, and the Basic auth encodings of pairs."""
    values = [v for v in credentials.values() if v and len(v) >= 4]
    user, password = credentials.get("username", ""), credentials.get("password", "")
    if user and password:
        values.append(base64.b64encode(f"{user}:{password}".encode()).decode())
    return sorted(set(values), key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """text with every secret replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def scrub_value(value: Any, secrets: list[str]) -> Any:
    """A JSON-like value with every secret in its strings (keys included) replaced by ***."""
    if not secrets:
        return value
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, list):
        return [scrub_value(v, secrets) for v in value]
    if isinstance(value, dict):
        return {scrub(str(k), secrets): scrub_value(v, secrets) for k, v in value.items()}
    return value


def whole_numbers(value: Any) -> Any:
    """JSON from a google.protobuf.Struct with whole floats as ints (Struct has only doubles; an API
    that wants `"amount": 5` must not get `5.0`)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    return value


def jsonable(value: Any) -> Any:
    """A value a google.protobuf.Struct can hold (numbers as floats, times as ISO text, bytes as base64)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value if abs(value) < 2**53 or isinstance(value, float) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    return str(value)


@dataclass
class Step:
    """One step of a test: what it did, whether it worked, how long it took."""

    name: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Steps:
    """Runs test steps in order, stopping at the first failure."""

    secrets: list[str]
    items: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every step so far worked."""
        return all(s.ok for s in self.items)

    async def run(self, name: str, action: Callable[[], Awaitable[str | None]]) -> bool:
        """Run one step unless an earlier one failed; its return value is the step's detail."""
        if not self.ok:
            return False
        started = time.perf_counter()
        try:
            detail = await action() or ""
            ok = True
        except Exception as exc:  # a failed step is the test's result, whatever the failure
            ok, detail = False, describe(exc)
        self.items.append(Step(name, ok, scrub(detail, self.secrets)[:500], time.perf_counter() - started))
        return ok


def describe(exc: BaseException) -> str:
    """A one-line description of a failure."""
    if isinstance(exc, ServiceError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def external_error(exc: BaseException, what: str, secrets: list[str]) -> ServiceError:
    """The mesh error for a failure talking to an external system, with credentials scrubbed."""
    if isinstance(exc, ServiceError):
        exc.message = scrub(exc.message, secrets)
        exc.args = (exc.message,)
        return exc
    if isinstance(exc, TimeoutError):
        return DeadlineExceeded(f"{what} did not answer in time")
    if isinstance(exc, _connection_errors()):
        return Unavailable(f"{what} is unreachable: {scrub(describe(exc), secrets)}")
    return Unavailable(f"{what} failed: {scrub(describe(exc), secrets)}")


async def within(seconds: float, work: Awaitable[Any]) -> Any:
    """Await work for at most `seconds` (TimeoutError after)."""
    return await asyncio.wait_for(work, timeout=max(seconds, 0.001))


def _connection_errors() -> tuple[type[BaseException], ...]:
    # aiohttp is loaded by the first HTTP-based client (Shared.http); before that none of its errors exists.
    aiohttp = sys.modules.get("aiohttp")
    errors: tuple[type[BaseException], ...] = (OSError, ConnectionError, EOFError)
    return (aiohttp.ClientError, *errors) if aiohttp is not None else errors


class Shared:
    """What the service shares among its clients: one HTTP session (connection pool, its resolver checking
    every name it resolves: see services.integration.clients.session) and the guard every outbound
    connection is checked by.

    The session is opened by the first client that uses it: aiohttp (~8 MB RSS) is not loaded by a
    replica that has called no HTTP or object-storage integration. `close` closes it if it was opened.
    """

    def __init__(self, targets: TargetGuard, http: aiohttp.ClientSession | None = None) -> None:
        self.targets = targets
        self._http = http

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            from services.integration.clients.session import guarded_session

            self._http = guarded_session(self.targets)
        return self._http

    async def close(self) -> None:
        """Close the HTTP session if a client opened it."""
        if self._http is not None:
            await self._http.close()
            self._http = None


class ExternalClient(ABC):
    """A client of one integration's external system."""

    def __init__(self, name: str, config: Mapping[str, Any], credentials: Mapping[str, str], shared: Shared) -> None:
        self.name = name
        self.config = dict(config)
        self._credentials = dict(credentials)
        self.shared = shared
        self.secrets = secret_forms(credentials)

    def __repr__(self) -> str:  # never the credentials
        return f"{type(self).__name__}({self.name!r})"

    def credential(self, key: str) -> str:
        """One credential's value ("" when not stored)."""
        return self._credentials.get(key, "")

    @abstractmethod
    async def invoke(self, operation: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One attempt of an operation; the result is JSON-like."""

    @abstractmethod
    async def health(self, timeout: float) -> str:
        """A cheap check that the system answers; returns a detail, raises when it does not."""

    @abstractmethod
    async def test(self, steps: Steps, timeout: float) -> None:
        """A fuller exercise of the connection, step by step."""

    async def close(self) -> None:  # noqa: B027 - most clients hold nothing to release
        """Release connections held by the client."""


@dataclass(frozen=True)
class Operation:
    """An operation a client offers."""

    name: str
    cacheable: bool = False
    """An idempotent read: its result may be cached and it may be retried."""
    idempotent: bool = False
    """May be retried after a failed attempt (reads and idempotent writes)."""


@dataclass(frozen=True)
class Target:
    """A host and port a config connects to, and the config field that names it."""

    field: str
    host: str
    port: int


@dataclass(frozen=True)
class ClientSpec:
    """A kind of client: its path name, operations, settings and how to make one."""

    client_type: str
    kind: integration_pb2.IntegrationKind
    description: str
    operations: tuple[Operation, ...]
    config_fields: tuple[str, ...]
    credential_fields: tuple[str, ...]
    validate_config: Callable[[Violations, dict[str, Any], Mapping[str, str]], None]
    validate_params: Callable[[Violations, str, dict[str, Any], dict[str, Any]], None]
    factory: Callable[[str, dict[str, Any], Mapping[str, str], Shared], ExternalClient]
    idempotent: Callable[[str, dict[str, Any]], bool] | None = None
    """Overrides the operation's retry flag when it depends on the parameters (e.g. an HTTP method)."""
    cacheable_when: Callable[[str, dict[str, Any]], bool] | None = None
    """Narrows a cacheable operation by its parameters (e.g. only GET and HEAD requests)."""
    targets: Callable[[dict[str, Any]], list[Target]] = lambda config: []
    """Where a (valid) config connects: checked by create, update and test before any connection."""
    binding: Callable[[dict[str, Any]], dict[str, Any]] = lambda config: {}
    """config field -> what of it identifies the system the credentials are for (host, port, database...):
    an update changing any of these must send the credentials again."""

    def operation(self, name: str) -> Operation | None:
        """The named operation, if the client has it."""
        return next((op for op in self.operations if op.name == name), None)

    def is_cacheable(self, name: str, params: dict[str, Any]) -> bool:
        """Whether a call's result may be cached."""
        op = self.operation(name)
        if op is None or not op.cacheable:
            return False
        return self.cacheable_when(name, params) if self.cacheable_when else True

    def is_idempotent(self, name: str, params: dict[str, Any]) -> bool:
        """Whether a call may be retried."""
        if self.idempotent:
            return self.idempotent(name, params)
        op = self.operation(name)
        return op is not None and (op.idempotent or op.cacheable)


# --- validation helpers shared by the kinds ------------------------------------------------------


def text(v: Violations, data: Mapping[str, Any], key: str, path: str, *, required: bool = False,
         max_len: int = 2048) -> str:
    """A string field of data; records a violation when it is missing (if required) or not a string."""
    value = data.get(key)
    if value is None or value == "":
        v.check(not required, path, "required")
        return ""
    if not isinstance(value, str):
        v.add(path, "must be a string")
        return ""
    v.check(len(value) <= max_len, path, f"at most {max_len} characters")
    return value


def number(v: Violations, data: Mapping[str, Any], key: str, path: str, *, low: float, high: float,
           integer: bool = False, default: float = 0) -> float:
    """A number field of data within low..high."""
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        v.add(path, "must be a number")
        return default
    if integer and value != int(value):
        v.add(path, "must be a whole number")
        return default
    if not low <= value <= high:
        v.add(path, f"must be between {low:g} and {high:g}")
        return default
    return value


def flag(v: Violations, data: Mapping[str, Any], key: str, path: str, default: bool = False) -> bool:
    """A boolean field of data."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        v.add(path, "must be true or false")
        return default
    return value


def string_list(v: Violations, data: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> list[str]:
    """A list-of-strings field (a single string counts as a list of one)."""
    value = data.get(key)
    if value is None or value == [] or value == "":
        v.check(not required, path, "required")
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
        v.add(path, "must be a list of non-empty strings")
        return []
    return value


def string_map(v: Violations, data: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    """An object-of-strings field."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        v.add(path, "must be an object")
        return {}
    out = {}
    for k, item in value.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            v.add(f"{path}.{k}", "must be a string")
        else:
            out[str(k)] = item if isinstance(item, str) else f"{item:g}"
    return out


def unknown_keys(v: Violations, data: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    """Record every key of data that is not allowed (catches typos and secrets put in config)."""
    allowed = set(allowed)
    for key in data:
        if key not in allowed:
            hint = "; secrets belong in credentials" if any(
                word in key.lower() for word in ("password", "secret", "token", "key")) else ""
            v.add(f"{path}.{key}" if path else key, f"unknown field; one of {', '.join(sorted(allowed))}{hint}")
