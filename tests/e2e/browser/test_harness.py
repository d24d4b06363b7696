"""The harness itself: axe-core really reports what it should, and the loopback guard's address filter."""

from __future__ import annotations

import pytest

from .conftest import NewPage, is_loopback_url
from .support import assert_accessible, axe_violations

BAD_PAGE = (
    "data:text/html,<!doctype html><html><head><title>t</title></head>"
    "<body><main><button></button><input type=text></main></body></html>"
)


@pytest.mark.e2e
@pytest.mark.slow
async def test_axe_reports_a_nameless_button_and_an_unlabelled_input(new_page: NewPage) -> None:
    page = await new_page()
    await page.goto(BAD_PAGE)
    found = {v["id"]: v["impact"] for v in await axe_violations(page)}
    assert found.get("button-name") == "critical"
    assert found.get("label") == "critical"
    with pytest.raises(AssertionError, match="button-name"):
        await assert_accessible(page, "harness-bad-page")


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8080/c/x", True),
        ("http://127.9.9.9/", True),
        ("http://[::1]:8000/", True),
        ("http://localhost:8000/", True),
        ("http://gateway.localhost:8000/sandbox", True),
        ("data:text/html,hi", True),
        ("about:blank", True),
        ("https://cdn.example.com/lib.js", False),
        ("http://10.0.0.1/", False),
        ("http://[2001:db8::1]/", False),
        ("http://localhost.example.com/", False),
    ],
)
def test_loopback_guard(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback
