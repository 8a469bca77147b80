"""Dataset run pages in a real browser: a dataset's runs, one run's results, two runs compared
(regressions first), against a server-side run (tests/run_target.py) and a client-side one."""

from __future__ import annotations

import json

import httpx
import pytest
from playwright.sync_api import expect

from datasets_client import add_items, client, new_dataset, unique
from run_target import RunTarget, results, wait_run
from server_process import ServerProcess
from ui_browser import DESKTOP, PHONE
from ui_seed import HOSTILE_TEXT

SCORERS = ["exact_match", "levenshtein_similarity"]
ITEMS = [
    {"input": "capital of France?", "expected_output": "Paris"},
    {"input": "capital of Spain?", "expected_output": "Madrid"},
    {"input": "FAIL please", "expected_output": "x"},
    {"input": HOSTILE_TEXT, "expected_output": HOSTILE_TEXT},
    {"input": "TRACE me", "expected_output": "TRACE me"},
]
ANSWERS = {"capital of France?": {"output": "Paris"}, "capital of Spain?": {"output": "Madrid"}}


@pytest.fixture(scope="module")
def target():
    with RunTarget(answers=ANSWERS) as t:
        yield t


@pytest.fixture(scope="module")
def server(tmp_path_factory, target):
    tmp = tmp_path_factory.mktemp("ui-runs")
    config = tmp / "spanlake.yaml"
    config.write_text(json.dumps({"runs": {"trace_wait_seconds": 0.2, "poll_seconds": 0.2}}))
    with ServerProcess(tmp / "data", "--config", str(config)) as srv:
        target.spanlake_url = srv.http_url
        yield srv


@pytest.fixture(scope="module")
def runs(server, target):
    """A server-side `baseline` and a client-side `candidate` with two regressions and one fix."""
    with client(server) as http:
        name = unique("ui-runs")
        new_dataset(http, name)
        items = add_items(http, name, ITEMS)
        resp = http.post(f"/api/datasets/{name}/runs", json={"name": "baseline", "target": {"url": target.url}, "scorers": SCORERS})
        assert resp.status_code == 202, resp.text
        baseline = wait_run(http, name, "baseline")
        resp = http.post(f"/api/datasets/{name}/runs", json={"name": "candidate", "target": None, "scorers": SCORERS})
        assert resp.status_code == 202, resp.text
        france, spain, failing, hostile, traced = (i["id"] for i in items)
        resp = http.post(f"/api/datasets/{name}/runs/candidate/results", json={"results": [
            {"item_id": france, "output": "Lyon", "latency_ms": 120},          # regression: a score drops
            {"item_id": spain, "output": "Madrid", "latency_ms": 80},
            {"item_id": failing, "output": "x", "latency_ms": 50},             # fixed: error before
            {"item_id": hostile, "output": HOSTILE_TEXT, "latency_ms": 60},
            {"item_id": traced, "error": "timeout", "latency_ms": 900},        # regression: fails now
        ]})
        assert resp.status_code == 200, resp.text
        assert http.post(f"/api/datasets/{name}/runs/candidate/complete").status_code == 202
        candidate = wait_run(http, name, "candidate")
        assert (baseline["status"], candidate["status"]) == ("completed", "completed")
        return {"dataset": name, "items": items, "baseline": baseline, "candidate": candidate,
                "baseline_results": results(http, name, "baseline")}


def test_runs_list_shows_each_run_with_its_scorer_summary(server, runs, open_page):
    name = runs["dataset"]
    api = httpx.get(f"{server.http_url}/api/datasets/{name}/runs", params={"summary": "true"}).json()["items"]
    assert [r["name"] for r in api] == ["candidate", "baseline"]
    browser_page = open_page(server.http_url)
    page = browser_page.page
    page.goto(f"/datasets/{name}/runs")
    assert page.get_by_role("heading", name=f"Runs of {name}").is_visible()
    assert page.get_by_role("link", name=name).first.get_attribute("href") == f"/datasets/{name}"
    for run in api:
        row = page.locator(f'tr[data-run="{run["name"]}"]')
        assert row.get_by_role("link", name=run["name"]).get_attribute("href") == f"/datasets/{name}/runs/{run['id']}"
        assert "completed" in row.inner_text() and f"{run['completed']} ok" in row.inner_text()
        mean = run["summary"]["scorers"]["exact_match"]["mean"]
        assert row.locator('[data-scorer="exact_match"]').inner_text().startswith(f"exact_match {mean:.3f}")
    assert "1 failed" in page.locator('tr[data-run="baseline"]').inner_text()
    assert not browser_page.console_errors
    browser_page.screenshot("runs-desktop")
    phone = open_page(server.http_url, PHONE)
    phone.page.goto(f"/datasets/{name}/runs")
    phone.screenshot("runs-phone")
    assert phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_one_run_shows_every_result_with_scores_errors_and_trace(server, runs, open_page):
    name, baseline = runs["dataset"], runs["baseline"]
    by_item = {r["item_id"]: r for r in runs["baseline_results"]}
    france, _, failing, hostile, traced = (i["id"] for i in runs["items"])
    browser_page = open_page(server.http_url)
    page = browser_page.page
    page.goto(f"/datasets/{name}/runs/baseline")
    assert page.get_by_role("heading", name="baseline").is_visible()
    assert page.locator("table.results tbody tr").count() == len(ITEMS)
    row = page.locator(f'tr[data-item="{france}"]')
    assert "capital of France?" in row.inner_text() and "Paris" in row.inner_text()
    exact = next(s for s in by_item[france]["scores"] if s["name"] == "exact_match")
    assert row.locator('[data-scorer="exact_match"]').inner_text() == f"exact_match {exact['value']:g}"
    assert "500" in page.locator(f'tr[data-item="{failing}"] .error-text').inner_text()
    # The TRACE item's own span reached the store: its result links to the trace.
    trace_id = by_item[traced]["trace_id"]
    link = page.get_by_role("link", name=f"Trace of item {by_item[traced]['seq'] + 1}")
    assert link.get_attribute("href") == f"/traces/{trace_id}"
    assert httpx.get(f"{server.http_url}/api/traces/{trace_id}").status_code == 200
    # Per-scorer summary as the API computes it.
    stats = baseline["summary"]["scorers"]["exact_match"]
    assert page.locator('table.scorer-stats tr[data-scorer="exact_match"]').inner_text().split("\t")[1:4] == [
        str(stats["count"]), f"{stats['mean']:.3f}", f"{stats['pass_rate'] * 100:.0f}%"]
    # Hostile input and output render as text.
    assert HOSTILE_TEXT in page.locator(f'tr[data-item="{hostile}"]').inner_text()
    assert page.evaluate("window.__xss") is None and page.locator("main img").count() == 0
    assert not browser_page.console_errors
    browser_page.screenshot("run-desktop")
    # Only the errors.
    page.get_by_label("Status").select_option("error")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**status=error**")
    assert [r.get_attribute("data-item") for r in page.locator("table.results tbody tr").all()] == [failing]
    phone = open_page(server.http_url, PHONE)
    phone.page.goto(f"/datasets/{name}/runs/{baseline['id']}")
    phone.screenshot("run-phone")
    assert phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_compare_two_runs_lists_regressions_first(server, runs, open_page):
    name = runs["dataset"]
    france, _, failing, _, traced = (i["id"] for i in runs["items"])
    api = httpx.get(f"{server.http_url}/api/datasets/{name}/runs/compare", params={"runs": "baseline,candidate"}).json()
    assert (api["summary"]["regressions"], api["summary"]["improvements"]) == (2, 1)
    assert [i["item_id"] for i in api["items"][:2]] == [france, traced]
    browser_page = open_page(server.http_url)
    page = browser_page.page
    page.goto(f"/datasets/{name}/runs")
    # The pickers default to the two newest runs: base the older, head the newer.
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**/runs/compare?**")
    rows = page.locator("table.compare tbody tr")
    assert [r.get_attribute("data-item") for r in rows.all()] == [i["item_id"] for i in api["items"]]
    assert [r.locator(".badge").first.inner_text() for r in rows.all()[:3]] == ["regression", "regression", "same"]
    assert page.locator(f'tr[data-item="{failing}"] .badge').first.inner_text() == "improvement"
    assert "exact_match -1.000" in rows.first.inner_text()
    assert page.locator('[data-figure="regressions"]').inner_text() == "2"
    assert page.locator('[data-figure="improvements"]').inner_text() == "1"
    delta = api["summary"]["delta"]["scorers"]["exact_match"]["mean"]
    assert f"{delta:+.3f}" in page.locator('table.scorer-stats tr[data-scorer="exact_match"]').inner_text()
    assert not browser_page.console_errors
    browser_page.screenshot("runs-compare-desktop")
    phone = open_page(server.http_url, PHONE)
    phone.page.goto(page.url)
    phone.screenshot("runs-compare-phone")
    assert phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_empty_and_missing(server, open_page):
    with client(server) as http:
        name = unique("no-runs")
        new_dataset(http, name)
    page = open_page(server.http_url).page
    page.goto(f"/datasets/{name}/runs")
    assert page.get_by_text("No runs yet.").is_visible()
    assert page.get_by_role("button", name="Compare").count() == 0
    page.goto(f"/datasets/{name}/runs/compare")
    assert page.get_by_text("Comparing needs two runs.").is_visible()
    response = page.goto("/datasets/no-such-dataset/runs")
    assert response.status == 404 and "no-such-dataset" in page.get_by_role("alert").inner_text()
    response = page.goto(f"/datasets/{name}/runs/nope")
    assert response.status == 404 and "nope" in page.get_by_role("alert").inner_text()


def test_a_running_run_refreshes_itself_until_done(server, open_page):
    with RunTarget(slow_seconds=1.0) as slow, client(server) as http:
        name = unique("ui-live")
        new_dataset(http, name)
        add_items(http, name, [{"input": f"SLOW {n}", "expected_output": f"SLOW {n}"} for n in range(3)])
        resp = http.post(f"/api/datasets/{name}/runs", json={"name": "live", "target": {"url": slow.url}, "concurrency": 1,
                                                              "scorers": ["exact_match"]})
        assert resp.status_code == 202, resp.text
        page = open_page(server.http_url).page
        page.goto(f"/datasets/{name}/runs/live")
        badge = page.locator(".page-head .badge")
        assert badge.inner_text() in ("pending", "running")
        # No reload: the section asks for itself again until the run is finished.
        expect(badge).to_have_text("completed", timeout=20_000)
        assert page.locator("table.results tbody tr").count() == 3
        assert page.locator("#run-main").get_attribute("hx-get") is None
        assert wait_run(http, name, "live")["status"] == "completed"
