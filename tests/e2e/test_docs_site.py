"""The documentation site, built as `make docs-build` builds it (--strict), seen in a real browser.

The home page, a connector's page and the lifecycle page are opened in headless Chromium (Debian's
package; `make chromium`, part of `make test`, installs it when missing): every Mermaid diagram on
them must have been drawn as an SVG, no request may fail or leave the machine (Mermaid's script
comes from the built site, not a CDN), and no script may fail. Screenshots of the three go to
DOCS_SHOTS (default /tmp/docs-shots/).
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doc_blocks import ROOT
from tests.docs_browser import Visit, chromium_path, visit_pages

PAGES = {
    "home": "",
    "connector": "connectors/athena_query/",
    "lifecycle": "task-lifecycle/",
}
SHOTS = Path(os.environ.get("DOCS_SHOTS", "/tmp/docs-shots"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make test` has just built it (DOCS_SITE, its SITE_DIR); run alone, the test builds it."""
    given = os.environ.get("DOCS_SITE")
    if given and (Path(given) / "index.html").is_file():
        return Path(given)
    built = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        ["make", "-s", "docs-build", f"SITE_DIR={built}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return built


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def visits(served: str) -> dict[str, Visit]:
    if chromium_path() is None:
        pytest.skip("chromium is not installed and `make chromium` could not install it (apt-get needs root)")
    seen = visit_pages({served + path: SHOTS / f"{name}.png" for name, path in PAGES.items()})
    return dict(zip(PAGES, seen, strict=True))


def test_the_build_fetched_nothing_from_a_cdn(site: Path) -> None:
    page = (site / "index.html").read_text()
    assert "javascripts/mermaid.min.js" in page
    assert "fonts.googleapis.com" not in page and "unpkg.com" not in page
    assert (site / "javascripts" / "mermaid.min.js").stat().st_size > 1_000_000


@pytest.mark.parametrize("name", PAGES)
def test_each_page_draws_its_diagrams_and_loads_everything(visits: dict[str, Visit], name: str) -> None:
    visit = visits[name]
    assert visit.diagrams >= 1, f"{visit.url}: no diagram on the page"
    assert visit.rendered == ["svg"] * visit.diagrams, f"{visit.url}: diagrams drawn: {visit.rendered}"
    assert not visit.failures, f"{visit.url}: " + "; ".join(visit.failures)
    assert any(address.endswith("javascripts/mermaid.min.js") for address in visit.requests)
    assert visit.screenshot is not None and visit.screenshot.stat().st_size > 10_000
