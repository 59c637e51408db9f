"""A page of the built documentation site, opened in headless Chromium over the DevTools protocol.

Chromium (Debian's ``chromium``) runs with ``--remote-debugging-port=0``; its port is read from
``DevToolsActivePort`` and one page target is driven over a WebSocket (aiohttp, already a dev
dependency). What a page did is recorded from the protocol's events: every request and where it
went, every failed load or error status, every script exception and console error. Mermaid
diagrams are drawn by Material into *closed* shadow roots, which page scripts cannot see;
``DOM.getDocument`` with ``pierce`` can, so that is how the SVGs are counted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = os.environ.get("CHROMIUM", "chromium")


def chromium_path() -> str | None:
    return shutil.which(CHROMIUM)


@dataclass
class Visit:
    url: str
    requests: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # failed loads, error statuses, script errors
    diagrams: int = 0  # mermaid blocks on the page
    rendered: list[str] = field(default_factory=list)  # per diagram: "svg", "error" or "none"
    screenshot: Path | None = None


class _Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.waiting:
                self.waiting.pop(data["id"]).set_result(data)
            elif "method" in data:
                self.events.append(data)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[ident] = future
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def seen(self, method: str) -> list[dict[str, Any]]:
        return [event["params"] for event in self.events if event["method"] == method]


@contextlib.contextmanager
def chromium() -> Iterator[str]:
    """A headless Chromium; yields its DevTools HTTP address."""
    path = chromium_path()
    assert path, "chromium is not installed (make chromium)"
    profile = tempfile.mkdtemp(prefix="docs-chromium-")
    process = subprocess.Popen(
        [
            path,
            "--headless=new",
            "--no-sandbox",  # root, in a container
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1280,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert process.poll() is None, "chromium exited at start"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port within 30 s"
            time.sleep(0.1)
        yield f"127.0.0.1:{port_file.read_text().split()[0]}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.asynccontextmanager
async def _page(devtools: str) -> AsyncIterator[_Page]:
    async with aiohttp.ClientSession() as session:
        async with session.put(f"http://{devtools}/json/new?about:blank") as answer:
            target = await answer.json()
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = _Page(ws)
            try:
                yield page
            finally:
                page.reader.cancel()
        async with session.get(f"http://{devtools}/json/close/{target['id']}"):
            pass


def _diagrams(node: dict[str, Any]) -> list[str]:
    """For each ``div.mermaid`` in the document (shadow roots pierced): "svg" when its shadow root
    holds a drawn SVG, "error" for Mermaid's error picture, "none" when nothing is drawn."""
    found = []
    attributes = node.get("attributes", [])
    classes = dict(zip(attributes[::2], attributes[1::2], strict=False)).get("class", "").split()
    if node.get("nodeName") == "DIV" and "mermaid" in classes:
        svgs = [
            child
            for root in node.get("shadowRoots", [])
            for child in root.get("children", [])
            if child.get("nodeName", "").lower() == "svg"
        ]
        if not svgs:
            found.append("none")
        else:
            svg_attributes = svgs[0].get("attributes", [])
            described = dict(zip(svg_attributes[::2], svg_attributes[1::2], strict=False))
            found.append(
                "error"
                if described.get("aria-roledescription") == "error" or not svgs[0].get("childNodeCount", 1)
                else "svg"
            )
    for child in [*node.get("children", []), *node.get("shadowRoots", [])]:
        found += _diagrams(child)
    return found


async def _visit(devtools: str, url: str, shot: Path | None, wait_seconds: float) -> Visit:
    visit = Visit(url)
    site = url.split("/", 3)[:3]
    origin = "/".join(site)
    async with _page(devtools) as page:
        for domain in ("Network", "Page", "Runtime", "Log", "DOM"):
            await page.send(f"{domain}.enable")
        await page.send("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
        await page.send("Page.navigate", url=url)
        deadline = time.monotonic() + wait_seconds
        while not page.seen("Page.loadEventFired"):
            assert time.monotonic() < deadline, f"{url}: not loaded within {wait_seconds} s"
            await asyncio.sleep(0.1)
        visit.diagrams = (
            await page.send(
                "Runtime.evaluate", expression="document.querySelectorAll('.mermaid').length", returnByValue=True
            )
        )["result"]["value"]
        while True:  # Material renders each diagram after the page loaded
            document = await page.send("DOM.getDocument", depth=-1, pierce=True)
            visit.rendered = _diagrams(document["root"])
            if visit.rendered.count("svg") >= visit.diagrams and "none" not in visit.rendered:
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.3)  # late requests (search index, icons) show in the events too
        visit.requests = [params["request"]["url"] for params in page.seen("Network.requestWillBeSent")]
        for address in visit.requests:
            if not address.startswith((origin + "/", "data:", "blob:", "about:")):
                visit.failures.append(f"a request off this machine's site: {address}")
        for params in page.seen("Network.loadingFailed"):
            visit.failures.append(f"failed to load: {params.get('errorText')} ({params.get('type')})")
        for params in page.seen("Network.responseReceived"):
            if params["response"]["status"] >= 400:
                visit.failures.append(f"{params['response']['status']}: {params['response']['url']}")
        for params in page.seen("Runtime.exceptionThrown"):
            visit.failures.append(
                f"script error: {params['exceptionDetails'].get('exception', {}).get('description') or params['exceptionDetails'].get('text')}"
            )
        for params in page.seen("Log.entryAdded"):
            if params["entry"]["level"] == "error":
                visit.failures.append(f"console error: {params['entry']['text']}")
        if shot is not None:
            await page.send(
                "Runtime.evaluate",
                expression="(document.querySelector('div.mermaid') || document.body).scrollIntoView({block: 'start'}); window.scrollBy(0, -90)",
            )
            await asyncio.sleep(0.3)
            image = await page.send("Page.captureScreenshot", format="png")
            await asyncio.to_thread(shot.write_bytes, base64.b64decode(image["data"]))
            visit.screenshot = shot
    return visit


def visit_pages(pages: dict[str, Path | None], wait_seconds: float = 30.0) -> list[Visit]:
    """Open each URL (one browser, a page target each), with a screenshot where a path is given."""
    for shot in pages.values():
        if shot is not None:
            shot.parent.mkdir(parents=True, exist_ok=True)

    async def run(devtools: str) -> list[Visit]:
        return [await _visit(devtools, url, shot, wait_seconds) for url, shot in pages.items()]

    with chromium() as devtools:
        return asyncio.run(run(devtools))
