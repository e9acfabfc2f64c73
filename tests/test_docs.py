"""The documentation site: ``mkdocs build --strict`` of docs/, its generated references,
and the built pages in a real headless Chromium (Debian's ``/usr/bin/chromium``, driven
by Playwright) served over HTTP on 127.0.0.1.

The build refuses a broken link, a missing anchor and a page left out of the navigation
(``validation`` in mkdocs.yml turns each into a warning, and strict mode fails on one):
the tests break a copy of the site each way and see the build fail.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
import yaml
from playwright.sync_api import ConsoleMessage, Page, Request, sync_playwright
from support.docs import DOCS
from support.kit import ROOT

from oauth2_sync.cli import cli

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCHEMAS = ROOT / "oauth2_sync" / "schemas"


def build(source: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of the project at ``source`` into ``site``."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=source, capture_output=True, text=True, timeout=300, check=False,
        env={"PATH": str(Path(sys.executable).parent), "NO_MKDOCS_2_WARNING": "1",
             "HOME": str(site.parent)},
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs") / "site"
    built = build(ROOT, folder)
    assert built.returncode == 0, built.stderr
    return folder


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The site's sources (mkdocs.yml, docs/, the package the hooks read) in a folder
    of their own, to break."""
    shutil.copy(ROOT / "mkdocs.yml", tmp_path)
    shutil.copytree(DOCS, tmp_path / "docs")
    (tmp_path / "oauth2_sync").symlink_to(ROOT / "oauth2_sync")
    return tmp_path


def test_the_command_reference_lists_every_command(site: Path) -> None:
    html = (site / "reference" / "commands" / "index.html").read_text()
    names = list(cli.commands)
    assert len(names) >= 10
    for name in names:
        assert f"oauth2-sync {name}" in html, name
    registry = cli.commands["registry"]
    assert isinstance(registry, click.Group)
    for option in registry.commands["serve"].params:
        assert isinstance(option, click.Option | click.Argument)
        assert option.opts[0] in html, option.opts


def test_the_schema_references_list_every_field(site: Path) -> None:
    clients = json.loads((SCHEMAS / "clients.schema.json").read_text())
    html = (site / "reference" / "client-files" / "index.html").read_text()
    for field in clients["$defs"]["client"]["properties"]:
        assert f"<code>clients[].{field}" in html, field
    settings = json.loads((SCHEMAS / "settings.schema.json").read_text())
    html = (site / "reference" / "settings" / "index.html").read_text()
    for field in settings["properties"]:
        assert f"<code>{field}" in html, field


def test_the_registry_api_reference_lists_every_operation(site: Path) -> None:
    document = yaml.safe_load((SCHEMAS / "registry-api.openapi.yaml").read_text())
    html = (site / "reference" / "registry-api" / "index.html").read_text()
    operations = [(m.upper(), p) for p, item in document["paths"].items() for m in item
                  if m in ("get", "post", "put", "patch", "delete")]
    assert len(operations) >= 8
    for method, path in operations:
        assert f"<code>{method} {path}</code>" in html, (method, path)
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name.lower()}"' in html, name


def test_a_broken_link_fails_the_build(project_copy: Path) -> None:
    page = project_copy / "docs" / "reference" / "exit-codes.md"
    page.write_text(page.read_text() + "\nSee [nowhere](no-such-page.md).\n")
    built = build(project_copy, project_copy / "site")
    assert built.returncode == 1
    assert ("Doc file 'reference/exit-codes.md' contains a link 'no-such-page.md', but the "
            "target 'reference/no-such-page.md' is not found among documentation files."
            ) in built.stderr


def test_a_missing_anchor_fails_the_build(project_copy: Path) -> None:
    page = project_copy / "docs" / "reference" / "exit-codes.md"
    page.write_text(page.read_text() + "\nSee [there](settings.md#no-such-heading).\n")
    built = build(project_copy, project_copy / "site")
    assert built.returncode == 1
    assert ("Doc file 'reference/exit-codes.md' contains a link 'settings.md#no-such-heading', "
            "but the doc 'reference/settings.md' does not contain an anchor "
            "'#no-such-heading'.") in built.stderr


def test_an_orphan_page_fails_the_build(project_copy: Path) -> None:
    (project_copy / "docs" / "orphan.md").write_text("# Nobody links here\n")
    built = build(project_copy, project_copy / "site")
    assert built.returncode == 1
    assert ("The following pages exist in the docs directory, but are not included in the "
            '"nav" configuration:\n  - orphan.md') in built.stderr


# --- the built site in a browser -----------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # the test asserts on what the browser saw, not on the server's log


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    assert CHROMIUM.is_file(), "Debian's chromium is missing: scripts/test installs it"
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def visit(page: Page, url: str) -> tuple[list[str], list[str]]:
    """Load ``url``; the console errors and page errors it caused, and every URL the
    page requested."""
    errors: list[str] = []
    requested: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    def on_request(request: Request) -> None:
        requested.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", on_request)
    try:
        response = page.goto(url, wait_until="networkidle")
        assert response is not None and response.status == 200, url
    finally:
        page.remove_listener("console", on_console)
        page.remove_listener("request", on_request)
    return errors, requested


@pytest.mark.parametrize(
    ("path", "title", "min_code_blocks"),
    [("tutorial/", "Tutorial: from an empty repository to a merged pull request", 15),
     ("reference/commands/", "Commands", 1)],
)
def test_pages_render_in_a_browser_with_no_error(
    browser_page: Page, served: str, path: str, title: str, min_code_blocks: int
) -> None:
    errors, requested = visit(browser_page, f"{served}/{path}")
    assert errors == []
    outside = [u for u in requested if urlsplit(u).hostname != "127.0.0.1"]
    assert outside == []
    # The heading's text, then its permalink (toc permalink: true).
    assert browser_page.locator("article h1").first.inner_text().strip() == f"{title}¶"
    headings = browser_page.locator("article h2")
    assert headings.count() >= 2
    assert all(headings.nth(i).is_visible() for i in range(headings.count()))
    code = browser_page.locator("article pre > code")
    assert code.count() >= min_code_blocks
    assert code.first.is_visible() and code.first.inner_text().strip()
    # Highlighted by Pygments at build time, styled by the theme's own stylesheet.
    assert browser_page.locator("article .highlight").count() >= min_code_blocks
