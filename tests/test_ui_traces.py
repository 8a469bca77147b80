"""The traces page in a real browser: list, quick filters, the filter box, paging, escaping."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
import pytest

from ui_browser import DESKTOP, PHONE


def trace_rows(page) -> list[str]:
    return [link.get_attribute("href") for link in page.get_by_role("link").all() if (link.get_attribute("href") or "").startswith("/traces/")]


def test_traces_page_lists_newest_first_with_links(ui_server, open_page):
    seeded = ui_server.seeded
    browser_page = open_page(ui_server.http_url)
    page = browser_page.page
    page.goto("/")
    assert page.get_by_role("heading", name="Traces").is_visible()
    hrefs = trace_rows(page)
    for role in ("ok", "error", "slow", "other_service", "hostile"):
        assert f"/traces/{seeded[role].trace_id}" in hrefs
    api = httpx.get(f"{ui_server.http_url}/api/traces", params={"limit": 50}).json()["items"]
    # The page shows what the API answers, in the same order.
    assert hrefs == [f"/traces/{t['trace_id']}" for t in api]
    row = page.get_by_role("row").filter(has=page.locator(f'a[href="/traces/{seeded["error"].trace_id}"]'))
    assert "support-agent" in row.inner_text()
    assert row.locator(".badge.error").inner_text() == "2"
    assert not browser_page.console_errors
    browser_page.screenshot("traces-desktop")


def test_span_values_render_as_text_never_as_markup(ui_server, open_page):
    browser_page = open_page(ui_server.http_url)
    page = browser_page.page
    page.goto("/traces")
    hostile = ui_server.seeded["hostile"]
    link = page.locator(f'a[href="/traces/{hostile.trace_id}"]')
    assert "<script>window.__xss = 1</script>" in link.inner_text()
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img").count() == 0
    assert not browser_page.dialogs


def test_quick_filters_and_filter_box_match_the_api(ui_server, open_page):
    seeded = ui_server.seeded
    page = open_page(ui_server.http_url).page
    page.goto("/traces")
    page.get_by_label("Errors only").check()
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**errors=1**")
    assert trace_rows(page) == [f"/traces/{seeded['error'].trace_id}"]

    page.goto("/traces")
    page.get_by_label("Service").fill("billing-agent")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**service=billing-agent**")
    assert trace_rows(page) == [f"/traces/{seeded['other_service'].trace_id}"]

    page.goto("/traces")
    page.get_by_label("Min duration (ms)").fill("2000")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**min_duration=2000**")
    assert trace_rows(page) == [f"/traces/{seeded['slow'].trace_id}"]

    page.goto("/traces")
    page.get_by_role("textbox", name="Filter").fill(json.dumps({"field": "model", "op": "eq", "value": "gpt-4o-mini"}))
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**filter=**")
    assert trace_rows(page) == [f"/traces/{seeded['hostile'].trace_id}"]


def test_bad_filter_shows_the_parser_message(ui_server, open_page):
    page = open_page(ui_server.http_url).page
    response = page.goto("/traces?" + urlencode({"filter": json.dumps({"field": "nope", "op": "eq", "value": 1})}))
    assert response.status == 400
    alert = page.get_by_role("alert")
    assert "nope" in alert.inner_text()
    page.goto("/traces?filter=%7Bnot-json")
    assert "not valid JSON" in page.get_by_role("alert").inner_text()


def test_no_matches_state(ui_server, open_page):
    browser_page = open_page(ui_server.http_url)
    page = browser_page.page
    page.goto("/traces?service=no-such-service")
    assert page.get_by_text("No matches.").is_visible()
    assert page.get_by_role("link", name="Clear the filters").is_visible()


def test_paging_walks_every_trace_once(ui_server, open_page):
    page = open_page(ui_server.http_url).page
    page.goto("/traces?limit=2")
    seen: list[str] = []
    for _ in range(10):
        seen.extend(trace_rows(page))
        older = page.get_by_role("link", name="Older traces")
        if older.count() == 0:
            break
        older.click()
        page.wait_for_load_state()
    api = httpx.get(f"{ui_server.http_url}/api/traces", params={"limit": 100}).json()["items"]
    assert seen == [f"/traces/{t['trace_id']}" for t in api]
    assert page.get_by_role("link", name="Newest").is_visible()


@pytest.mark.parametrize("viewport,name", [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_traces_page_fits_the_viewport(ui_server, open_page, viewport, name):
    browser_page = open_page(ui_server.http_url, viewport)
    page = browser_page.page
    page.goto("/traces")
    # Nothing but the table scrolls sideways: the page itself never does.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    browser_page.screenshot(f"traces-{name}")


def test_empty_store_explains_how_to_send_traces(make_server, open_page):
    server = make_server()
    page = open_page(server.http_url).page
    page.goto("/")
    assert page.get_by_text("No traces yet.").is_visible()
