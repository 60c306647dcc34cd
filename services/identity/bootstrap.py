"""First start of a mesh: the organization `local`, its admin, the CLI client and a session for the CLI.

On a database with no organization yet, one replica (under a PostgreSQL advisory lock, so replicas
starting together do this once) creates, in one transaction:

- the organization `local`;
- the admin `admin@protomesh.local`: owner of `local`, platform admin, with the password in
  PROTOMESH_ADMIN_PASSWORD or a generated one;
- the public client `protomesh-cli` (device code, authorization code with PKCE, refresh token);
- a refresh token of the admin for `protomesh-cli` (a new family, scope `openid profile email
  offline_access mesh`).

Then, with IDENTITY_BOOTSTRAP_FILE set, it writes `{"issuer", "client_id", "refresh_token",
"admin_email", "admin_password"?}` there (mode 0600; the password only when generated): the supervisor
prints a generated password once and moves the refresh token into the CLI session (docs/identity.md).
Nothing secret is logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import uuid
from pathlib import Path
from typing import Any

from authlib.common.security import generate_token

from services.identity.oauth.clients import ClientStore
from services.identity.oauth.config import OAuthConfig
from services.identity.oauth.store import digest
from services.identity.passwords import hash_password
from services.identity.store import OrganizationStore, UserStore

logger = logging.getLogger(__name__)

ORGANIZATION = "local"
ORGANIZATION_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
"""The bootstrap organization's id, fixed: the other services' tenancy migrations move the rows they had
before organizations existed to it, and their database roles cannot read the identity schema to look it up."""
ADMIN_EMAIL = "admin@protomesh.local"
CLI_CLIENT_ID = "protomesh-cli"
CLI_GRANTS = ("urn:ietf:params:oauth:grant-type:device_code", "authorization_code", "refresh_token")
CLI_REDIRECT_URIS = ("http://127.0.0.1:8400/callback",)
"""The CLI's loopback redirect for the authorization code flow (RFC 8252); `protomesh login` uses the device flow."""
CLI_SCOPES = ("openid", "profile", "email", "offline_access", "mesh")
SESSION_SCOPE = "openid profile email offline_access mesh"
PASSWORD_ENV = "PROTOMESH_ADMIN_PASSWORD"  # pragma: allowlist secret - the name of a variable or Secret, not a value  # noqa: S105 (same reason)
_LOCK = "protomesh.identity.bootstrap"


async def bootstrap(pool: Any, users: UserStore, organizations: OrganizationStore, clients: ClientStore,
                    config: OAuthConfig, bootstrap_file: Path | None, env: dict[str, str] | None = None) -> bool:
    """Create the first organization, admin, CLI client and CLI session if there is no organization.

    Returns True when this call did the bootstrap (and wrote the file), False when it was done before.
    """
    env = dict(os.environ) if env is None else env
    given = env.get(PASSWORD_ENV, "")
    password = given or secrets.token_urlsafe(18)
    refresh = generate_token(48)
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LOCK,))
        cur = await conn.execute("SELECT 1 FROM organizations LIMIT 1")
        if await cur.fetchone() is not None:
            return False
        # Through the users' and organizations' stores, in this transaction: their events go out too.
        admin = await users.create(email=ADMIN_EMAIL, display_name="Mesh admin",
                                   password_hash=await hash_password(password), platform_admin=True,
                                   created_by="bootstrap", conn=conn)
        organization, _ = await organizations.create(name=ORGANIZATION, display_name="Local mesh",
                                                     created_by="bootstrap", owner=admin, conn=conn,
                                                     organization_id=ORGANIZATION_ID)
        organization_id, user_id = organization.id, admin.id
        await clients.register(name="protomesh CLI", organization_id=str(organization_id), grant_types=CLI_GRANTS,
                               redirect_uris=CLI_REDIRECT_URIS, scopes=CLI_SCOPES, roles=(), public=True,
                               created_by="bootstrap", client_id=CLI_CLIENT_ID, conn=conn)
        await conn.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, family_created_at, client_id, user_id, organization_id,"
            " scope, auth_time, expires_at) VALUES (%s, %s, now(), %s, %s, %s, %s, now(),"
            " now() + make_interval(secs => %s))",
            (digest(refresh), uuid.uuid4(), CLI_CLIENT_ID, user_id, organization_id, SESSION_SCOPE,
             config.refresh_token_ttl))
    logger.info("bootstrapped the mesh's identity", extra={
        "organization": ORGANIZATION, "admin_email": ADMIN_EMAIL, "client_id": CLI_CLIENT_ID,
        # pragma: allowlist nextline secret - says where the password came from, not what it is
        "password": "from " + PASSWORD_ENV if given else "generated (in the bootstrap file)"})
    if bootstrap_file is not None:
        document: dict[str, Any] = {"issuer": config.issuer_base, "client_id": CLI_CLIENT_ID,
                                    "refresh_token": refresh, "admin_email": ADMIN_EMAIL}
        if not given:
            document["admin_password"] = password
        write_private(bootstrap_file, json.dumps(document, indent=2) + "\n")
    return True


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600 from its creation), replacing any previous one atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
