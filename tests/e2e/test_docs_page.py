"""The docs page at /docs, through a real gateway, in a real browser.

Debian's Chromium (scripts/install_test_browser), driven by Playwright, opens /docs as a reader would:
the page renders the mesh's OpenAPI from files the gateway serves (nothing from the internet: every
request the browser makes is recorded and must go to the gateway), an operation called without a
credential gets 401, and after "Authorize" with a real bearer token, or a real API key, "Try it out"
and "Execute" get the 200 answer with the agent types. A screenshot of the answered operation is
written (its path is printed) so a person can look at what the page shows.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, Request, expect, sync_playwright

from chassis.paths import REPO_ROOT
from chassis.tooling.apidocs.docs_page import ASSET_TYPES, CONTENT_SECURITY_POLICY, write_docs_page
from chassis.tooling.apidocs.security import API_KEY, BEARER
from chassis.tooling.catalog import load_catalog
from chassis.tooling.mesh_testing import RestClient, running_mesh
from chassis.tooling.supervisor import Mesh

# Playwright downloads browser builds of its own, which cannot be fetched here: Debian's is used instead.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Generous: the suite runs beside other tests on 2 cores, and Chromium renders with what is left.
STEP_TIMEOUT_MS = 30_000
# Loading Swagger UI (1.7 MB of script) and rendering the whole mesh's document (~100 operations) takes a
# few seconds on a quiet machine, up to a minute on a busy one.
RENDER_TIMEOUT_MS = 120_000
OPERATION = "/v1/agents/types"


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with running_mesh(replicas=1, only=["agent"]) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).is_file(), f"no Chromium at {CHROMIUM}: scripts/install_test_browser installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class DocsPage:
    """One browser tab on /docs, with every request it sends and every console error and refusal it logs."""

    def __init__(self, page: Page, gateway: str) -> None:
        self.page = page
        self.origin = f"http://{gateway}"
        self.requests: list[Request] = []
        self.errors: list[str] = []
        page.set_default_timeout(STEP_TIMEOUT_MS)
        page.on("request", lambda request: self.requests.append(request))
        page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, document: str | None = None) -> float:
        """Open /docs on the top bar's `document` ("agent"; default: the first, the whole mesh's); the seconds
        until it was rendered."""
        started = time.monotonic()
        self.page.goto(f"{self.origin}/docs" + (f"?urls.primaryName={document}" if document else ""))
        self.page.locator(".opblock").first.wait_for(timeout=RENDER_TIMEOUT_MS)
        return time.monotonic() - started

    def operation(self) -> Locator:
        # A deprecated operation (v1 is: docs/versions.md) is drawn as `.opblock-deprecated`, its path as
        # `.opblock-summary-path__deprecated`: found by the path alone.
        return self.page.locator(".opblock").filter(has=self.page.locator(f'[data-path="{OPERATION}"]'))

    def rendered_operations(self) -> int:
        """How many operations the page draws, top to bottom. Swagger UI draws only what is near the
        screen (a long document keeps a few screens of it in the page at a time), so the page is scrolled
        through one screen at a time and each operation's element id is collected on the way."""
        seen: set[str] = set()
        ids = "els => els.map(e => e.id)"
        self.page.evaluate("() => window.scrollTo(0, 0)")
        for _ in range(1000):  # bounded: 160 operations are a few dozen screens
            self.page.wait_for_timeout(30)
            seen.update(self.page.locator(".opblock").evaluate_all(ids))
            at_end = self.page.evaluate("() => window.scrollY + window.innerHeight >= document.body.scrollHeight - 2")
            if at_end:
                self.page.wait_for_timeout(200)
                seen.update(self.page.locator(".opblock").evaluate_all(ids))
                break
            self.page.evaluate("() => window.scrollBy(0, window.innerHeight / 2)")
        return len(seen)

    def authorize(self, scheme_input: str, credential: str) -> None:
        """Enter a credential in the Authorize dialog, in the form of the scheme whose input is given."""
        self.page.get_by_role("button", name="Authorize").first.click()
        form = self.page.locator(".auth-container").filter(has=self.page.locator(scheme_input))
        form.locator(scheme_input).fill(credential)
        form.get_by_role("button", name="Apply credentials").click()
        # The form no longer has its input once authorised: close the dialog from any of its forms.
        self.page.locator(".modal-ux").get_by_role("button", name="Close").first.click()

    def sign_out(self) -> None:
        """Remove every credential entered in the Authorize dialog."""
        self.page.get_by_role("button", name="Authorize").first.click()
        logout = self.page.locator(".modal-ux .auth-btn-wrapper button", has_text="Logout")
        for _ in range(logout.count()):
            logout.first.click()
        expect(logout).to_have_count(0)
        self.page.locator(".modal-ux").get_by_role("button", name="Close").first.click()

    def execute(self) -> tuple[int, str]:
        """Try the operation out; the status and response body the page shows."""
        operation = self.operation()
        if not operation.locator(".opblock-body").is_visible():
            operation.locator(".opblock-summary").click()
        try_it = operation.get_by_role("button", name="Try it out")
        if try_it.is_visible():
            try_it.click()
        clear = operation.get_by_role("button", name="Clear")
        if clear.is_visible():
            clear.click()
        operation.get_by_role("button", name="Execute").click()
        status = operation.locator(".live-responses-table .response .response-col_status")
        status.wait_for()
        body = operation.locator(".live-responses-table .response-col_description .microlight").first
        return int(status.inner_text().strip()), body.inner_text()

    def last_call_headers(self) -> dict[str, str]:
        """The headers of the operation's last call, as sent (all_headers: `headers` leaves some out)."""
        calls = [r for r in self.requests if urlsplit(r.url).path == OPERATION]
        assert calls, f"the page never called {OPERATION}"
        return calls[-1].all_headers()


@contextlib.contextmanager
def new_tab(browser: Browser, mesh: Mesh) -> Iterator[DocsPage]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        yield DocsPage(context.new_page(), mesh.gateway)
    finally:
        context.close()


@pytest.fixture(scope="module")
def opened(browser: Browser, mesh: Mesh) -> Iterator[DocsPage]:
    # One tab for the calls, on the agent service's document as a reader would pick it in the top bar:
    # loading the page is the slow part (on a busy machine), done once.
    with new_tab(browser, mesh) as page:
        seconds = page.open("agent")
        print(f"\n/docs rendered the agent service's document in {seconds:.1f}s")
        yield page


@pytest.fixture()
def docs(opened: DocsPage) -> DocsPage:
    opened.sign_out()
    return opened


def test_the_page_and_everything_it_loads_come_from_the_gateway(mesh: Mesh) -> None:
    client = RestClient.for_mesh(mesh, authenticated=False)
    page = client.get("/docs")
    assert page.status == 200, page.body
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    html = str(page.body)
    # No absolute URL: a CDN or any other host would need the internet (and the policy would refuse it).
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), html
    # What the browser loads by itself: scripts and linked files (the <a> links are for a reader to follow).
    loaded = re.findall(r"""(?:<script src|<link[^>]*href)="(/[^"]+)\"""", html)
    assert {path.rsplit("/", 1)[1] for path in loaded} == {*ASSET_TYPES, "init.js"}
    for path in loaded:
        reply = client.get(path)
        assert reply.status == 200, (path, reply.body)
    init = str(client.get("/docs/init.js").body)
    for document in re.findall(r'"url": "(/openapi[^"]*)"', init):
        assert client.get(document).status == 200, document
    assert '"/openapi/agent.json"' in init and '"validatorUrl": null' in init
    # GET only: the page is a document, not an API (an anonymous POST is refused before routing, 401).
    assert RestClient.for_mesh(mesh).post("/docs", {}).status == 404


def test_try_it_out_needs_a_credential_then_answers_with_a_bearer_token(docs: DocsPage, mesh: Mesh,
                                                                        tmp_path: Path) -> None:
    # The operation is shown as protected (a lock), as its contract declares a permission, and deprecated.
    expect(docs.operation().locator(".authorization__btn")).to_have_count(1)
    assert "opblock-deprecated" in (docs.operation().get_attribute("class") or "")

    status, body = docs.execute()
    assert status == 401, body
    assert "authorization" not in docs.last_call_headers()

    token = mesh.token()
    assert token
    docs.authorize("#auth-bearer-value", token)
    status, body = docs.execute()
    assert status == 200, body
    assert "calculator" in body and "prime-finder" in body
    assert docs.last_call_headers()["authorization"] == f"Bearer {token}"

    screenshot = tmp_path / "docs-page-try-it-out.png"
    docs.operation().locator(".live-responses-table").scroll_into_view_if_needed()
    docs.page.screenshot(path=str(screenshot))
    print(f"\nscreenshot of the answered operation: {screenshot}")
    assert screenshot.stat().st_size > 10_000

    elsewhere = sorted({r.url for r in docs.requests if not r.url.startswith(docs.origin + "/")})
    assert not elsewhere, f"the page reached beyond the gateway: {elsewhere}"
    # The 401 above is logged by the browser as a failed resource load; anything else (a script error,
    # a refusal by the page's Content-Security-Policy) is not expected.
    unexpected = [e for e in docs.errors if "401" not in e]
    assert not unexpected, unexpected


def test_the_whole_mesh_is_the_first_document_and_each_service_is_listed(browser: Browser, mesh: Mesh,
                                                                       tmp_path: Path) -> None:
    document = RestClient.for_mesh(mesh, authenticated=False).get("/openapi.json").body
    operations = sum(len(item) for item in document["paths"].values())
    with new_tab(browser, mesh) as docs:
        seconds = docs.open()
        assert docs.rendered_operations() == operations
        listed = docs.page.locator(".topbar select option").all_inner_texts()
        assert listed[0] == "whole mesh" and "agent" in listed and "identity" in listed, listed
        screenshot = tmp_path / "docs-page.png"
        docs.page.screenshot(path=str(screenshot))
        print(f"\n/docs rendered the whole mesh's {operations} operations in {seconds:.1f}s; screenshot: {screenshot}")
        assert not docs.errors, docs.errors


def test_try_it_out_with_an_api_key(docs: DocsPage, mesh: Mesh) -> None:
    created = RestClient.for_mesh(mesh).post("/v1/apikeys", {"name": "docs-page", "scopes": ["agents.read"]})
    assert created.status == 200, created.body
    key = created.body["secret"]
    docs.authorize("#api_key_value", key)
    status, body = docs.execute()
    assert status == 200, body
    assert "calculator" in body
    sent = docs.last_call_headers()
    assert sent["x-api-key"] == key and "authorization" not in sent


def test_the_authorize_dialog_offers_the_schemes_the_document_declares() -> None:
    # The page's dialog is built from components.securitySchemes; operations name them per contract.
    from chassis.tooling.apidocs import build_openapi, load_contracts

    document = build_openapi(load_contracts(), "agent")
    assert set(document["components"]["securitySchemes"]) == {BEARER, API_KEY}
    operations = {op["x-grpc-method"]: op for item in document["paths"].values() for op in item.values()}
    assert operations["/protomesh.agent.v1.AgentService/ListAgentTypes"]["security"] == [
        {BEARER: ["agents.read"]}, {API_KEY: ["agents.read"]}]
    assert operations["/protomesh.agent.v1.AgentService/GetHealth"]["security"] == []


def test_without_the_installed_assets_the_page_says_how_to_install_them(tmp_path: Path) -> None:
    served = write_docs_page(load_catalog(), tmp_path / "out", package_dir=tmp_path / "not-installed")
    assert [(doc.path, doc.status) for doc in served] == [("/docs", 503)]
    assert "scripts/install_docs_assets" in served[0].file.read_text()


def test_the_readme_section_runs_as_written(mesh: Mesh) -> None:
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index("\n## The docs page")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end != -1 else None]
    [bash] = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    [python] = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    env = {**os.environ, "PROTOMESH_STATE_DIR": str(mesh.state_dir)}
    for command in (["bash", "-euo", "pipefail", "-c", bash.replace("localhost:8080", mesh.gateway)],
                    [sys.executable, "-c", python.replace("127.0.0.1:8080", mesh.gateway)]):
        result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        output = result.stdout
        if command[0] == "bash":
            assert "HTTP/1.1 200" in output and "content-security-policy: default-src 'none'" in output, output
            assert '"/openapi/agent.json"' in output and '"calculator"' in output, output
        else:
            assert output.splitlines() == ["['apiKeyAuth', 'bearerAuth']",
                                           "[{'bearerAuth': ['agents.read']}, {'apiKeyAuth': ['agents.read']}]"]
