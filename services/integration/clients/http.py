"""HTTP/REST APIs: the shape of authentication providers (OAuth2 client credentials) and payment APIs
(bearer or basic secret keys), or any JSON API, over one shared aiohttp connection pool."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from typing import Any

from yarl import URL

from chassis.errors import FailedPrecondition, ResourceExhausted, Unavailable, Violations
from protomesh.integration.v1 import integration_pb2
from services.integration.clients.base import (
    ClientSpec,
    ExternalClient,
    Operation,
    Shared,
    Steps,
    Target,
    external_error,
    flag,
    number,
    string_map,
    text,
    unknown_keys,
    within,
)
from services.integration.targets import TargetRefused

AUTH_MODES = {
    "none": (),
    "bearer": ("token",),
    "basic": ("username", "password"),
    "api_key": ("api_key",),
    "oauth2_client_credentials": ("client_id", "client_secret"),
}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SAFE_METHODS = ("GET", "HEAD")
IDEMPOTENT_METHODS = ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
# Headers that carry credentials: they come from auth + credentials, never from config or parameters.
SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie")
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
CONFIG_FIELDS = ("base_url*", "auth", "api_key_header", "token_url", "scope", "audience", "health_path",
                 "test_path", "headers", "max_response_bytes", "verify_tls")


def _looks_secret(header: str, api_key_header: str) -> bool:
    name = header.lower()
    return name in SECRET_HEADERS or name == api_key_header.lower()


def validate_config(v: Violations, config: dict[str, Any], credentials: Mapping[str, str]) -> None:
    """base_url absolute http(s); auth mode known and its credentials present; no secret headers."""
    unknown_keys(v, config, [f.rstrip("*") for f in CONFIG_FIELDS] + ["resilience", "rate_limit", "cache"], "config")
    base = text(v, config, "base_url", "config.base_url", required=True)
    if base:
        url = URL(base)
        v.check(url.scheme in ("http", "https") and bool(url.host) and not url.user and not url.password,
                "config.base_url", "must be an absolute http:// or https:// URL without user or password")
    mode = text(v, config, "auth", "config.auth") or "none"
    if v.check(mode in AUTH_MODES, "config.auth", f"one of {', '.join(AUTH_MODES)}"):
        for key in AUTH_MODES[mode]:
            v.check(bool(credentials.get(key)), f"credentials.{key}", f"required for auth {mode}")
    if mode == "oauth2_client_credentials":
        text(v, config, "token_url", "config.token_url", required=True)
    for key in ("token_url", "scope", "audience"):
        text(v, config, key, f"config.{key}")
    api_key_header = text(v, config, "api_key_header", "config.api_key_header", max_len=128) or "X-API-Key"
    for key in ("health_path", "test_path"):
        path = text(v, config, key, f"config.{key}")
        v.check(not path or path.startswith("/"), f"config.{key}", "must start with /")
    for name in string_map(v, config, "headers", "config.headers"):
        v.check(not _looks_secret(name, api_key_header), f"config.headers.{name}",
                "credentials go in credentials with config.auth, not in headers")
    number(v, config, "max_response_bytes", "config.max_response_bytes", low=1, high=64 * 1024 * 1024, integer=True)
    flag(v, config, "verify_tls", "config.verify_tls", True)


def validate_params(v: Violations, operation: str, params: dict[str, Any], config: dict[str, Any]) -> None:
    """request: a known method, a path below base_url, string query/headers, no credential headers."""
    method = (text(v, params, "method", "parameters.method") or "GET").upper()
    v.check(method in METHODS, "parameters.method", f"one of {', '.join(METHODS)}")
    path = text(v, params, "path", "parameters.path") or "/"
    v.check(path.startswith("/") and "://" not in path and "\\" not in path, "parameters.path",
            "must be a path starting with / (relative to config.base_url)")
    string_map(v, params, "query", "parameters.query")
    api_key_header = config.get("api_key_header") or "X-API-Key"
    for name in string_map(v, params, "headers", "parameters.headers"):
        v.check(not _looks_secret(name, api_key_header), f"parameters.headers.{name}",
                "set by the integration from its credentials")
    unknown_keys(v, params, ("method", "path", "query", "headers", "body"), "parameters")


def idempotent(operation: str, params: dict[str, Any]) -> bool:
    """GET/HEAD/PUT/DELETE/OPTIONS may be retried; GET/HEAD results may be cached."""
    return str(params.get("method") or "GET").upper() in IDEMPOTENT_METHODS


def _token_url(config: Mapping[str, Any]) -> URL:
    """token_url, absolute (a relative one is below base_url)."""
    token_url = URL(config["token_url"])
    if token_url.is_absolute():
        return token_url
    return URL(str(config["base_url"]).rstrip("/") + "/" + str(token_url).lstrip("/"))


def _origin(url: URL) -> str:
    return f"{url.scheme}://{url.host}:{url.port}" if url.is_absolute() and url.host else str(url)


def targets(config: dict[str, Any]) -> list[Target]:
    """base_url's host, and token_url's when OAuth2 uses one."""
    base = URL(config["base_url"])
    found = [Target("config.base_url", base.host or "", base.port or 0)]
    if config.get("token_url") and config.get("auth") == "oauth2_client_credentials":
        token = _token_url(config)
        found.append(Target("config.token_url", token.host or "", token.port or 0))
    return found


def binding(config: dict[str, Any]) -> dict[str, Any]:
    """The credentials are for base_url's origin (scheme, host, port) and token_url's."""
    bound = {"config.base_url": _origin(URL(config.get("base_url") or ""))}
    if config.get("token_url"):
        bound["config.token_url"] = _origin(_token_url(config))
    return bound


class HttpClient(ExternalClient):
    """Calls one HTTP API below its base_url with the configured authentication."""

    def __init__(self, name: str, config: dict[str, Any], credentials: Mapping[str, str], shared: Shared) -> None:
        super().__init__(name, config, credentials, shared)
        self.base = URL(config["base_url"])
        self.auth = config.get("auth") or "none"
        self.max_bytes = int(config.get("max_response_bytes") or 1024 * 1024)
        self.ssl = bool(config.get("verify_tls", True))  # aiohttp: True verifies certificates, False does not
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()

    def _url(self, path: str) -> URL:
        return URL(str(self.base).rstrip("/") + "/" + path.lstrip("/"))

    async def _oauth_token(self, timeout: float) -> str:
        async with self._token_lock:
            if self._token and self._token[1] > time.monotonic():
                return self._token[0]
            token_url = _token_url(self.config)
            await self._checked(token_url, "config.token_url")
            form = {"grant_type": "client_credentials", "client_id": self.credential("client_id"),
                    "client_secret": self.credential("client_secret")}
            form.update({k: self.config[k] for k in ("scope", "audience") if self.config.get(k)})
            import aiohttp  # loaded with the shared session (services.integration.clients.base.Shared)

            async with self.shared.http.post(token_url, data=form, timeout=aiohttp.ClientTimeout(total=timeout),
                                             ssl=self.ssl, allow_redirects=False) as response:
                # Not followed: the client secret is posted to token_url and nowhere else.
                if response.status >= 500:
                    raise Unavailable(f"{self.name}: the token endpoint answered HTTP {response.status}")
                if response.status != 200:
                    raise FailedPrecondition(f"{self.name}: the token endpoint refused the client credentials "
                                             f"(HTTP {response.status}); update the integration's credentials")
                payload = await response.json(content_type=None)
            token = payload.get("access_token") if isinstance(payload, dict) else None
            if not isinstance(token, str) or not token:
                raise FailedPrecondition(f"{self.name}: the token endpoint's answer has no access_token")
            self.secrets = sorted({*self.secrets, token}, key=len, reverse=True)
            lifetime = float(payload.get("expires_in") or 300)
            self._token = (token, time.monotonic() + max(lifetime - 30, lifetime / 2))
            return token

    async def _auth_headers(self, timeout: float) -> dict[str, str]:
        if self.auth == "bearer":
            return {"Authorization": f"Bearer {self.credential('token')}"}
        if self.auth == "basic":
            import aiohttp  # loaded with the shared session (services.integration.clients.base.Shared)

            return {"Authorization": aiohttp.BasicAuth(self.credential("username"),
                                                       self.credential("password")).encode()}
        if self.auth == "api_key":
            return {self.config.get("api_key_header") or "X-API-Key": self.credential("api_key")}
        if self.auth == "oauth2_client_credentials":
            return {"Authorization": f"Bearer {await self._oauth_token(timeout)}"}
        return {}

    async def _checked(self, url: URL, field_path: str) -> None:
        """Refuse a URL whose host is not a target integrations may reach (the guard's rules)."""
        if url.scheme not in ("http", "https") or not url.host:
            raise TargetRefused(field_path, f"{url} is not an http:// or https:// URL")
        await self.shared.targets.check(url.host, url.port or 0, field_path)

    async def _exchange(self, method: str, url: URL, field_path: str, headers: dict[str, str], body: Any,
                        query: dict[str, str] | None, deadline: float) -> tuple[int, bytes, Mapping[str, str]]:
        await self._checked(url, field_path)
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        session = self.shared.http
        import aiohttp  # loaded with the shared session (services.integration.clients.base.Shared)

        try:
            async with session.request(
                method, url, params=query or None, headers=headers, ssl=self.ssl, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=max(deadline - time.monotonic(), 0.001)), **kwargs,
            ) as response:
                if response.status in REDIRECTS:
                    return response.status, b"", response.headers
                return response.status, await response.content.read(self.max_bytes + 1), response.headers
        except TargetRefused as exc:  # the session's resolver: the name's answer changed since _checked
            raise TargetRefused(field_path, exc.description) from None

    async def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                      headers: dict[str, str] | None = None, body: Any = None, timeout: float,
                      authenticate: bool = True) -> dict[str, Any]:
        """One HTTP exchange, following up to MAX_REDIRECTS redirects, each checked like config.base_url;
        credentials go only to base_url's origin. 5xx and 429 raise (retryable), any other status is the result."""
        deadline = time.monotonic() + timeout
        url = first = self._url(path)
        try:
            plain = {**(self.config.get("headers") or {}), **(headers or {})}
            secret = await self._auth_headers(timeout) if authenticate else {}
            for _ in range(MAX_REDIRECTS + 1):
                sent = {**plain, **secret} if url.origin() == self.base.origin() else plain
                status, raw, reply_headers = await self._exchange(method, url, "config.base_url", sent, body,
                                                                  query, deadline)
                location = reply_headers.get("Location") if status in REDIRECTS else None
                if not location:
                    break
                url, query = url.join(URL(location)), None
                if status == 303 or (status in (301, 302) and method == "POST"):
                    method, body = ("HEAD" if method == "HEAD" else "GET"), None
            else:
                raise FailedPrecondition(f"{self.name}: more than {MAX_REDIRECTS} redirects from {path}")
        except TargetRefused as exc:
            if url != first:
                exc = TargetRefused(exc.field, f"{path} redirected to {url.with_query(None)}, refused: "
                                               f"{exc.description}")
            raise external_error(exc, self.name, self.secrets) from None
        except Exception as exc:
            raise external_error(exc, self.name, self.secrets) from None
        if status >= 500:
            raise Unavailable(f"{self.name} answered HTTP {status}", metadata={"http_status": str(status)})
        if status == 429:
            raise ResourceExhausted(f"{self.name} is throttling (HTTP 429); retry later",
                                    metadata={"retry_after": reply_headers.get("Retry-After", "")})
        if len(raw) > self.max_bytes:
            raise FailedPrecondition(f"{self.name}: the response is larger than config.max_response_bytes "
                                     f"({self.max_bytes})")
        content_type = reply_headers.get("Content-Type", "")
        payload: Any = raw.decode("utf-8", errors="replace")
        if raw and "json" in content_type:
            with contextlib.suppress(ValueError):
                payload = json.loads(raw)
        return {"status": status,
                "headers": {k: v for k, v in reply_headers.items() if k.lower() != "set-cookie"},
                "body": payload}

    async def invoke(self, operation: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        return await self.request(str(params.get("method") or "GET").upper(), params.get("path") or "/",
                                  query=params.get("query"), headers=params.get("headers"),
                                  body=params.get("body"), timeout=timeout)

    async def health(self, timeout: float) -> str:
        result = await self.request("GET", self.config.get("health_path") or "/", timeout=timeout,
                                    authenticate=self.auth in ("bearer", "basic", "api_key"))
        return f"HTTP {result['status']}"

    async def test(self, steps: Steps, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        async def connect() -> str:
            await within(deadline - time.monotonic(), self.health(deadline - time.monotonic()))
            return f"{self.base.host}:{self.base.port} answers"

        async def authenticate() -> str:
            if self.auth == "oauth2_client_credentials":
                self._token = None
                await self._oauth_token(deadline - time.monotonic())
                return "the token endpoint issued an access token"
            return f"auth {self.auth}: credentials present" if self.auth != "none" else "no authentication"

        async def round_trip() -> str:
            path = self.config.get("test_path") or self.config.get("health_path") or "/"
            result = await self.request("GET", path, timeout=deadline - time.monotonic())
            if result["status"] >= 400:
                raise FailedPrecondition(f"GET {path} answered HTTP {result['status']}")
            return f"GET {path}: HTTP {result['status']}"

        await steps.run("connect", connect)
        await steps.run("authenticate", authenticate)
        await steps.run("request", round_trip)


SPEC = ClientSpec(
    client_type="http",
    kind=integration_pb2.INTEGRATION_KIND_HTTP,
    description="HTTP/REST APIs: authentication providers (OAuth2 client credentials), payment APIs (bearer or "
                "basic secret keys), any JSON API",
    operations=(Operation("request", cacheable=True),),
    config_fields=CONFIG_FIELDS,
    credential_fields=("token", "username", "password", "api_key", "client_id", "client_secret"),
    validate_config=validate_config,
    validate_params=validate_params,
    factory=HttpClient,
    idempotent=idempotent,
    cacheable_when=lambda operation, params: str(params.get("method") or "GET").upper() in SAFE_METHODS,
    targets=targets,
    binding=binding,
)
