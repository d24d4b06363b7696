"""Helpers for the browser tests: accessibility checks with axe-core, and screenshots as artifacts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.async_api import Page

HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
# Kept after the run (CI can collect them); ignored by git.
ARTIFACTS = HERE.parents[2] / "test-artifacts" / "screenshots"
BLOCKING_IMPACTS = ("serious", "critical")


def artifact_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:120]


async def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot under test-artifacts/screenshots/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{artifact_name(name)}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (WCAG 2.x A/AA rules and best practices).

    axe is evaluated through the DevTools protocol, which the page's CSP does not govern, so the page
    keeps its real, strict policy while it is checked."""
    if not AXE.exists():
        raise AssertionError(f"axe-core is missing ({AXE}): run `make browser` (tests/ensure_browser.sh)")
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = await page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations'],"
        " runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})"
    )
    return list(result["violations"])


async def assert_accessible(page: Page, name: str) -> None:
    """Zero serious or critical axe-core violations; a screenshot of the page is kept either way."""
    await screenshot(page, name)
    blocking = [v for v in await axe_violations(page) if v.get("impact") in BLOCKING_IMPACTS]
    assert not blocking, f"{name}: axe-core found serious/critical violations:\n" + "\n".join(
        f"- [{v['impact']}] {v['id']}: {v['help']} ({len(v['nodes'])} nodes: "
        + ", ".join(str(node.get("target")) for node in v["nodes"][:5])
        + ")"
        for v in blocking
    )
