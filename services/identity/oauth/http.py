"""The aiohttp application of the identity replica's HTTP listener: the OAuth / OIDC endpoints of
docs/identity.md and Envoy's ext_authz check. Authlib runs in worker threads (it is synchronous)."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from aiohttp import web
from authlib.oauth2.rfc6749.errors import OAuth2Error
from multidict import CIMultiDictProxy, MultiDict, MultiDictProxy

from services.identity.oauth import authz, pages
from services.identity.oauth.config import ALG, SCOPES
from services.identity.oauth.grants import user_info
from services.identity.oauth.logins import FAILED
from services.identity.oauth.provider import PROVIDER, OAuthProvider
from services.identity.oauth.server import FormRequest, OAuthResponse
from services.identity.oauth.store import normalise_user_code

_NOT_PARAMS = {"email", "password", pages.CSRF_FIELD, "decision"}
"""Form fields of the login page that are not parameters of the authorization request."""


def build_app(provider: OAuthProvider) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[PROVIDER] = provider
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/oauth2/jwks", jwks)
    app.router.add_route("GET", "/oauth2/authorize", authorize)
    app.router.add_route("POST", "/oauth2/authorize", authorize)
    app.router.add_post("/oauth2/token", token)
    app.router.add_post("/oauth2/device_authorization", device_authorization)
    app.router.add_route("GET", "/oauth2/device", device)
    app.router.add_route("POST", "/oauth2/device", device)
    app.router.add_post("/oauth2/revoke", revoke)
    app.router.add_post("/oauth2/introspect", introspect)
    app.router.add_route("GET", "/oauth2/userinfo", userinfo)
    app.router.add_route("POST", "/oauth2/userinfo", userinfo)
    app.router.add_route("*", "/internal/authz", authz.check)
    app.router.add_route("*", "/internal/authz/{tail:.*}", authz.check)
    return app


async def _read(request: web.Request) -> FormRequest:
    provider = request.app[PROVIDER]
    form: MultiDictProxy[str] = MultiDictProxy(MultiDict())
    if request.method == "POST":
        posted = await request.post()
        form = MultiDictProxy(MultiDict((k, v) for k, v in posted.items() if isinstance(v, str)))
    return FormRequest(request.method, provider.config.url(request.rel_url.path),
                       CIMultiDictProxy(request.headers.copy()), request.rel_url.query, form)


def _web(answer: OAuthResponse) -> web.Response:
    headers = {k: v for k, v in answer.headers if k.lower() != "content-type"}
    content_type = answer.header("Content-Type") or "application/json"
    return web.Response(status=answer.status, text=answer.text(), headers=headers,
                        content_type=content_type.split(";")[0])


def _html(text: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/html",
                        headers={**pages.SECURITY_HEADERS, **(headers or {})})


def client_address(request: web.Request) -> str:
    """The caller's address: the last x-forwarded-for entry (the one Envoy appended), else the peer."""
    forwarded = request.headers.get("x-forwarded-for", "")
    if forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return request.remote or "unknown"


def _csrf(request: web.Request) -> str:
    return request.cookies.get(pages.CSRF_COOKIE) or secrets.token_urlsafe(24)


def _with_csrf_cookie(response: web.Response, csrf: str) -> web.Response:
    response.set_cookie(pages.CSRF_COOKIE, csrf, httponly=True, samesite="Lax", path="/oauth2")
    return response


def _csrf_ok(request: web.Request, form: FormRequest) -> bool:
    cookie = request.cookies.get(pages.CSRF_COOKIE, "")
    sent = form.form.get(pages.CSRF_FIELD, "")
    return bool(cookie) and secrets.compare_digest(cookie, sent)


# --- discovery and keys -----------------------------------------------------------------------------

async def discovery(request: web.Request) -> web.Response:
    config = request.app[PROVIDER].config
    return web.json_response({
        "issuer": config.issuer_base,
        "authorization_endpoint": config.url("/oauth2/authorize"),
        "token_endpoint": config.url("/oauth2/token"),
        "jwks_uri": config.url("/oauth2/jwks"),
        "userinfo_endpoint": config.url("/oauth2/userinfo"),
        "revocation_endpoint": config.url("/oauth2/revoke"),
        "introspection_endpoint": config.url("/oauth2/introspect"),
        "device_authorization_endpoint": config.url("/oauth2/device_authorization"),
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token",
                                  "urn:ietf:params:oauth:grant-type:device_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALG],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name", "email",
                             "email_verified"],
    })


async def jwks(request: web.Request) -> web.Response:
    keys = request.app[PROVIDER].keys
    document = keys.published_document() or await keys.jwks()
    return web.json_response(document, headers={"Cache-Control": "no-cache"})


# --- authorization code: the login page --------------------------------------------------------------

def _authorize_error(error: OAuth2Error) -> web.Response:
    if error.redirect_uri:
        # The client and redirect URI are known good: the error goes back to the client (with state).
        status, _, headers = error()
        return web.Response(status=status, headers=dict(headers))
    # Unknown client or unregistered redirect URI: never redirect, tell the person.
    return _html(pages.error_page("Cannot sign in", f"{error.error}: {error.description or ''}"), status=400)


async def authorize(request: web.Request) -> web.Response:
    provider = request.app[PROVIDER]
    form = await _read(request)
    try:
        grant = await asyncio.to_thread(provider.server.get_consent_grant, form)
    except OAuth2Error as error:
        return _authorize_error(error)
    csrf = _csrf(request)
    params = [(k, v) for k, v in form.values().items() if k not in _NOT_PARAMS]
    client_name = grant.client.name

    if request.method == "GET":
        return _with_csrf_cookie(_html(pages.login_page(client_name=client_name, params=params, csrf=csrf)), csrf)
    if not _csrf_ok(request, form):
        return _with_csrf_cookie(_html(pages.login_page(
            client_name=client_name, params=params, csrf=csrf,
            error="The form expired; sign in again."), status=400), csrf)
    email = form.form.get("email", "")
    outcome = await asyncio.to_thread(provider.logins.sign_in, email, form.form.get("password", ""),
                                      client_address(request))
    if outcome.limited:
        return _with_csrf_cookie(_html(pages.login_page(
            client_name=client_name, params=params, csrf=csrf,
            error="Too many failed sign-ins: try again later."), status=429,
            headers={"Retry-After": str(outcome.retry_after)}), csrf)
    if outcome.user is None:
        # Not even the email is echoed: an unknown account and a wrong password get the same page.
        return _with_csrf_cookie(_html(pages.login_page(client_name=client_name, params=params, csrf=csrf,
                                                        error=FAILED), status=401), csrf)
    try:
        organization = outcome.user.choose_organization(form.values().get("org"))
    except ValueError:
        return _html(pages.error_page("Cannot sign in", "You are not a member of that organization."), status=403)
    user = outcome.user.in_organization(organization, int(time.time()))
    answer = await asyncio.to_thread(provider.server.create_authorization_response, grant.request, user, grant)
    return _web(answer)


# --- token, device, revocation, introspection ----------------------------------------------------------

async def token(request: web.Request) -> web.Response:
    provider = request.app[PROVIDER]
    form = await _read(request)
    return _web(await asyncio.to_thread(provider.server.create_token_response, form))


async def _endpoint(request: web.Request, name: str) -> web.Response:
    provider = request.app[PROVIDER]
    form = await _read(request)
    return _web(await asyncio.to_thread(provider.server.create_endpoint_response, name, form))


async def device_authorization(request: web.Request) -> web.Response:
    return await _endpoint(request, "device_authorization")


async def revoke(request: web.Request) -> web.Response:
    return await _endpoint(request, "revocation")


async def introspect(request: web.Request) -> web.Response:
    return await _endpoint(request, "introspection")


async def device(request: web.Request) -> web.Response:
    """Enter the user code, sign in, approve or deny (RFC 8628 3.3)."""
    provider = request.app[PROVIDER]
    form = await _read(request)
    csrf = _csrf(request)
    if request.method == "GET":
        return _with_csrf_cookie(_html(pages.device_page(csrf=csrf, user_code=form.query.get("user_code", ""))), csrf)
    user_code = normalise_user_code(form.form.get("user_code", ""))

    def again(error: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
        return _with_csrf_cookie(_html(pages.device_page(csrf=csrf, user_code=user_code, error=error),
                                       status=status, headers=headers), csrf)

    if not _csrf_ok(request, form):
        return again("The form expired; try again.", 400)
    pending = await asyncio.to_thread(provider.store.pending_device, user_code)
    if pending is None:
        return again("That code is not valid (or was already used, or has expired).", 400)
    outcome = await asyncio.to_thread(provider.logins.sign_in, form.form.get("email", ""),
                                      form.form.get("password", ""), client_address(request))
    if outcome.limited:
        return again("Too many failed sign-ins: try again later.", 429, {"Retry-After": str(outcome.retry_after)})
    if outcome.user is None:
        return again(FAILED, 401)
    try:
        organization = outcome.user.choose_organization(form.form.get("org"))
    except ValueError:
        return again("You are not a member of that organization.", 403)
    approved = form.form.get("decision") == "approve"
    decided = await asyncio.to_thread(provider.store.decide_device, user_code,
                                      outcome.user.in_organization(organization), approved)
    if not decided:
        return again("That code is not valid (or was already used, or has expired).", 400)
    done = "The device is connected: you can close this page." if approved else "The device was denied."
    return _html(pages.device_page(csrf=csrf, done=done))


# --- userinfo -----------------------------------------------------------------------------------------

def _bearer_error(error: str, description: str) -> web.Response:
    challenge = f'Bearer realm="protomesh", error="{error}", error_description="{description}"'
    return web.json_response({"error": error, "error_description": description}, status=401,
                             headers={"WWW-Authenticate": challenge})


async def userinfo(request: web.Request) -> web.Response:
    provider = request.app[PROVIDER]
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return web.json_response({"error": "invalid_request", "error_description": "a bearer token is required"},
                                 status=401, headers={"WWW-Authenticate": 'Bearer realm="protomesh"'})
    claims: dict[str, Any] | None = await asyncio.to_thread(provider.server.tokens.verify, credential.strip())
    if claims is None or claims.get("kind") != "user":
        return _bearer_error("invalid_token", "the access token is not valid for userinfo")
    if await asyncio.to_thread(provider.store.access_token_revoked, str(claims.get("jti", ""))):
        return _bearer_error("invalid_token", "the access token was revoked")
    user = await asyncio.to_thread(provider.store.user, str(claims["sub"]))
    if user is None or not user.active:
        return _bearer_error("invalid_token", "the user is not active")
    return web.json_response(dict(user_info(user, str(claims.get("scope", "")))),
                             headers={"Cache-Control": "no-store"})
