"""Fuzzing through the real gateway: schemathesis generates requests from the OpenAPI document the
gateway serves (/openapi.json) for every operation, valid and invalid ones, a bounded number per
operation; no answer may be a 5xx or break the schema the document gives for its status.

The document is loaded from the running gateway, not built in-process, so what is fuzzed is what a
client sees. Cases run with a fixed seed (derandomized), so a failure found in CI reproduces locally.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition, Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from chassis.tooling.infra.ports import LOOPBACK, free_port
from chassis.tooling.mesh_testing import RestClient, running_mesh
from chassis.tooling.supervisor import Mesh

# Cases per operation and mode. Valid data reaches the services' own logic (stores, rules); invalid data
# exercises validation in Envoy's transcoder and in chassis.validation. The totals keep the whole module
# near two minutes on 2 cores (the summary prints the time): the document has grown to ~160 operations.
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 20, schemathesis.GenerationMode.NEGATIVE: 8}
# Every operation lists 'default' (google.rpc.Status), so status_code_conformance cannot fail on a
# status the gateway really sends; it stays on so a document that drops 'default' is caught.
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
REQUEST_TIMEOUT_SECONDS = 20.0

# Nothing listens here: a webhook or SMTP delivery the fuzzed subscriptions cause fails at once on
# loopback instead of reaching whatever host a generated URL names (notification, unlike integration,
# accepts any http(s) target, by design: webhooks to a local receiver are a normal setup).
_SINK_PORT = free_port()
SINK_URL = f"http://{LOOPBACK}:{_SINK_PORT}/fuzz-webhook"


@dataclass
class Findings:
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    # Statuses valid (positive) cases got, per operation: an operation whose valid cases all end in 400
    # means the document allows input the services refuse, and the fuzzer never reaches their logic.
    accepted: dict[str, Counter[int]] = field(default_factory=dict)
    unlisted: dict[str, Counter[int]] = field(default_factory=dict)
    # (operation, failure kind) -> how often, and the first example as a reproduction.
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    unnegatable: list[str] = field(default_factory=list)
    flaky_strategies: list[str] = field(default_factory=list)
    # Ids (by field name: agent_id, context_id, ...) that answers returned, for later operations' paths.
    ids: dict[str, list[str]] = field(default_factory=dict)
    # Ids never reused: the fuzzer's own user (disabling it or changing its password is the identity
    # service working as it should, and would only end the run's credentials).
    spared: set[str] = field(default_factory=set)

    def remember_ids(self, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key.endswith("_id") and isinstance(item, str) and _is_uuid(item) and item not in self.spared:
                    known = self.ids.setdefault(key, [])
                    if item not in known and len(known) < 50:
                        known.append(item)
                else:
                    self.remember_ids(item)
        elif isinstance(value, list):
            for item in value:
                self.remember_ids(item)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    # One replica each: the fuzzer checks answers, not balancing. Deliveries are bounded so events the
    # fuzzed writes raise cannot keep notification's workers busy for the rest of the run.
    # The run calls as the local admin with one access token that outlives it (30 min): the fuzzed
    # identity operations may revoke the admin's refresh tokens (a password change does), not its token.
    env = {"NOTIFICATION_SEND_TIMEOUT_SECONDS": "1", "NOTIFICATION_MAX_ATTEMPTS": "1",
           "NOTIFICATION_SMTP_HOST": LOOPBACK, "NOTIFICATION_SMTP_PORT": str(_SINK_PORT),
           "IDENTITY_ACCESS_TOKEN_TTL": "30m"}
    with running_mesh(replicas=1, extra_env=env) as started:
        yield started


def defang_webhooks(value: Any) -> None:
    """Point every webhook URL in a request body at the closed loopback port (in place)."""
    if isinstance(value, dict):
        webhook = value.get("webhook")
        if isinstance(webhook, dict) and isinstance(webhook.get("url"), str):
            webhook["url"] = SINK_URL
        for item in value.values():
            defang_webhooks(item)
    elif isinstance(value, list):
        for item in value:
            defang_webhooks(item)


def choose_ids(case: schemathesis.Case, data: st.DataObject, findings: Findings) -> None:
    """Path ids of a valid case: as generated, a random UUID, or one an earlier answer returned.

    The document types ids as non-empty strings, while every service takes only UUIDs (anything else
    is 400): with generated strings alone no valid case would get past the id check. Random UUIDs reach
    the 404 paths, known ones the services' real work (update, execute, delete of what the run made).
    """
    for name in list(case.path_parameters or {}):
        if not name.endswith("_id"):
            continue
        choice = data.draw(st.sampled_from(("generated", "random", "known")))
        if choice == "random":
            case.path_parameters[name] = str(data.draw(st.uuids()))
        elif choice == "known" and findings.ids.get(name):
            case.path_parameters[name] = data.draw(st.sampled_from(findings.ids[name]))


def describe(case: schemathesis.Case, response: Any, failure: Failure) -> str:
    body = case.body if not isinstance(case.body, bytes) else case.body[:300]
    text = response.text[:400] if response is not None else ""
    return (f"{case.method} {case.formatted_path} query={case.query} body={str(body)[:400]}\n"
            f"  -> {getattr(response, 'status_code', '?')} {text}\n  {failure.title}: {failure.message[:600]}")


def fuzz_operation(operation: schemathesis.APIOperation, base_url: str, session: requests.Session,
                   mode: schemathesis.GenerationMode, findings: Findings) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    # No shrinking and no example database: failures are recorded, not raised, so every case runs and
    # the summary counts them all; the seed is fixed by derandomize.
    @settings(max_examples=EXAMPLES[mode], derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: schemathesis.Case, data: st.DataObject) -> None:
        if mode is schemathesis.GenerationMode.POSITIVE:
            choose_ids(case, data, findings)
        if isinstance(case.body, dict | list):
            defang_webhooks(case.body)
        findings.cases[label] += 1
        try:
            response = case.call(base_url=base_url, session=session, timeout=REQUEST_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            # No answer at all (a reset or a timeout) is as bad as a 5xx: record it under its own kind.
            key = (label, f"no response ({type(exc).__name__})")
            findings.failures[key] += 1
            findings.examples.setdefault(key, f"{case.method} {case.formatted_path} body={case.body!r:.400}: {exc}")
            return
        findings.statuses[response.status_code] += 1
        if str(response.status_code) not in operation.definition.raw.get("responses", {}):
            # Allowed by 'default', but a status the document does not name for this operation.
            findings.unlisted.setdefault(label, Counter())[response.status_code] += 1
        if mode is schemathesis.GenerationMode.POSITIVE:
            findings.accepted.setdefault(label, Counter())[response.status_code] += 1
        if response.status_code == 200:
            # A body that is not JSON fails response_schema_conformance below.
            with contextlib.suppress(ValueError):
                findings.remember_ids(response.json())
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                key = (label, type(failure).__name__)
                findings.failures[key] += 1
                findings.examples.setdefault(key, describe(case, response, failure))

    try:
        run()
    except Unsatisfiable:
        # Nothing in the operation can be made invalid (no parameters, or only free-form strings such as
        # ids, which the services answer 400/404 in positive mode already): no negative cases to send.
        if mode is not schemathesis.GenerationMode.NEGATIVE:
            raise
        findings.unnegatable.append(label)
    except FlakyStrategyDefinition as exc:
        # Hypothesis refusing schemathesis' own negative strategy for an operation (it drew differently on a
        # replay): the library's problem, not the mesh's; the cases it did send were checked like the rest.
        findings.flaky_strategies.append(f"{label} [{mode.value}]: {str(exc)[:200]}")
    except Exception as exc:  # a case the library cannot build is reported with the rest, not fatal
        findings.errors.append(f"{label} [{mode.value}]: {type(exc).__name__}: {str(exc)[:300]}")


@pytest.mark.timeout(900)  # ~160 operations through a real gateway: minutes on a busy 2-core machine
def test_fuzzed_requests_get_no_server_error_and_match_the_documented_schema(mesh: Mesh) -> None:
    base_url = f"http://{mesh.gateway}"
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=30)
    # The document lists its security schemes: without this, cases would carry generated credentials in place of
    # the session's token, and every case would end at the gateway as 401.
    schema.config.generation.update(with_security_parameters=False)
    operations = [result.ok() for result in schema.get_all_operations()]
    token = mesh.token()
    assert token, "no access token for the fuzzer"
    payload = token.split(".")[1]
    findings = Findings(spared={json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]})
    started = time.monotonic()
    with requests.Session() as session:
        session.headers["authorization"] = f"Bearer {token}"
        for operation in operations:
            for mode in EXAMPLES:
                fuzz_operation(operation, base_url, session, mode, findings)
    elapsed = time.monotonic() - started

    kinds = Counter[str]()
    for (_, kind), count in findings.failures.items():
        kinds[kind] += count
    print(f"\nfuzzed {len(operations)} operations, {sum(findings.cases.values())} cases in {elapsed:.1f}s; "
          f"statuses {dict(sorted(findings.statuses.items()))}; failures by kind {dict(kinds) or 'none'}; "
          f"{len(findings.unnegatable)} operations have no invalid input to generate")
    for key, example in findings.examples.items():
        print(f"[{findings.failures[key]}x] {key[0]} {key[1]}\n  {example}")
    for label, statuses in findings.accepted.items():
        if set(statuses) == {400}:
            print(f"valid cases all refused (400): {label}")
    for label, statuses in findings.unlisted.items():
        print(f"statuses only 'default' covers: {label} {dict(statuses)}")
    for error in findings.errors:
        print(f"could not generate: {error}")

    assert len(operations) >= 60, f"the served document lists only {len(operations)} operations"
    assert not findings.errors, "cases the fuzzer could not build:\n" + "\n".join(findings.errors)
    assert not findings.failures, (
        f"{sum(findings.failures.values())} failing cases:\n"
        + "\n".join(f"{k[0]} {k[1]}: {findings.examples[k]}" for k in findings.failures))


def test_a_nul_in_a_json_payload_is_400_naming_where(mesh: Mesh) -> None:
    # The fuzzer's first find: PostgreSQL jsonb cannot hold \u0000, and the request reached it (500).
    reply = RestClient.for_mesh(mesh).post(
        "/v1/agents", {"name": "nul-in-config", "type": "json-transformer",
                       "config": {"a\u0000": 1, "b": {"c": ["ok", "x\u0000"]}}})
    assert reply.status == 400, reply.body
    assert set(reply.field_violations()) == {'config["a\\u0000"]', "config.b.c[1]"}, reply.body
