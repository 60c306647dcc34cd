"""Tokens and API keys verified at the gateway: the generated Envoy config, run by a real Envoy.

In front: a small real identity stand-in over HTTP (the JWKS at /oauth2/jwks, Envoy's ext_authz check
at /internal/authz, an OIDC-like path), with ES256 keys made by joserfc. Behind: a real grpc.aio
replica with the chassis call interceptor, which records the principal it was given.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from agent_backend import AgentBackend, RecordingAgentService
from joserfc import jwk, jwt

import chassis
from chassis.identity import CLAIMS_HEADER, Principal, encode_claims
from chassis.interceptors import CallInterceptor
from chassis.paths import DESCRIPTOR_SET
from chassis.tooling.apidocs.served import ServedDocument
from chassis.tooling.catalog import Catalog, load_catalog
from chassis.tooling.envoy_config import build_envoy_config
from chassis.tooling.infra.envoy import EnvoyProcess
from chassis.tooling.infra.ports import free_port
from protomesh.agent.v1 import agent_service_pb2, agent_service_pb2_grpc

GATEWAY_PORT = free_port()
ISSUER = f"http://127.0.0.1:{GATEWAY_PORT}"
JWKS_CACHE_SECONDS = 2.0
BAD_BEARER = 'Bearer realm="protomesh", error="invalid_token"'
API_KEY_CLAIMS = {"sub": "apikey:k-1", "kind": "api_key", "key_id": "k-1", "org": "org-a", "scope": "agents.read"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Identity:
    """The identity service's HTTP side, as Envoy uses it: JWKS and ext_authz (and one OIDC path)."""

    def __init__(self) -> None:
        self.keys: list[jwk.ECKey] = [self.new_key("k1")]
        self.authz_paths: list[str] = []
        self.authz_checks: list[tuple[str, str, dict[str, str]]] = []
        """(method, path, headers) of every ext_authz check, as Envoy sent it."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def new_key(kid: str) -> jwk.ECKey:
        return jwk.ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server.server_address[1])

    def sign(self, key: jwk.ECKey | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": "protomesh", "sub": "user-1", "client_id": "cli", "iat": now, "nbf": now,
                  "exp": now + 300, "jti": "t-1", "scope": "openid agents", "org": "org-a", "roles": ["owner"],
                  "kind": "user", **overrides}
        claims = {k: v for k, v in claims.items() if v is not None}
        key = key or self.keys[0]
        return jwt.encode({"alg": "ES256", "kid": key.kid, "typ": "at+jwt"}, claims, key)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        identity = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _any(self) -> None:
                if self.path == "/oauth2/jwks":
                    keys = [k.as_dict(private=False) for k in identity.keys]
                    self._answer(200, json.dumps({"keys": keys}).encode(), {"content-type": "application/json"})
                elif self.path.startswith("/internal/authz"):
                    identity.authz_paths.append(self.path)
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    identity.authz_checks.append((self.command, self.path, headers))
                    self._authz()
                elif self.path.startswith("/.well-known/"):
                    self._answer(200, b'{"issuer": "' + ISSUER.encode() + b'"}', {"content-type": "application/json"})
                else:
                    self._answer(404)

            def _authz(self) -> None:
                auth = self.headers.get("authorization", "")
                if auth.lower().startswith("bearer "):  # a token jwt_authn did not verify (as the identity service)
                    self._answer(401, b"invalid token", {"www-authenticate": BAD_BEARER})
                    return
                key = self.headers.get("x-api-key") or (auth[len("ApiKey "):] if auth.startswith("ApiKey ") else "")
                if key == "good-key":
                    self._answer(200, headers={CLAIMS_HEADER: encode_claims(API_KEY_CLAIMS)})
                elif key == "busy-key":
                    self._answer(429, b'{"error": "rate_limited"}',
                                 {"retry-after": "7", "content-type": "application/json"})
                else:
                    self._answer(401, b"no valid credential", {"www-authenticate": 'Bearer realm="protomesh"'})

            do_GET = do_POST = do_PUT = do_DELETE = _any

        return Handler

    def start(self) -> Identity:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PrincipalRecorder(RecordingAgentService):
    """Records, for each GetAgent, the principal the chassis gave the servicer."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.principals: list[Principal | None] = []

    async def GetAgent(self, request: Any, context: Any) -> Any:
        self.principals.append(chassis.current_principal())
        return await super().GetAgent(request, context)


class ChassisBackend(AgentBackend):
    """The recording agent backend behind the chassis' call interceptor (identity check included)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.servicer = PrincipalRecorder(name)

    async def _start(self) -> None:
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc

        self._server = grpc.aio.server(interceptors=[CallInterceptor("auth-test", "agent")])
        agent_service_pb2_grpc.add_AgentServiceServicer_to_server(self.servicer, self._server)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        await self._health.set("protomesh.agent.v1.AgentService", health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DESCRIPTOR_SET)


@pytest.fixture(scope="module")
def identity() -> Iterator[Identity]:
    server = Identity().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def backend() -> Iterator[ChassisBackend]:
    started = ChassisBackend("a")
    started.start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def gateway(catalog: Catalog, identity: Identity, backend: ChassisBackend,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyProcess]:
    work = tmp_path_factory.mktemp("envoy-auth")
    document = work / "openapi.json"
    document.write_text("{}")
    config = build_envoy_config(
        catalog, {"agent": [backend.address], "identity_http": [identity.address]},
        listen_port=GATEWAY_PORT, admin_port=free_port(), descriptor_set=DESCRIPTOR_SET, issuer=ISSUER,
        jwks_cache_seconds=JWKS_CACHE_SECONDS,
        api_documents=[ServedDocument("/openapi.json", document, "application/json")])
    envoy = EnvoyProcess(config, work)
    envoy.start()
    # The JWKS is fetched in the background; wait until a valid token passes.
    deadline = time.monotonic() + 15
    while rest(envoy, "/v1/agents/warm", identity.sign()).status != 200:
        assert time.monotonic() < deadline, "Envoy never accepted a valid token (JWKS not fetched?)"
        time.sleep(0.1)
    yield envoy
    envoy.stop()


class Answer:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


def rest(gateway: EnvoyProcess, path: str, token: str | None = None, headers: dict[str, str] | None = None,
         method: str = "GET") -> Answer:
    sent = dict(headers or {})
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(gateway.url + path, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read())


def grpc_get_agent(gateway: EnvoyProcess, metadata: list[tuple[str, str]]) -> grpc.RpcError | Any:
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = agent_service_pb2_grpc.AgentServiceStub(channel)
        try:
            return stub.GetAgent(agent_service_pb2.GetAgentRequest(agent_id="x"), metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            return error


def _alg_none(identity: Identity) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": "k1"}).encode())
    payload = identity.sign().split(".")[1]
    return f"{header}.{payload}."


def _hs256_with_public_key(identity: Identity) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}).encode())
    payload = identity.sign().split(".")[1]
    secret = json.dumps(identity.keys[0].as_dict(private=False)).encode()
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _tampered(identity: Identity) -> str:
    header, payload, signature = identity.sign().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["owner", "admin"]
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


BAD_TOKENS = {
    "expired": lambda i: i.sign(exp=int(time.time()) - 600, iat=int(time.time()) - 900, nbf=int(time.time()) - 900),
    "not yet valid": lambda i: i.sign(nbf=int(time.time()) + 600),
    "wrong iss": lambda i: i.sign(iss="http://evil.example"),
    "wrong aud": lambda i: i.sign(aud="someone-else"),
    "unknown kid": lambda i: i.sign(key=Identity.new_key("never-published")),
    "alg none": _alg_none,
    "HS256 with the public key": _hs256_with_public_key,
    "tampered payload": _tampered,
    "not a JWT": lambda i: "garbage",
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_a_bad_token_is_401_with_www_authenticate_for_rest(gateway: EnvoyProcess, identity: Identity,
                                                             backend: ChassisBackend, kind: str) -> None:
    before = len(backend.servicer.principals)
    checks = len(identity.authz_checks)
    answer = rest(gateway, "/v1/agents/x", BAD_TOKENS[kind](identity))
    assert answer.status == 401, answer.body
    assert answer.headers.get("www-authenticate") == BAD_BEARER, dict(answer.headers)
    assert json.loads(answer.body)["code"] == 16  # google.rpc.Code UNAUTHENTICATED, JSON like every error
    assert len(backend.servicer.principals) == before, "a refused call must not reach the replica"
    # The refusal is the identity service's (which records it), not jwt_authn's own.
    assert len(identity.authz_checks) == checks + 1
    assert identity.authz_checks[-1][:2] == ("GET", "/internal/authz/v1/agents/x")


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_a_bad_token_is_unauthenticated_for_native_grpc(gateway: EnvoyProcess, identity: Identity, kind: str) -> None:
    error = grpc_get_agent(gateway, [("authorization", f"Bearer {BAD_TOKENS[kind](identity)}")])
    assert isinstance(error, grpc.RpcError)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error.details()
    # A trailers-only answer: the challenge is with grpc-status.
    answered: Any = error  # also a grpc.Call, which has the metadata
    metadata = {**dict(answered.initial_metadata() or ()), **dict(answered.trailing_metadata() or ())}
    assert metadata.get("www-authenticate") == BAD_BEARER, metadata


def test_a_bad_token_next_to_a_valid_api_key_is_still_refused(gateway: EnvoyProcess, identity: Identity) -> None:
    """As when Envoy refused it: a presented token must be valid, a key beside it does not rescue the call."""
    answer = rest(gateway, "/v1/agents/x", identity.sign(aud="someone-else"), headers={"x-api-key": "good-key"})
    assert answer.status == 401 and answer.headers.get("www-authenticate") == BAD_BEARER


def test_the_check_gets_what_the_audit_record_needs_and_a_valid_token_skips_it(gateway: EnvoyProcess,
                                                                                identity: Identity) -> None:
    trace = f"00-{'ab' * 16}-{'cd' * 8}-01"
    checks = len(identity.authz_checks)
    assert rest(gateway, "/v1/agents/x", identity.sign()).status == 200
    assert len(identity.authz_checks) == checks, "a valid token costs no ext_authz call"
    rest(gateway, "/v1/agents/x", identity.sign(exp=1, iat=0, nbf=0), method="DELETE",
         headers={"x-forwarded-for": "203.0.113.9", "traceparent": trace})
    method, path, headers = identity.authz_checks[-1]
    assert (method, path) == ("DELETE", "/internal/authz/v1/agents/x")
    # Envoy appended the address it saw (use_remote_address): the last entry, not the client's own.
    forwarded = [entry.strip() for entry in headers["x-forwarded-for"].split(",")]
    assert len(forwarded) == 2 and forwarded[0] == "203.0.113.9" and forwarded[1] != "203.0.113.9", headers
    assert headers["traceparent"].split("-")[1] == "ab" * 16, headers
    grpc_get_agent(gateway, [("authorization", "Bearer garbage")])
    method, path, headers = identity.authz_checks[-1]
    assert path == "/internal/authz/protomesh.agent.v1.AgentService/GetAgent" and method == "POST"
    assert headers["content-type"].startswith("application/grpc"), headers


def test_no_credential_is_401_for_rest_and_unauthenticated_for_grpc(gateway: EnvoyProcess) -> None:
    answer = rest(gateway, "/v1/agents/x")
    assert answer.status == 401
    assert answer.headers.get("www-authenticate") == 'Bearer realm="protomesh"'
    error = grpc_get_agent(gateway, [])
    assert isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_valid_token_reaches_the_replica_as_its_principal(gateway: EnvoyProcess, identity: Identity,
                                                            backend: ChassisBackend) -> None:
    assert rest(gateway, "/v1/agents/x", identity.sign(sub="user-42", roles=["admin"], admin=True)).status == 200
    principal = backend.servicer.principals[-1]
    assert principal == Principal(subject="user-42", kind="user", organization="org-a", roles=frozenset({"admin"}),
                                  scopes=frozenset({"openid", "agents"}), client_id="cli", token_id="t-1",
                                  platform_admin=True)
    reply = grpc_get_agent(gateway, [("authorization", f"Bearer {identity.sign(sub='user-43')}")])
    assert reply.agent.agent_id == "x"
    assert backend.servicer.principals[-1].subject == "user-43"


def test_a_client_sent_claims_header_is_removed(gateway: EnvoyProcess, identity: Identity,
                                                backend: ChassisBackend) -> None:
    forged = encode_claims({"sub": "root", "kind": "user", "admin": True})
    # Alone it is no credential ...
    assert rest(gateway, "/v1/agents/x", headers={CLAIMS_HEADER: forged}).status == 401
    error = grpc_get_agent(gateway, [(CLAIMS_HEADER, forged)])
    assert isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.UNAUTHENTICATED
    # ... and next to a valid token it does not replace the verified claims.
    assert rest(gateway, "/v1/agents/x", identity.sign(sub="user-7"), headers={CLAIMS_HEADER: forged}).status == 200
    assert backend.servicer.principals[-1].subject == "user-7"
    assert not backend.servicer.principals[-1].platform_admin


def test_public_routes_pass_without_a_credential(gateway: EnvoyProcess, identity: Identity) -> None:
    assert rest(gateway, "/openapi.json").status == 200
    # An HTTP-served contract path goes to the identity service's listener as it is (not transcoded).
    discovery = rest(gateway, "/.well-known/openid-configuration")
    assert discovery.status == 200 and json.loads(discovery.body)["issuer"] == ISSUER
    # The ext_authz endpoint itself is never routed.
    assert rest(gateway, "/internal/authz/v1/agents", identity.sign()).status == 404
    # Reflection, for grpcurl.
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        try:
            next(iter(stub.ServerReflectionInfo(iter([request]), timeout=5)))
        except grpc.RpcError as error:  # the backend serves no reflection: it answered, the gateway let it by
            assert error.code() == grpc.StatusCode.UNIMPLEMENTED, error.details()


def test_an_api_key_goes_to_ext_authz_and_becomes_the_principal(gateway: EnvoyProcess, identity: Identity,
                                                                backend: ChassisBackend) -> None:
    assert rest(gateway, "/v1/agents/x", headers={"x-api-key": "good-key"}).status == 200
    assert backend.servicer.principals[-1] == Principal.from_claims(API_KEY_CLAIMS)
    assert identity.authz_paths[-1] == "/internal/authz/v1/agents/x"
    reply = grpc_get_agent(gateway, [("authorization", "ApiKey good-key")])
    assert reply.agent.agent_id == "x"
    assert backend.servicer.principals[-1].kind == "api_key"
    answer = rest(gateway, "/v1/agents/x", headers={"x-api-key": "wrong-key"})
    assert answer.status == 401 and answer.headers.get("www-authenticate") == 'Bearer realm="protomesh"'


def test_an_api_key_over_its_rate_is_429_with_retry_after(gateway: EnvoyProcess) -> None:
    answer = rest(gateway, "/v1/agents/x", headers={"x-api-key": "busy-key"})
    assert answer.status == 429
    assert answer.headers.get("retry-after") == "7"


def test_a_key_published_later_is_accepted_without_restarting_envoy(gateway: EnvoyProcess,
                                                                    identity: Identity) -> None:
    rotated = Identity.new_key("k2")
    assert rest(gateway, "/v1/agents/x", identity.sign(key=rotated)).status == 401
    identity.keys.append(rotated)
    deadline = time.monotonic() + JWKS_CACHE_SECONDS + 10
    while rest(gateway, "/v1/agents/x", identity.sign(key=rotated)).status != 200:
        assert time.monotonic() < deadline, "the new key was never fetched"
        time.sleep(0.2)
    # The old key still works while it is published.
    assert rest(gateway, "/v1/agents/x", identity.sign()).status == 200


def test_without_a_principal_the_replica_itself_refuses(backend: ChassisBackend) -> None:
    """Behind the gateway too: a call that reaches a replica without claims is UNAUTHENTICATED there."""
    with grpc.insecure_channel(f"127.0.0.1:{backend.port}") as channel:
        stub = agent_service_pb2_grpc.AgentServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetAgent(agent_service_pb2.GetAgentRequest(agent_id="x"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Authorization: Bearer" in (raised.value.details() or "")


