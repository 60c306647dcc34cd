"""The docs page at /docs: Swagger UI over the OpenAPI documents the gateway serves, with try-it-out.

Envoy answers every file of it itself, like the documents (chassis.tooling.apidocs.served): the page, its
start-up script written here from the catalog, and Swagger UI's dist files from the npm package that
scripts/install_docs_assets installs (pinned in assets/package-lock.json). Nothing is fetched from
elsewhere, and the page's Content-Security-Policy lets the browser load or call nothing but the gateway.
Try-it-out calls the gateway's own routes ("servers": "/" in the document), with the bearer token or
API key a reader enters under "Authorize" (the document's security schemes, .security).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chassis.paths import REPO_ROOT
from chassis.tooling.apidocs.served import MAX_DOCUMENT_BYTES, ServedDocument
from chassis.tooling.catalog import Catalog

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"

PINNED_PACKAGE = Path(__file__).resolve().parent / "assets" / "package.json"
"""The npm package and version the page is written for (scripts/install_docs_assets installs it)."""
PACKAGE = "swagger-ui-dist"
INSTALLED_PACKAGE = REPO_ROOT / ".docs-assets" / "node_modules" / PACKAGE

ASSET_TYPES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
"""The package's files the page loads, and their content types (Envoy's direct responses name none)."""

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    # Swagger UI (React) sets style attributes on elements it renders.
    "style-src 'self' 'unsafe-inline'",
    # Its stylesheet draws a few icons from data: URIs.
    "img-src 'self' data:",
    # Try-it-out and the documents: the gateway only.
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))

_PAGE_HEADERS = (("content-security-policy", CONTENT_SECURITY_POLICY), ("x-content-type-options", "nosniff"),
                 ("referrer-policy", "no-referrer"))
# The page and its start-up script change with the contracts; the package's files only with the pin.
_FRESH = (("cache-control", "no-cache"),)
_KEPT = (("cache-control", "public, max-age=3600"),)

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>protomesh API</title>
  <link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
  <noscript>This page needs JavaScript. The API documents it shows are at
    <a href="/openapi.json">/openapi.json</a> and <a href="/openapi.yaml">/openapi.yaml</a>.</noscript>
  <div id="swagger-ui"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script src="{assets}/swagger-ui-standalone-preset.js"></script>
  <script src="{docs}/init.js"></script>
</body>
</html>
"""

_INIT = """// Written by chassis.tooling.apidocs.docs_page from the mesh's catalog; served by the gateway.
window.addEventListener("load", function () {{
  var options = {options};
  options.presets = [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset];
  options.plugins = [SwaggerUIBundle.plugins.DownloadUrl];
  window.ui = SwaggerUIBundle(options);
}});
"""

_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>protomesh API: docs page not installed</title></head>
<body><p>The docs page's assets ({package} {version}) are not installed in this checkout: run
<code>scripts/install_docs_assets</code> (scripts/up and scripts/test do it) and start the mesh again.
The API documents are at <a href="/openapi.json">/openapi.json</a>.</p></body></html>
"""


def pinned_version() -> str:
    """The version of the package the page is written for."""
    return str(json.loads(PINNED_PACKAGE.read_text())["dependencies"][PACKAGE])


def installed_version(package_dir: Path = INSTALLED_PACKAGE) -> str | None:
    """The version installed there, None when it is not (or is incomplete)."""
    try:
        version = json.loads((package_dir / "package.json").read_text()).get("version")
    except (OSError, ValueError):
        return None
    if not all((package_dir / name).is_file() for name in ASSET_TYPES):
        return None
    return str(version) if version else None


def swagger_options(catalog: Catalog) -> dict[str, Any]:
    """Swagger UI's options: the whole mesh's document first, each service's in the top bar's list."""
    urls = [{"url": "/openapi.json", "name": "whole mesh"},
            *({"url": f"/openapi/{name}.json", "name": name} for name in catalog.names)]
    return {
        "urls": urls,
        "urls.primaryName": urls[0]["name"],
        "dom_id": "#swagger-ui",
        "layout": "StandaloneLayout",
        "deepLinking": True,
        "filter": True,
        "displayRequestDuration": True,
        "showExtensions": True,
        # By default Swagger UI sends the document to an online validator for a badge: nothing leaves the mesh.
        "validatorUrl": None,
        # A token kept in localStorage would outlive the tab and be readable by any script of this origin.
        "persistAuthorization": False,
        # ?url= / ?configUrl= in the address would make the page load (and send credentials to) another API.
        "queryConfigEnabled": False,
    }


def write_docs_page(catalog: Catalog, out_dir: Path, package_dir: Path = INSTALLED_PACKAGE) -> list[ServedDocument]:
    """Write the page and its start-up script into out_dir; the gateway paths of every file the page needs.

    Without the installed package (a checkout whose set-up has not run since) /docs is a 503 page saying how
    to install it: the mesh still starts, and the API documents are served as before.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / "docs.html"
    version = pinned_version()
    if installed_version(package_dir) != version:
        page.write_text(_MISSING.format(package=PACKAGE, version=version))
        return [ServedDocument(DOCS_PATH, page.resolve(), "text/html; charset=utf-8", _PAGE_HEADERS + _FRESH,
                               status=503)]
    # Envoy refuses its whole configuration over one direct response larger than its limit: name the file.
    too_large = [name for name in ASSET_TYPES if (package_dir / name).stat().st_size > MAX_DOCUMENT_BYTES]
    if too_large:
        raise ValueError(f"{PACKAGE} {version}: {too_large} larger than the gateway's {MAX_DOCUMENT_BYTES} bytes "
                         "per served file (chassis.tooling.apidocs.served.MAX_DOCUMENT_BYTES)")
    page.write_text(_PAGE.format(assets=ASSETS_PATH, docs=DOCS_PATH))
    init = out_dir / "docs-init.js"
    init.write_text(_INIT.format(options=json.dumps(swagger_options(catalog), indent=2)))
    return [
        ServedDocument(DOCS_PATH, page.resolve(), "text/html; charset=utf-8", _PAGE_HEADERS + _FRESH),
        ServedDocument(f"{DOCS_PATH}/init.js", init.resolve(), "text/javascript; charset=utf-8",
                       _PAGE_HEADERS + _FRESH),
        *(ServedDocument(f"{ASSETS_PATH}/{name}", (package_dir / name).resolve(), content_type,
                         _PAGE_HEADERS + _KEPT)
          for name, content_type in ASSET_TYPES.items()),
    ]
