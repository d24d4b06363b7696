"""Browser tests: Playwright's Python API driving Debian's Chromium (tests/ensure_browser.sh installs it;
``make test`` runs that first) against the embedded platform.

Every page a test opens runs in a context that lets requests reach loopback only: a request to any other
host is aborted and fails the test (no third-party assets, and no traffic leaves the machine). A page
error, or a script or style the page's own Content-Security-Policy refused, fails the test too: a strict
CSP that blocks our own code is a broken page, not a secure one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, Route, async_playwright

from .support import ARTIFACTS, artifact_name

CHROMIUM = os.environ.get("BILLING_CHROMIUM", "/usr/bin/chromium")
# Headless, and quiet: without the background-networking flags Chromium phones home at start (updates,
# sync, field trials), which this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]
PHONE = {"viewport": {"width": 375, "height": 667}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (or is a local scheme such as data: or about:)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return True
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class PageProblems:
    """What went wrong in a test's pages, checked when the test ends."""

    offsite: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: uncaught {error}"))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        text = message.text
        if message.type == "error" and "Content Security Policy" in text:
            self.errors.append(f"CSP refused: {text}")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser` (tests/ensure_browser.sh)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


NewPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def new_page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[NewPage]:
    """``await new_page(phone=False, **context_options)``: a page in a fresh context (own cookies)."""
    problems = PageProblems()
    contexts: list[BrowserContext] = []

    async def guard(route: Route) -> None:
        if is_loopback_url(route.request.url):
            await route.continue_()
        else:
            problems.offsite.append(route.request.url)
            await route.abort("blockedbyclient")

    async def make(*, phone: bool = False, **options: object) -> Page:
        settings: dict[str, object] = {**(PHONE if phone else {"viewport": {"width": 1280, "height": 800}})}
        settings.update(options)
        context = await browser.new_context(**settings)  # type: ignore[arg-type]
        context.set_default_timeout(15_000)
        await context.route("**/*", guard)
        context.on("page", problems.watch)  # popups and new tabs too
        contexts.append(context)
        page = await context.new_page()
        return page

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for n, context in enumerate(contexts):
        if failed:  # what the pages showed when the test failed, kept with the other artifacts
            for m, page in enumerate(context.pages):
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                path = ARTIFACTS / f"{artifact_name(request.node.name)}-failed-{n}-{m}.png"
                with contextlib.suppress(Exception):  # a page that is gone has nothing to show
                    await page.screenshot(path=str(path), full_page=True)
        await context.close()
    assert not problems.offsite, f"pages requested hosts other than loopback: {problems.offsite}"
    assert not problems.errors, "page errors: " + "; ".join(problems.errors)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    # Lets ``new_page`` know at teardown whether the test failed (for the failure screenshots).
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def platform(embedded_platform):  # type: ignore[no-untyped-def]
    """The browser tests run on the embedded mode only (what `make run` starts)."""
    return embedded_platform
