"""API documents generated from the contracts' descriptor set: OpenAPI 3.1 and AsyncAPI 3.0.

    contracts = load_contracts()            # gen/protomesh.binpb, with comments and options
    build_openapi(contracts)                # the gateway's REST routes (whole mesh)
    build_openapi(contracts, "agent")       # one service
    build_asyncapi(contracts)               # the domain events on NATS
"""

from __future__ import annotations

from chassis.tooling.apidocs.asyncapi import build_asyncapi
from chassis.tooling.apidocs.contracts import Contracts, load_contracts
from chassis.tooling.apidocs.openapi import build_openapi
from chassis.tooling.apidocs.render import dump

__all__ = ["Contracts", "build_asyncapi", "build_openapi", "dump", "load_contracts"]
