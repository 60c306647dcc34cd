"""Shared pieces of the identity end-to-end tests (tests/e2e/test_identity_*.py).

Everything here talks to a real mesh through its gateway (Envoy) over HTTP or gRPC, as an outside
client would: the login and device pages are driven by reading the HTML form the identity replica
serves (field roles are recognised by input type and name, so the tests do not depend on how the
page spells them); the identity APIs are called over REST by their routes in the contracts
(chassis.tooling.catalog), so a path change in the proto does not break them. The only white-box
helper is `signing_key`, which reads the current private signing key from the identity schema with
the mesh's key: the attack tests need tokens that are validly signed and wrong in one claim only.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import psycopg
import requests
from google.protobuf import descriptor_pool
from joserfc import jwt
from joserfc.jwk import RSAKey

from chassis.contracts import mesh_grpc_services
from chassis.crypto import KEY_FILE_NAME, Sealed, load_cipher
from chassis.tooling.catalog import HttpRule, MeshMethod, load_catalog
from chassis.tooling.mesh_testing import running_mesh
from chassis.tooling.supervisor import Mesh
from protomesh.options.v1 import access_pb2

ADMIN_EMAIL = "admin@protomesh.local"
ADMIN_PASSWORD = f"Adm1n-{uuid.uuid4().hex}"
"""The bootstrap admin's password: known to the tests because they set PROTOMESH_ADMIN_PASSWORD."""
CLI_CLIENT_ID = "protomesh-cli"
AUDIENCE = "protomesh"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TIMEOUT = 15.0

IDENTITY_TEST_ENV = {
    "PROTOMESH_ADMIN_PASSWORD": ADMIN_PASSWORD,
    # A short publish lead lets a test rotate soon after start; Envoy fetched the JWKS (with the `next`
    # key already in it) when the mesh came up, so promoting that key is still safe.
    "IDENTITY_KEY_PUBLISH_LEAD": "2s",
}


@contextlib.contextmanager
def identity_mesh(*services: str, replicas: int = 1, identity_replicas: int = 1,
                  env: Mapping[str, str] | None = None) -> Iterator[Mesh]:
    """A mesh with the identity service and `services`, the admin password known to the tests.

    The supervisor hands PROTOMESH_ADMIN_PASSWORD from the service environment to identity replicas only.
    """
    with running_mesh(only=["identity", *services], replicas=replicas, identity_replicas=identity_replicas,
                      extra_env={**IDENTITY_TEST_ENV, **(env or {})}) as mesh:
        yield mesh


def base_url(mesh: Mesh) -> str:
    """The gateway's URL, which is also the issuer."""
    return f"http://{mesh.gateway}"


# ---------------------------------------------------------------------------------------------------------
# JWT pieces, decoded without verification (only to look at what a token says; verification is joserfc's)
# ---------------------------------------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    """base64url without padding (JOSE's encoding)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Inverse of b64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a compact JWS, unverified."""
    header, payload, _ = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


# ---------------------------------------------------------------------------------------------------------
# HTML forms: the login, consent and device pages
# ---------------------------------------------------------------------------------------------------------

@dataclass
class FormField:
    """One input/button/select of a form."""

    name: str
    type: str
    value: str


@dataclass
class HtmlForm:
    """A form as the page declares it."""

    action: str
    method: str
    fields: list[FormField] = field(default_factory=list)

    def has(self, input_type: str) -> bool:
        """Whether the form has an input of this type."""
        return any(f.type == input_type for f in self.fields)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[HtmlForm] = []
        self._in_button: FormField | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(HtmlForm(a.get("action", ""), (a.get("method") or "get").upper()))
        elif not self.forms:
            return
        elif tag == "input" and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                kind = f"unchecked-{kind}"
            self.forms[-1].fields.append(FormField(a["name"], kind, a.get("value", "")))
        elif tag == "button" and a.get("name"):
            self.forms[-1].fields.append(FormField(a["name"], (a.get("type") or "submit").lower(), a.get("value", "")))
        elif tag in ("select", "textarea") and a.get("name"):
            self.forms[-1].fields.append(FormField(a["name"], tag, a.get("value", "")))


def parse_forms(html: str) -> list[HtmlForm]:
    """Every form of a page."""
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


_DENY = re.compile(r"deny|reject|cancel|refuse|decline", re.IGNORECASE)


def fill_form(form: HtmlForm, *, email: str | None = None, password: str | None = None,
              user_code: str | None = None, approve: bool = True) -> dict[str, str]:
    """The values to post: hidden fields as served, each credential by its role, one submit button.

    Roles by input type and name: a password input takes the password; an email input, or a text
    input named like email/username/login, takes the email; one named like *code* takes the user code.
    Of several named submit buttons the approving one is sent (or the denying one with approve=False).
    """
    values: dict[str, str] = {}
    submits: list[FormField] = []
    for f in form.fields:
        lowered = f.name.lower()
        if f.type == "password":
            if password is not None:
                values[f.name] = password
        elif f.type == "email" or (f.type == "text" and re.search(r"email|user(name)?$|login", lowered)):
            if email is not None:
                values[f.name] = email
        elif "code" in lowered and f.type in ("text", "search", "tel"):
            values[f.name] = user_code if user_code is not None else f.value
        elif f.type == "submit":
            submits.append(f)
        elif f.type in ("unchecked-checkbox", "unchecked-radio", "reset", "button"):
            continue
        else:
            values[f.name] = f.value
    if submits:
        chosen = [s for s in submits if bool(_DENY.search(f"{s.name} {s.value}")) != approve] or submits[:1]
        values[chosen[0].name] = chosen[0].value
    return values


def submit_form(session: requests.Session, page: requests.Response, **roles: Any) -> requests.Response:
    """Fill the page's form (the one with a password input first) and send it; redirects are not followed."""
    forms = parse_forms(page.text)
    assert forms, f"no form on {page.url} ({page.status_code}): {page.text[:300]}"
    form = next((f for f in forms if f.has("password")), forms[0])
    target = urljoin(page.url, form.action) if form.action else page.url
    values = fill_form(form, **roles)
    if form.method == "POST":
        return session.post(target, data=values, allow_redirects=False, timeout=TIMEOUT)
    return session.get(target, params=values, allow_redirects=False, timeout=TIMEOUT)


def redirect_params(response: requests.Response) -> dict[str, str]:
    """Query parameters of a 302's Location (code, state, or error)."""
    assert response.status_code in (302, 303), \
        f"expected a redirect, got {response.status_code}: {response.text[:300]}"
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return {k: v[0] for k, v in query.items()}


# ---------------------------------------------------------------------------------------------------------
# OAuth flows over plain HTTP
# ---------------------------------------------------------------------------------------------------------

def discovery(mesh: Mesh) -> dict[str, Any]:
    """The provider's OpenID configuration, fetched through the gateway."""
    reply = requests.get(base_url(mesh) + "/.well-known/openid-configuration", timeout=TIMEOUT)
    assert reply.status_code == 200, reply.text
    document: dict[str, Any] = reply.json()
    return document


def token_request(mesh: Mesh, form: Mapping[str, str], auth: tuple[str, str] | None = None) -> requests.Response:
    """POST the token endpoint with a form (client_secret_basic when `auth` is given)."""
    return requests.post(base_url(mesh) + "/oauth2/token", data=dict(form), auth=auth, timeout=TIMEOUT)


@dataclass
class DeviceGrant:
    """An RFC 8628 device authorization answer."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    interval: int


def start_device_flow(mesh: Mesh, client_id: str = CLI_CLIENT_ID, scope: str = "openid profile email") -> DeviceGrant:
    """POST /oauth2/device_authorization."""
    reply = requests.post(base_url(mesh) + "/oauth2/device_authorization",
                          data={"client_id": client_id, "scope": scope}, timeout=TIMEOUT)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    return DeviceGrant(body["device_code"], body["user_code"], body["verification_uri"],
                       body.get("verification_uri_complete", ""), int(body.get("interval", 5)))


def approve_device(mesh: Mesh, grant: DeviceGrant, email: str, password: str) -> None:
    """Enter the user code on the device page, log in and approve: as many form steps as the page takes."""
    session = requests.Session()
    page = session.get(_public(mesh, grant.verification_uri), timeout=TIMEOUT)
    for _ in range(4):
        assert page.status_code == 200, f"device page: {page.status_code} {page.text[:300]}"
        if not parse_forms(page.text):
            return
        answer = submit_form(session, page, email=email, password=password, user_code=grant.user_code)
        while answer.status_code in (302, 303):
            answer = session.get(urljoin(answer.url, answer.headers["Location"]), allow_redirects=False,
                                 timeout=TIMEOUT)
        assert answer.status_code < 400, f"device page answered {answer.status_code}: {answer.text[:300]}"
        page = answer
    raise AssertionError(f"the device page still asks for a form after 4 steps: {page.text[:300]}")


def poll_device_token(mesh: Mesh, grant: DeviceGrant, client_id: str = CLI_CLIENT_ID,
                      timeout: float = 30.0) -> dict[str, Any]:
    """Poll the token endpoint at the given interval until the grant is approved."""
    deadline = time.monotonic() + timeout
    interval = grant.interval
    while time.monotonic() < deadline:
        reply = token_request(mesh, {"grant_type": DEVICE_GRANT, "device_code": grant.device_code,
                                     "client_id": client_id})
        body = reply.json()
        if reply.status_code == 200:
            token: dict[str, Any] = body
            return token
        assert body.get("error") in ("authorization_pending", "slow_down"), body
        if body["error"] == "slow_down":
            interval += 5
        time.sleep(interval)
    raise AssertionError("the device grant was never approved")


def device_login(mesh: Mesh, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD,
                 scope: str = "openid profile email offline_access") -> dict[str, Any]:
    """A token response for `email` through the device flow of the CLI client."""
    grant = start_device_flow(mesh, scope=scope)
    approve_device(mesh, grant, email, password)
    # The grant was approved before the first poll, so this returns at once.
    return poll_device_token(mesh, DeviceGrant(grant.device_code, grant.user_code, grant.verification_uri,
                                               grant.verification_uri_complete, 0))


def _public(mesh: Mesh, url: str) -> str:
    """A URL the provider printed (verification_uri...), made absolute against the gateway."""
    return urljoin(base_url(mesh) + "/", url)


def authorize(mesh: Mesh, session: requests.Session, authorization_url: str, email: str = ADMIN_EMAIL,
              password: str = ADMIN_PASSWORD) -> requests.Response:
    """GET the authorization URL (the login form), POST the credentials; the provider's answer, unfollowed."""
    page = session.get(authorization_url, allow_redirects=False, timeout=TIMEOUT)
    if page.status_code in (302, 303):  # a provider may redirect to its own login page first
        page = session.get(urljoin(authorization_url, page.headers["Location"]), allow_redirects=False,
                           timeout=TIMEOUT)
    assert page.status_code == 200, f"authorize page: {page.status_code} {page.text[:300]}"
    answer = submit_form(session, page, email=email, password=password)
    # A separate consent step, if the provider has one, is another form on the same origin.
    if answer.status_code == 200 and parse_forms(answer.text) and not parse_forms(answer.text)[0].has("password"):
        answer = submit_form(session, answer)
    return answer


# ---------------------------------------------------------------------------------------------------------
# The identity APIs (and any other) over REST through the gateway, by their routes in the contracts
# ---------------------------------------------------------------------------------------------------------

_CATALOG = load_catalog()
_TEMPLATE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")


def method(name: str, service: str = "identity") -> MeshMethod:
    """A method of the catalog by short or full name."""
    return _CATALOG.service(service).method(name)


def rest_request(rule: HttpRule, fields: Mapping[str, Any]) -> tuple[str, str, Any]:
    """(verb, path with query, JSON body or None) of a request message given as a dict (proto JSON names)."""
    remaining = dict(fields)

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value: Any = remaining
        for part in name.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        remaining.pop(name.split(".")[0], None)
        return str(value)

    path = _TEMPLATE.sub(fill, rule.path)
    body: Any = None
    if rule.body == "*":
        body, remaining = remaining, {}
    elif rule.body:
        body = remaining.pop(rule.body, {})
    if remaining:
        query = urlencode([(k, v if not isinstance(v, bool) else str(v).lower())
                           for k, vs in remaining.items() for v in (vs if isinstance(vs, list) else [vs])
                           if not isinstance(v, dict)])
        if query:
            path += ("&" if "?" in path else "?") + query
    return rule.verb, path, body


@dataclass(frozen=True)
class Answer:
    """An HTTP answer with its JSON body (or text)."""

    status: int
    body: Any
    headers: Mapping[str, str]


def rest_call(mesh: Mesh, rpc: MeshMethod, fields: Mapping[str, Any] | None = None, *,
              token: str | None = None, headers: Mapping[str, str] | None = None) -> Answer:
    """Call `rpc` over its first REST route with `fields`, as a bearer of `token` if given."""
    assert rpc.http is not None, f"{rpc.grpc_path} has no REST route"
    verb, path, body = rest_request(rpc.http, fields or {})
    sent = {"content-type": "application/json", **(headers or {})}
    if token:
        sent["authorization"] = f"Bearer {token}"
    reply = requests.request(verb, base_url(mesh) + path, data=None if body is None else json.dumps(body),
                             headers=sent, timeout=TIMEOUT, allow_redirects=False)
    try:
        decoded = reply.json()
    except ValueError:
        decoded = reply.text
    return Answer(reply.status_code, decoded, reply.headers)


def identity_call(mesh: Mesh, name: str, fields: Mapping[str, Any] | None = None, *, token: str) -> Any:
    """Call an identity RPC as `token`'s bearer; its JSON answer (fails on anything but 200)."""
    answer = rest_call(mesh, method(name), fields, token=token)
    assert answer.status == 200, f"{name}: {answer.status} {answer.body}"
    return answer.body


# ---------------------------------------------------------------------------------------------------------
# Tokens of the bootstrap admin
# ---------------------------------------------------------------------------------------------------------

def admin_tokens(mesh: Mesh) -> dict[str, Any]:
    """A fresh token response (access, refresh, id token) of the bootstrap admin, by the device flow."""
    return device_login(mesh)


def admin_token(mesh: Mesh) -> str:
    """An access token of the bootstrap admin: the CLI session's (what `protomesh token` prints)."""
    token = mesh.token()
    assert token, "the mesh has no CLI session of the admin"
    return token


def first(body: Any, *names: str) -> Any:
    """The first of `names` present in a JSON object, looking one level into nested objects too.

    Answers wrap resources (`{"client": {...}, "client_secret": "..."}`): this finds a field wherever
    one level of wrapping put it, so the tests do not depend on the wrapper's name.
    """
    if isinstance(body, dict):
        for name in names:
            if name in body:
                return body[name]
        for value in body.values():
            if isinstance(value, dict):
                found = first(value, *names)
                if found is not None:
                    return found
    return None


# ---------------------------------------------------------------------------------------------------------
# White box: the signing key, to make tokens that are validly signed and wrong in one claim only
# ---------------------------------------------------------------------------------------------------------

def signing_key(mesh: Mesh, state: str = "current") -> RSAKey:
    """The private key in `state` (current/next), opened with the identity service's cipher of this mesh.

    The local mesh gives identity no key variable: its replicas generate <state>/identity/encryption.key.
    """
    key_file = mesh.state_dir / "identity" / KEY_FILE_NAME
    assert key_file.exists(), f"no {key_file}: the identity replica was given its key another way"
    with psycopg.connect(mesh.database_url) as conn:
        row = conn.execute("SELECT kid, private_sealed, private_nonce, cipher_key_id FROM identity.signing_keys"
                           " WHERE state = %s", (state,)).fetchone()
    assert row, f"no {state} signing key"
    kid, sealed, nonce, key_id = row
    cipher = load_cipher("identity", env={"PROTOMESH_STATE_DIR": str(mesh.state_dir)})
    # Sealed as the private JWK's JSON, bound to its kid (services/identity/oauth/keys.py).
    private = cipher.open_bytes(Sealed(bytes(sealed), bytes(nonce), key_id), kid, what="signing key")
    return RSAKey.import_key(json.loads(private), {"kid": kid})


def sign(key: RSAKey, claims: Mapping[str, Any], **header: Any) -> str:
    """A compact RS256 JWS of `claims` with `key` (its kid in the header unless `header` says otherwise)."""
    return jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": key.kid, **header}, dict(claims), key,
                      algorithms=["RS256"])


def access_claims(mesh: Mesh, **overrides: Any) -> dict[str, Any]:
    """Claims of a well-formed access token of the bootstrap admin, with `overrides` (None removes a claim)."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": base_url(mesh), "aud": AUDIENCE, "sub": f"forged-{uuid.uuid4()}",
                              "client_id": CLI_CLIENT_ID, "iat": now, "nbf": now, "exp": now + 300,
                              "jti": str(uuid.uuid4()), "scope": "openid mesh", "kind": "user",
                              "org": str(uuid.uuid4()), "roles": ["owner"]}
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


# ---------------------------------------------------------------------------------------------------------
# Access declared in the contracts
# ---------------------------------------------------------------------------------------------------------

_ACCESS: Any = access_pb2
"""The generated extensions, untyped: the stubs type them as plain fields, which Extensions[] refuses."""


def is_public(rpc: MeshMethod) -> bool:
    """Whether the contract declares the method public (`option (protomesh.options.v1.access) = {public: true}`)."""
    mesh_grpc_services()  # every contract in the default pool, options included
    options = descriptor_pool.Default().FindMethodByName(f"{rpc.service}.{rpc.name}").GetOptions()
    return bool(options.Extensions[_ACCESS.access].public)


def is_http_served(rpc: MeshMethod) -> bool:
    """Whether the method's service is answered over HTTP by its replicas (the OAuth endpoints), not transcoded."""
    mesh_grpc_services()
    options = descriptor_pool.Default().FindServiceByName(rpc.service).GetOptions()
    return bool(options.HasExtension(_ACCESS.http_served))
