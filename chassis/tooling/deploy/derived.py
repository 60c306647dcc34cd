"""Settings of a service that the contracts already imply, so no deploy.toml states them (and none can disagree).

- A deployable that serves `http_served` contracts (the identity service's OAuth endpoints and its
  ext_authz check) runs an HTTP listener beside gRPC: in compose and Kubernetes it listens on
  `gateway_auth.COMPOSE_HTTP_PORT`, the port Envoy's generated `<deployable>_http` cluster dials, so
  the two come from one constant.
- The identity service signs tokens with `iss` = IDENTITY_ISSUER, and Envoy's jwt_authn accepts only
  that issuer: both are `gateway_auth.compose_issuer()` (PROTOMESH_ISSUER when `protomesh gen` runs,
  else the address compose publishes the gateway on). It is not overridable in compose: a value that
  differed from Envoy's would make every token a 401. To serve another public URL, set
  PROTOMESH_ISSUER and run `protomesh gen` (Envoy's config and this setting change together).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from chassis.tooling.catalog import Catalog
from chassis.tooling.deploy.declaration import EnvVar, ServiceDeploy
from chassis.tooling.gateway_auth import COMPOSE_HTTP_PORT, IDENTITY_DEPLOYABLE, compose_issuer

ISSUER_ENV = "IDENTITY_ISSUER"


def http_deployables(catalog: Catalog) -> frozenset[str]:
    """The services whose replicas run an HTTP listener: the deployables `http_served` contracts name."""
    return frozenset(served.deployable for served in catalog.http_served)


def derive(catalog: Catalog, deploys: Mapping[str, ServiceDeploy]) -> dict[str, ServiceDeploy]:
    """Each declaration with what the contracts imply for its service filled in."""
    listeners = http_deployables(catalog)
    unknown = sorted(listeners - set(catalog.names))
    if unknown:
        raise ValueError(f"http_served contracts name deployables with no contract of their own: {unknown}")
    out: dict[str, ServiceDeploy] = {}
    for name, deploy in deploys.items():
        env = (EnvVar(ISSUER_ENV, compose_issuer()),) if name == IDENTITY_DEPLOYABLE else ()
        declared = {e.name for e in deploy.env} | {s.name for s in deploy.secrets}
        clash = sorted(declared & {e.name for e in env})
        if clash:
            raise ValueError(f"services/{name}/deploy.toml declares {', '.join(clash)}, which the generator "
                             "derives from the contracts; remove it there")
        out[name] = dataclasses.replace(deploy, http_port=COMPOSE_HTTP_PORT if name in listeners else 0,
                                        derived_env=env)
    return out
