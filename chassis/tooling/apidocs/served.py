"""The API documents the gateway serves: written from the contracts when Envoy's config is built.

Envoy answers them itself (direct responses from files), so they need no service and are exactly the
documents `protomesh openapi` / `protomesh asyncapi` print for the same contracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chassis.tooling.apidocs.asyncapi import build_asyncapi
from chassis.tooling.apidocs.contracts import load_contracts
from chassis.tooling.apidocs.openapi import build_openapi
from chassis.tooling.apidocs.render import dump
from chassis.tooling.catalog import Catalog

MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
"""Envoy's limit for a direct response body (its default is 4 KiB; the whole mesh's OpenAPI is ~400 KB)."""


@dataclass(frozen=True)
class ServedDocument:
    """One document at one gateway path."""

    path: str
    file: Path
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()
    """Further response headers (the docs page's security policy and caching, chassis.tooling.apidocs.docs_page)."""
    status: int = 200


def write_api_documents(catalog: Catalog, out_dir: Path) -> list[ServedDocument]:
    """Write the whole mesh's and each service's OpenAPI (JSON and YAML) and the AsyncAPI into out_dir."""
    contracts = load_contracts(catalog.descriptor_set, catalog)
    whole = build_openapi(contracts)
    documents: dict[str, tuple[str, str]] = {
        "/openapi.json": (dump(whole, "json"), "application/json"),
        "/openapi.yaml": (dump(whole, "yaml"), "application/yaml"),
        "/asyncapi.json": (dump(build_asyncapi(contracts), "json"), "application/json"),
    }
    for name in catalog.names:
        one = build_openapi(contracts, name)
        documents[f"/openapi/{name}.json"] = (dump(one, "json"), "application/json")
        documents[f"/openapi/{name}.yaml"] = (dump(one, "yaml"), "application/yaml")
    out_dir.mkdir(parents=True, exist_ok=True)
    served = []
    for path, (text, content_type) in documents.items():
        file = out_dir / path.strip("/").replace("/", "-")
        file.write_text(text)
        served.append(ServedDocument(path, file.resolve(), content_type))
    return served
