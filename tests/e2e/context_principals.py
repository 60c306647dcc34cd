"""Principals other than the local admin, for the context service's access-list tests through the gateway.

The `rest` fixture calls as the bootstrap admin, a platform admin whom access lists do not stop, so
these tests register service accounts (OAuth clients with the client_credentials grant) through the
identity service and call with their tokens: each is its own principal, `client:<client_id>`, exactly
as an external service would be.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from chassis.tooling.mesh_testing import RestClient
from chassis.tooling.supervisor import Mesh

REFRESH_MARGIN_SECONDS = 30.0
"""A token with less than this left is replaced before a call (access tokens live 5 minutes)."""


@dataclass
class ServiceAccount:
    """A registered client_credentials client: its subject, and a REST client calling with its token."""

    mesh: Mesh
    client_id: str
    secret: str = field(repr=False)
    _token: str = field(default="", repr=False)
    _expires_at: float = 0.0

    @property
    def subject(self) -> str:
        """The `sub` of its tokens, what an access list names."""
        return f"client:{self.client_id}"

    def token(self) -> str:
        """An access token from the token endpoint (client_secret_basic), renewed as it nears expiry."""
        if time.monotonic() < self._expires_at - REFRESH_MARGIN_SECONDS:
            return self._token
        basic = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        request = urllib.request.Request(
            f"http://{self.mesh.gateway}/oauth2/token", method="POST",
            data=urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "mesh"}).encode(),
            headers={"authorization": f"Basic {basic}", "content-type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        self._token, self._expires_at = answer["access_token"], time.monotonic() + float(answer["expires_in"])
        return self._token

    def rest(self) -> RestClient:
        """A REST client of the gateway calling as this account."""
        return RestClient(f"http://{self.mesh.gateway}", token=self.token)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata carrying its token (overrides a channel's own bearer)."""
        return (("authorization", f"Bearer {self.token()}"),)


def service_account(mesh: Mesh, admin: RestClient, name: str, organization_id: str = "") -> ServiceAccount:
    """Register a service account (role member, scope mesh) as the admin, in the admin's organization or the
    one named (a platform admin may name any); its secret is answered this once."""
    reply = admin.post("/v1/oauth/clients", {"name": name, "grant_types": ["client_credentials"],
                                             "scopes": ["mesh"], "roles": ["ROLE_MEMBER"],
                                             "organization_id": organization_id})
    assert reply.status == 200, reply.body
    return ServiceAccount(mesh, reply.body["client"]["client_id"], reply.body["client_secret"])
