"""The API document's security: the gateway's two credentials and each operation's requirement.

The gateway takes a bearer access token (RS256 JWT from the identity service, verified by Envoy's
jwt_authn) or an API key (checked through ext_authz), docs/identity.md; chassis.identity tells callers
the same. Which one an operation needs comes from its contract's access declaration
(`(protomesh.options.v1.access)`), the same value the gateway's public routes and the chassis' checks
read, so the document cannot promise less or more than the gateway enforces.
"""

from __future__ import annotations

from typing import Any

from chassis.tooling.catalog import MeshMethod

BEARER = "bearerAuth"
API_KEY = "apiKeyAuth"  # pragma: allowlist secret: the name of an OpenAPI security scheme, not a key

SECURITY_SCHEMES: dict[str, Any] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token of the identity service (`protomesh token`, or an OAuth 2.1 grant at "
                       "/oauth2/token), sent as `Authorization: Bearer <token>`.",
    },
    API_KEY: {
        "type": "apiKey",
        "in": "header",
        # The gateway takes `Authorization: ApiKey <key>` too; OpenAPI's apiKey scheme cannot say a prefix.
        "name": "x-api-key",
        "description": "An API key of an organization (`protomesh apikeys create`), limited to its scopes.",
    },
}
"""Security schemes of the gateway, as components.securitySchemes."""


def security_requirements(method: MeshMethod) -> list[dict[str, list[str]]] | None:
    """The operation's security requirement from its contract's authorization declaration.

    A public method has none (`[]`, overriding nothing: there is no document-wide default). Any other
    takes either credential; a declared permission is listed as the role the requirement names
    (OpenAPI 3.1 lets non-OAuth schemes list roles), which is also the scope an API key needs.
    """
    if method.public:
        return []
    roles = [method.permission] if method.permission else []
    return [{BEARER: roles}, {API_KEY: list(roles)}]
