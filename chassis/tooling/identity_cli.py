"""`protomesh token|login|users|apikeys|keys`: the operator's side of the mesh's identities.

`token` and `login` speak OAuth to the identity provider through the gateway (the session lives in
<state>/identity/session.json, see identity_session); `users`, `apikeys` and `keys` call the identity
service's gRPC APIs through the gateway with the session's access token, as any client would.
Secrets (API keys, passwords) are printed only where they are issued, and read from a prompt or
stdin, never from the command line (where `ps` and shell history would keep them).
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import duration_pb2, json_format, timestamp_pb2
from google.protobuf.message import Message

from chassis.tooling import identity_session
from chassis.tooling.identity_session import CLI_CLIENT_ID, OAuthError, SessionError

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
STATE_FILE = "mesh.json"
CALL_TIMEOUT_SECONDS = 15.0
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_commands(subparsers: Any) -> None:
    """Register the identity commands on the protomesh command's subparsers."""
    token = subparsers.add_parser(
        "token", help="print an access token of the CLI session (the local admin's), for curl and scripts",
        description="Print a bearer access token for the gateway. The session is the local admin's (made by "
                    "the mesh's first start) or whoever ran `protomesh login`. A token still valid for 30 s is "
                    "reused, else the session's refresh token is spent (and rotated) for a new one.",
        epilog='example: curl -H "Authorization: Bearer $(.venv/bin/protomesh token)" localhost:8080/v1/agents')
    token.add_argument("--json", action="store_true", help="print the token with its expiry and issuer as JSON")
    token.set_defaults(func=cmd_token)

    login = subparsers.add_parser(
        "login", help="sign in with the device flow: prints a URL and a code, opens nothing",
        description="OAuth 2.0 device authorization (RFC 8628) for the `protomesh-cli` client: open the printed "
                    "URL in any browser, enter the code, sign in and approve; the CLI waits and then keeps the "
                    "new session (replacing the current one). Ctrl-C cancels.")
    login.add_argument("--issuer", help="the identity provider's URL (default: the running mesh's gateway)")
    login.add_argument("--scope", default="openid profile email offline_access",
                       help="scopes to ask for, space separated (default: %(default)s)")
    login.set_defaults(func=cmd_login)

    users = subparsers.add_parser("users", help="list, create, disable or enable users",
                                  description="Users of the identity service, through the gateway, as the "
                                              "session's user (a platform admin or an organization admin).")
    _gateway_option(users)
    user_actions = users.add_subparsers(dest="users_action", required=True, metavar="ACTION")
    listing = user_actions.add_parser("list", help="one line per user")
    listing.add_argument("--email-contains", default="", help="only users whose email contains this")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    listing.set_defaults(func=_grpc_command(_users_list))
    create = user_actions.add_parser(
        "create", help="create an active user (the password is prompted, or read from stdin)",
        description="The password is asked twice on a terminal, or read as one line from stdin with "
                    "--password-stdin (never an argument: `ps` and shell history would keep it).")
    create.add_argument("email")
    create.add_argument("--name", required=True, help="display name")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    create.add_argument("--platform-admin", action="store_true", help="make the user a platform administrator")
    create.set_defaults(func=_grpc_command(_users_create))
    for action, what in (("disable", "disable a user: refresh tokens refused at once, access tokens run out"),
                         ("enable", "enable a disabled user")):
        change = user_actions.add_parser(action, help=what)
        change.add_argument("user", help="the user's id or email")
        change.set_defaults(func=_grpc_command(_users_disable if action == "disable" else _users_enable))

    apikeys = subparsers.add_parser("apikeys", help="create, list, revoke or rotate API keys",
                                    description="API keys of an organization for external clients, sent as "
                                                "`Authorization: ApiKey <key>` or `x-api-key: <key>`.")
    _gateway_option(apikeys)
    key_actions = apikeys.add_subparsers(dest="apikeys_action", required=True, metavar="ACTION")
    create_key = key_actions.add_parser("create", help="create a key; its secret is printed this once")
    create_key.add_argument("name", help='a name shown in lists, e.g. "ci-pipeline"')
    create_key.add_argument("--scope", action="append", default=[], dest="scopes",
                            help="a scope the key grants (repeatable; default: mesh)")
    create_key.add_argument("--ttl", help="lifetime, e.g. 90d, 12h (default: until revoked)")
    create_key.add_argument("--org", default="", help="organization id (default: the session's)")
    create_key.add_argument("--rate", type=float, default=0.0, help="calls per second (default: the service's)")
    create_key.add_argument("--burst", type=int, default=0, help="burst size (default: the service's)")
    create_key.set_defaults(func=_grpc_command(_apikeys_create))
    list_keys = key_actions.add_parser("list", help="prefix, name, scopes, created, expires, last used")
    list_keys.add_argument("--org", default="", help="organization id (default: the session's)")
    list_keys.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    list_keys.set_defaults(func=_grpc_command(_apikeys_list))
    revoke = key_actions.add_parser("revoke", help="revoke a key (refused within seconds)")
    revoke.add_argument("api_key_id")
    revoke.set_defaults(func=_grpc_command(_apikeys_revoke))
    rotate = key_actions.add_parser("rotate", help="a new secret; the old one works until the overlap ends")
    rotate.add_argument("api_key_id")
    rotate.add_argument("--overlap", default="24h", help="how long the old secret stays valid (default: 24h)")
    rotate.set_defaults(func=_grpc_command(_apikeys_rotate))

    keys = subparsers.add_parser("keys", help="list or rotate the token signing keys",
                                 description="Signing keys: `next` is published before it signs, `current` "
                                             "signs, `retiring` stays published until its tokens expire.")
    _gateway_option(keys)
    signing = keys.add_subparsers(dest="keys_action", required=True, metavar="ACTION")
    signing.add_parser("list", help="the published keys and their states").set_defaults(
        func=_grpc_command(_keys_list))
    signing.add_parser("rotate", help="promote the next key to current and publish a new next").set_defaults(
        func=_grpc_command(_keys_rotate))


def _gateway_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gateway", help="host:port of the gateway (default: the running mesh's)")


# --------------------------------------------------------------------------------------------------
# token and login (OAuth over HTTP)
# --------------------------------------------------------------------------------------------------

def cmd_token(args: argparse.Namespace) -> int:
    """Print an access token of the session (refreshed when needed)."""
    try:
        token = identity_session.access_token(args.state_dir)
    except SessionError as exc:
        print(f"protomesh token: {exc}", file=sys.stderr)
        return 1
    if args.json:
        session = identity_session.read_session(args.state_dir)
        print(json.dumps({"access_token": token, "token_type": "Bearer",
                          "expires_at": int(session.expires_at) if session else None,
                          "issuer": session.issuer if session else None}))
    else:
        print(token)
    return 0


def mesh_state(state_dir: Path) -> dict[str, Any]:
    """The running mesh's mesh.json ({} when none)."""
    try:
        state = json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _issuer(args: argparse.Namespace) -> str | None:
    if args.issuer:
        return str(args.issuer).rstrip("/")
    state = mesh_state(args.state_dir)
    if state.get("issuer"):
        return str(state["issuer"])
    session = identity_session.read_session(args.state_dir)
    return session.issuer if session else None


def cmd_login(args: argparse.Namespace) -> int:
    """Device authorization grant: print where to go, poll until approved, keep the session."""
    issuer = _issuer(args)
    if not issuer:
        print("protomesh login: no mesh is running here and no --issuer given; start one with scripts/up",
              file=sys.stderr)
        return 1
    fields = {"client_id": CLI_CLIENT_ID, **({"scope": args.scope} if args.scope else {})}
    try:
        grant = identity_session.post_form(f"{issuer}/oauth2/device_authorization", fields)
    except SessionError as exc:
        print(f"protomesh login: {exc}", file=sys.stderr)
        return 1
    print(f"To sign in, open {grant['verification_uri']} in a browser and enter the code:\n\n"
          f"    {grant['user_code']}\n", flush=True)
    if grant.get("verification_uri_complete"):
        print(f"(or open {grant['verification_uri_complete']}, which carries the code)", flush=True)
    expires_in = float(grant.get("expires_in", 600))
    try:
        # Inside the try: a Ctrl-C right after this line (a user, or a test reacting to it) is a cancel too.
        print(f"Waiting for approval (the code expires in {expires_in / 60:.0f} min; Ctrl-C cancels) ...",
              flush=True)
        answer = poll_device_token(issuer, str(grant["device_code"]), float(grant.get("interval", 5)),
                                   time.monotonic() + expires_in)
    except KeyboardInterrupt:
        print("\nlogin cancelled; the session is unchanged", file=sys.stderr)
        return 130
    except SessionError as exc:
        print(f"protomesh login: {exc}", file=sys.stderr)
        return 1
    session = identity_session.session_from_tokens(issuer, CLI_CLIENT_ID, answer, _subject(answer))
    with identity_session.session_lock(args.state_dir):
        identity_session.write_session(args.state_dir, session)
    who = f" as {session.subject}" if session.subject else ""
    print(f"signed in{who}; session kept in {identity_session.session_path(args.state_dir)}")
    return 0


def poll_device_token(issuer: str, device_code: str, interval: float, deadline: float,
                      sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Poll the token endpoint (RFC 8628 section 3.4/3.5) until the user approves, denies or the code expires.

    `authorization_pending` waits the interval; `slow_down` adds 5 s to it for every later poll.
    """
    while True:
        sleep(interval)
        try:
            return identity_session.post_form(identity_session.token_endpoint(issuer), {
                "grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": CLI_CLIENT_ID})
        except OAuthError as error:
            if error.error == "authorization_pending":
                pass
            elif error.error == "slow_down":
                interval += 5
            elif error.error == "access_denied":
                raise SessionError("the sign-in was denied") from None
            elif error.error == "expired_token":
                raise SessionError("the code expired before it was approved; run `protomesh login` again") from None
            else:
                raise
        if time.monotonic() + interval > deadline:
            raise SessionError("the code expired before it was approved; run `protomesh login` again")


def _subject(answer: dict[str, Any]) -> str:
    """Who signed in, from the ID token's email (decoded only to show it; the gateway verifies tokens)."""
    import base64

    token = str(answer.get("id_token") or "")
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("email") or claims.get("sub") or "")
    except (IndexError, ValueError):
        return ""


# --------------------------------------------------------------------------------------------------
# gRPC commands through the gateway
# --------------------------------------------------------------------------------------------------

class Caller:
    """Calls identity methods through the gateway with the session's bearer token."""

    def __init__(self, channel: grpc.Channel, state_dir: Path) -> None:
        self.channel = channel
        self.state_dir = state_dir

    def call(self, stub_method: Callable[..., Any], request: Message) -> Any:
        """One unary call with the token; errors propagate as grpc.RpcError."""
        token = identity_session.access_token(self.state_dir)
        return stub_method(request, timeout=CALL_TIMEOUT_SECONDS,
                           metadata=(("authorization", f"Bearer {token}"),))


def _grpc_command(action: Callable[[Caller, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        gateway = args.gateway or mesh_state(args.state_dir).get("gateway")
        if not gateway:
            print(f"protomesh {args.command}: no mesh is running from {args.state_dir}; start one with scripts/up "
                  "or pass --gateway", file=sys.stderr)
            return 1
        try:
            with grpc.insecure_channel(gateway) as channel:
                return action(Caller(channel, args.state_dir), args)
        except SessionError as exc:
            print(f"protomesh {args.command}: {exc}", file=sys.stderr)
            return 1
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            hints = {grpc.StatusCode.UNAUTHENTICATED: " (run `protomesh login`)",
                     grpc.StatusCode.PERMISSION_DENIED: " (the session's user may not do this)"}
            hint = hints.get(code, "") if code else ""
            print(f"protomesh {args.command}: {code.name if code else 'error'}: {details}{hint}", file=sys.stderr)
            return 1
    return run


def _time(value: timestamp_pb2.Timestamp, present: bool = True) -> str:
    if not present or not (value.seconds or value.nanos):
        return "-"
    return datetime.fromtimestamp(value.seconds, UTC).strftime("%Y-%m-%d %H:%M")


def _duration(text: str) -> duration_pb2.Duration:
    match = _DURATION.match(text.strip())
    if not match:
        raise SystemExit(f"{text!r}: give a duration like 30s, 15m, 12h or 90d")
    return duration_pb2.Duration(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _table(rows: Sequence[Sequence[str]]) -> None:
    if not rows:
        print("(none)")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _json_line(message: Message) -> str:
    return json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True))


def _all_users(caller: Caller, email_contains: str = "") -> Iterator[Any]:
    from protomesh.identity.v1 import user_service_pb2 as pb
    from protomesh.identity.v1 import user_service_pb2_grpc as rpc

    stub = rpc.UserServiceStub(caller.channel)
    token = ""
    while True:
        page = caller.call(stub.ListUsers, pb.ListUsersRequest(page_size=200, page_token=token,
                                                               email_contains=email_contains))
        yield from page.users
        token = page.page_info.next_page_token
        if not token:
            return


def _users_list(caller: Caller, args: argparse.Namespace) -> int:
    from protomesh.identity.v1 import identity_pb2

    users = list(_all_users(caller, args.email_contains))
    if args.json:
        for user in users:
            print(_json_line(user))
        return 0
    rows = [("EMAIL", "NAME", "STATUS", "ADMIN", "CREATED", "ID")]
    rows += [(u.email, u.display_name, identity_pb2.UserStatus.Name(u.status).removeprefix("USER_STATUS_").lower(),
              "yes" if u.platform_admin else "", _time(u.create_time), u.user_id) for u in users]
    _table(rows)
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password (12 characters or more): ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("the passwords differ; nothing was created")
    return first


def _users_create(caller: Caller, args: argparse.Namespace) -> int:
    from protomesh.identity.v1 import user_service_pb2 as pb
    from protomesh.identity.v1 import user_service_pb2_grpc as rpc

    request = pb.CreateUserRequest(email=args.email, display_name=args.name,
                                   password=_read_password(args.password_stdin), platform_admin=args.platform_admin)
    user = caller.call(rpc.UserServiceStub(caller.channel).CreateUser, request).user
    print(f"created {user.email} ({user.user_id})")
    return 0


def _user_id(caller: Caller, user: str) -> str:
    """An id as given, or the id of the user with exactly this email."""
    if "@" not in user:
        return user
    wanted = user.strip().lower()
    for found in _all_users(caller, wanted):
        if found.email == wanted:
            return str(found.user_id)
    raise SystemExit(f"no user with email {user!r}")


def _users_disable(caller: Caller, args: argparse.Namespace) -> int:
    from protomesh.identity.v1 import user_service_pb2 as pb
    from protomesh.identity.v1 import user_service_pb2_grpc as rpc

    user = caller.call(rpc.UserServiceStub(caller.channel).DisableUser,
                       pb.DisableUserRequest(user_id=_user_id(caller, args.user))).user
    print(f"disabled {user.email}: refresh tokens are refused now, access tokens run out within their lifetime")
    return 0


def _users_enable(caller: Caller, args: argparse.Namespace) -> int:
    from protomesh.identity.v1 import user_service_pb2 as pb
    from protomesh.identity.v1 import user_service_pb2_grpc as rpc

    user = caller.call(rpc.UserServiceStub(caller.channel).EnableUser,
                       pb.EnableUserRequest(user_id=_user_id(caller, args.user))).user
    print(f"enabled {user.email}")
    return 0


def _apikeys_create(caller: Caller, args: argparse.Namespace) -> int:
    from protomesh.identity.v1 import api_key_service_pb2 as pb
    from protomesh.identity.v1 import api_key_service_pb2_grpc as rpc

    request = pb.CreateApiKeyRequest(organization_id=args.org, name=args.name, scopes=args.scopes or ["mesh"],
                                     rate_limit_per_second=args.rate, rate_limit_burst=args.burst)
    if args.ttl:
        request.ttl.CopyFrom(_duration(args.ttl))
    answer = caller.call(rpc.ApiKeyServiceStub(caller.channel).CreateApiKey, request)
    key = answer.api_key
    print(f"created API key {key.name!r} ({key.api_key_id}), scopes {' '.join(key.scopes)}, "
          f"expires {_time(key.expire_time, key.HasField('expire_time'))}", file=sys.stderr)
    print("the key (shown this once; keep it now):", file=sys.stderr)
    print(answer.secret, flush=True)  # alone on stdout, so `KEY=$(protomesh apikeys create ...)` works
    print('use it as: curl -H "Authorization: ApiKey $KEY" ... (or -H "x-api-key: $KEY")', file=sys.stderr)
    return 0


def _apikeys_list(caller: Caller, args: argparse.Namespace) -> int:
    from protomesh.identity.v1 import api_key_service_pb2 as pb
    from protomesh.identity.v1 import api_key_service_pb2_grpc as rpc
    from protomesh.identity.v1 import identity_pb2

    stub = rpc.ApiKeyServiceStub(caller.channel)
    keys, token = [], ""
    while True:
        page = caller.call(stub.ListApiKeys, pb.ListApiKeysRequest(organization_id=args.org, page_size=200,
                                                                   page_token=token))
        keys.extend(page.api_keys)
        token = page.page_info.next_page_token
        if not token:
            break
    if args.json:
        for key in keys:
            print(_json_line(key))
        return 0
    rows = [("PREFIX", "NAME", "SCOPES", "STATUS", "CREATED", "EXPIRES", "LAST USED", "ID")]
    rows += [(k.prefix, k.name, " ".join(k.scopes),
              identity_pb2.ApiKeyStatus.Name(k.status).removeprefix("API_KEY_STATUS_").lower(),
              _time(k.create_time), _time(k.expire_time, k.HasField("expire_time")),
              _time(k.last_used_time, k.HasField("last_used_time")), k.api_key_id) for k in keys]
    _table(rows)
    return 0


def _apikeys_revoke(caller: Caller, args: argparse.Namespace) -> int:
    from protomesh.identity.v1 import api_key_service_pb2 as pb
    from protomesh.identity.v1 import api_key_service_pb2_grpc as rpc

    key = caller.call(rpc.ApiKeyServiceStub(caller.channel).RevokeApiKey,
                      pb.RevokeApiKeyRequest(api_key_id=args.api_key_id)).api_key
    print(f"revoked {key.name!r} ({key.prefix})")
    return 0


def _apikeys_rotate(caller: Caller, args: argparse.Namespace) -> int:
    from protomesh.identity.v1 import api_key_service_pb2 as pb
    from protomesh.identity.v1 import api_key_service_pb2_grpc as rpc

    answer = caller.call(rpc.ApiKeyServiceStub(caller.channel).RotateApiKey,
                         pb.RotateApiKeyRequest(api_key_id=args.api_key_id, overlap=_duration(args.overlap)))
    previous = answer.previous
    print(f"rotated {answer.api_key.name!r}: new key {answer.api_key.api_key_id}; the old one "
          f"({previous.prefix}) is accepted until {_time(previous.expire_time, previous.HasField('expire_time'))}",
          file=sys.stderr)
    print("the new key (shown this once; keep it now):", file=sys.stderr)
    print(answer.secret, flush=True)
    return 0


def _signing_rows(keys: list[Any]) -> None:
    from protomesh.identity.v1 import identity_pb2

    rows = [("KID", "ALG", "STATE", "CREATED", "SIGNS FROM", "RETIRED", "LEAVES JWKS")]
    rows += [(k.kid, k.alg, identity_pb2.SigningKeyState.Name(k.state).removeprefix("SIGNING_KEY_STATE_").lower(),
              _time(k.create_time), _time(k.activate_time, k.HasField("activate_time")),
              _time(k.retire_time, k.HasField("retire_time")), _time(k.expire_time, k.HasField("expire_time")))
             for k in keys]
    _table(rows)


def _keys_list(caller: Caller, args: argparse.Namespace) -> int:
    from protomesh.identity.v1 import signing_key_service_pb2 as pb
    from protomesh.identity.v1 import signing_key_service_pb2_grpc as rpc

    answer = caller.call(rpc.SigningKeyServiceStub(caller.channel).ListSigningKeys, pb.ListSigningKeysRequest())
    _signing_rows(list(answer.signing_keys))
    return 0


def _keys_rotate(caller: Caller, args: argparse.Namespace) -> int:
    import uuid

    from protomesh.identity.v1 import signing_key_service_pb2 as pb
    from protomesh.identity.v1 import signing_key_service_pb2_grpc as rpc

    # A request id makes a retried rotation (the gateway's, or the user's) one rotation, not two.
    answer = caller.call(rpc.SigningKeyServiceStub(caller.channel).RotateSigningKey,
                         pb.RotateSigningKeyRequest(request_id=str(uuid.uuid4())))
    keys = [answer.current, answer.next] + ([answer.retiring] if answer.HasField("retiring") else [])
    _signing_rows(keys)
    print(f"\nnow signing with {answer.current.kid}; {answer.next.kid} is published and signs at the next rotation")
    return 0
