"""The scores page in a real browser: summaries matching GET /api/scores/summary, batches started
from the page and watched to completion, a selection carried in the URL, escaping, empty state."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from playwright.sync_api import expect

from server_process import ServerProcess
from ui_browser import DESKTOP, PHONE
from ui_seed import HOSTILE_TEXT, seed

# Manual scores (POST /api/scores) with values chosen so mean, pass rate and the worst are known.
QUALITY = {"ok": 0.9, "error": 0.2, "slow": 0.6, "other_service": 0.75}


def wait_batch(url: str, batch_id: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        batch = httpx.get(f"{url}/api/scores/batches/{batch_id}").json()
        if batch["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return batch
        time.sleep(0.1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Seeded traces, manual scores, a hostile score and a finished no_errors batch."""
    with ServerProcess(tmp_path_factory.mktemp("ui-scores")) as srv:
        srv.seeded = seed(srv.http_url)
        for role, value in QUALITY.items():
            resp = httpx.post(f"{srv.http_url}/api/scores", json={
                "trace_id": srv.seeded[role].trace_id, "name": "quality", "value": value, "source": "annotation",
                "explanation": f"{role} answer"})
            assert resp.status_code == 201, resp.text
        resp = httpx.post(f"{srv.http_url}/api/scores", json={
            "trace_id": srv.seeded["hostile"].trace_id, "name": HOSTILE_TEXT, "value": 0, "label": HOSTILE_TEXT,
            "explanation": HOSTILE_TEXT})
        assert resp.status_code == 201, resp.text
        resp = httpx.post(f"{srv.http_url}/api/scores/batch", json={
            "scorer": "no_errors", "trace_ids": [t.trace_id for t in srv.seeded.values()]})
        assert resp.status_code == 202, resp.text
        assert wait_batch(srv.http_url, resp.json()["batch_id"])["status"] == "completed"
        yield srv


def card(page, name: str):
    return page.locator("section.score-card").filter(has=page.get_by_role("heading", name=name, exact=True))


def figure(card_locator, key: str) -> str:
    return card_locator.locator(f'[data-figure="{key}"]').inner_text().strip()


def test_summaries_match_the_api(server, open_page):
    summary = {s["name"]: s for s in httpx.get(f"{server.http_url}/api/scores/summary").json()["items"]}
    quality, no_errors = summary["quality"], summary["no_errors"]
    # The API's own figures, checked by hand first.
    assert quality["count"] == 4 and quality["mean"] == pytest.approx(sum(QUALITY.values()) / 4)
    assert quality["pass_rate"] is None  # numeric and no threshold: no pass rate
    assert (no_errors["count"], no_errors["pass_rate"]) == (5, pytest.approx(4 / 5))
    assert [w["trace_id"] for w in quality["worst"]] == [server.seeded[r].trace_id for r in ("error", "slow", "other_service", "ok")]

    browser_page = open_page(server.http_url)
    page = browser_page.page
    page.goto("/scores")
    q, ne = card(page, "quality"), card(page, "no_errors")
    assert figure(q, "count") == "4" and figure(q, "mean") == f"{quality['mean']:.3f}" and figure(q, "pass_rate") == "–"
    assert figure(ne, "count") == "5" and figure(ne, "pass_rate") == "80.0%" and figure(ne, "mean") == "0.800"
    # Histogram: one bar per bin, heights from the counts, the counts adding up.
    bars = q.locator("svg.histogram rect.bar")
    assert bars.count() == len(quality["histogram"]) == 10
    assert [int(b.get_attribute("data-count")) for b in bars.all()] == [h["count"] for h in quality["histogram"]]
    assert float(bars.nth(0).get_attribute("height")) > 0  # 0.2 is the lowest bin
    # Worst traces first, each linking to its trace.
    worst = q.locator("ol.worst a")
    assert [a.get_attribute("href") for a in worst.all()] == [f"/traces/{w['trace_id']}" for w in quality["worst"]]
    assert ne.locator("ol.worst a").first.get_attribute("href") == f"/traces/{server.seeded['error'].trace_id}"
    # The no_errors batch is listed as completed with its progress.
    row = page.locator("#score-batches tbody tr").filter(has_text="no_errors")
    assert row.locator("[data-status]").inner_text() == "completed"
    assert "5 scored" in row.inner_text()
    assert row.locator("progress").get_attribute("value") == "5"
    assert not browser_page.console_errors
    browser_page.screenshot("scores-desktop")

    # A pass threshold applies to numeric scores, on the page as in the API.
    page.get_by_label("Pass threshold").fill("0.6")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**pass_threshold=0.6**")
    api = {s["name"]: s for s in httpx.get(f"{server.http_url}/api/scores/summary", params={"pass_threshold": 0.6}).json()["items"]}
    assert api["quality"]["pass_rate"] == 0.75
    assert figure(card(page, "quality"), "pass_rate") == "75.0%"


def test_phone_layout_fits(server, open_page):
    browser_page = open_page(server.http_url, PHONE)
    page = browser_page.page
    page.goto("/scores")
    assert page.get_by_role("heading", name="Score traces").is_visible()
    browser_page.screenshot("scores-phone")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_hostile_values_render_inert(server, open_page):
    browser_page = open_page(server.http_url)
    page = browser_page.page
    page.goto("/scores")
    hostile = card(page, HOSTILE_TEXT)
    assert hostile.count() == 1 and HOSTILE_TEXT in hostile.inner_text()
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img").count() == 0 and not browser_page.dialogs


def test_score_traces_by_filter_from_the_page(server, open_page):
    browser_page = open_page(server.http_url)
    page = browser_page.page
    page.goto("/scores")
    assert card(page, "output_not_empty").count() == 0
    page.get_by_label("Scorer").select_option("output_not_empty")
    page.get_by_role("textbox", name="Filter").fill(json.dumps({"field": "service", "op": "eq", "value": "support-agent"}))
    page.get_by_role("button", name="Score traces").click()
    page.get_by_role("status").filter(has_text="started").wait_for()
    row = page.locator("#score-batches tbody tr").filter(has_text="output_not_empty")
    # The list polls itself until the batch is done, then the summaries reload once.
    expect(row.locator("[data-status]")).to_have_text("completed", timeout=20_000)
    batch_id = row.get_attribute("data-batch-id")
    batch = httpx.get(f"{server.http_url}/api/scores/batches/{batch_id}").json()
    assert (batch["status"], batch["total"], batch["completed"]) == ("completed", 3, 3)  # ok, error, slow
    assert "3 scored" in row.inner_text()
    new_card = card(page, "output_not_empty")
    new_card.wait_for(timeout=10_000)
    assert figure(new_card, "count") == "3"
    assert page.locator("#score-batches").get_attribute("hx-get") is None  # polling stopped
    assert not browser_page.console_errors


def test_score_a_selection_carried_in_the_url(server, open_page):
    chosen = [server.seeded["ok"].trace_id, server.seeded["slow"].trace_id]
    page = open_page(server.http_url).page
    page.goto("/scores?trace_ids=" + ",".join(chosen))
    assert "2 selected traces" in page.get_by_role("group", name="Selection").inner_text()
    page.get_by_label("Scorer").select_option("latency")
    page.get_by_role("button", name="Score traces").click()
    row = page.locator("#score-batches tbody tr").filter(has_text="latency")
    expect(row.locator("[data-status]")).to_have_text("completed", timeout=20_000)
    batch_id = row.get_attribute("data-batch-id")
    batch = httpx.get(f"{server.http_url}/api/scores/batches/{batch_id}").json()
    assert (batch["scorer"], batch["selection"], batch["total"], batch["completed"]) == ("latency", "ids", 2, 2)
    scored = httpx.get(f"{server.http_url}/api/scores", params={"batch_id": batch_id}).json()["items"]
    assert sorted(s["trace_id"] for s in scored) == sorted(chosen)


def test_bad_input_is_shown_and_starts_nothing(server, open_page):
    before = httpx.get(f"{server.http_url}/api/scores/batches").json()["items"]
    page = open_page(server.http_url).page
    page.goto("/scores")
    page.get_by_role("button", name="Score traces").click()
    assert "scorer" in page.get_by_role("alert").inner_text(timeout=5_000)
    page.get_by_label("Scorer").select_option("no_errors")
    page.get_by_role("textbox", name="Filter").fill("{not json")
    page.get_by_role("button", name="Score traces").click()
    assert "not valid JSON" in page.get_by_role("alert").inner_text()
    page.get_by_role("textbox", name="Filter").fill(json.dumps({"field": "nope", "op": "eq", "value": 1}))
    page.get_by_role("button", name="Score traces").click()
    page.get_by_role("alert").filter(has_text="nope").wait_for()
    assert httpx.get(f"{server.http_url}/api/scores/batches").json()["items"] == before
    response = page.goto("/scores?trace_ids=not-an-id")
    assert response.status == 400 and "trace_ids" in page.get_by_role("alert").inner_text()


def test_empty_state(make_server, open_page):
    server = make_server()
    assert httpx.get(f"{server.http_url}/api/scores/summary").json()["items"] == []
    for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        browser_page = open_page(server.http_url, viewport)
        page = browser_page.page
        page.goto("/scores")
        assert page.get_by_text("No scores yet.").is_visible()
        assert page.get_by_text("No scoring batches yet.").is_visible()
        browser_page.screenshot(f"scores-empty-{name}")
