"""The migration notes the deprecation headers link to, served by the gateway beside the API documents.

A lifecycle option's `migration_url` that is a path on the gateway naming a file of the repository's
docs/ (`/docs/versions.md`) is answered by Envoy from a copy of that file, publicly, like /openapi.json:
so the `Link: </docs/versions.md>; rel="deprecation"` of every deprecated response leads somewhere.
An absolute URL is someone else's to serve.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from chassis.paths import REPO_ROOT
from chassis.tooling.api_lifecycle import read_deprecations
from chassis.tooling.apidocs.served import ServedDocument
from chassis.tooling.catalog import Catalog

DOCS_DIR = REPO_ROOT / "docs"
MARKDOWN = "text/markdown; charset=utf-8"


def migration_notes(catalog: Catalog, out_dir: Path, docs_dir: Path = DOCS_DIR) -> list[ServedDocument]:
    """The notes the catalog's deprecations link to, copied into out_dir, one document per gateway path."""
    urls = {d.migration_url for d in read_deprecations(catalog.descriptor_set.read_bytes()).values()}
    served = []
    for url in sorted(urls):
        if not url.startswith("/docs/"):
            continue
        source = (docs_dir / url.removeprefix("/docs/")).resolve()
        if not source.is_relative_to(docs_dir.resolve()) or not source.is_file():
            raise FileNotFoundError(f"a lifecycle option links to {url}, which names no file of {docs_dir}")
        out_dir.mkdir(parents=True, exist_ok=True)
        copy = out_dir / f"notes-{source.name}"
        shutil.copyfile(source, copy)
        served.append(ServedDocument(url, copy.resolve(), MARKDOWN))
    return served
