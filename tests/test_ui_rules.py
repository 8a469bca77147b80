"""The rules page in a real browser: counters after OTLP traffic matching GET /api/rules, the
reload error of a broken file as an alert, escaping, and the page without a rules file."""

from __future__ import annotations

import time

import httpx
import pytest

from spanlake.ui.pages.rules import counter_groups
from ui_browser import DESKTOP, PHONE
from ui_seed import seed

HOSTILE_VALUE = "<script>window.__xss = 3</script>"
RULES = f"""
rules:
  - name: gpt4o-calls
    dataset: gpt4o-calls
    when: {{field: model, op: eq, value: gpt-4o}}
    topic: model
  - name: half-of-errors
    dataset: errors
    when: {{field: status, op: eq, value: ERROR}}
    sample: 0.5
  - name: hostile-watch
    dataset: hostile
    enabled: false
    when: {{field: input, op: contains, value: "{HOSTILE_VALUE}"}}
"""


def rules_body(server) -> dict:
    return httpx.get(f"{server.http_url}/api/rules").json()


def wait_until(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.fixture
def rules_server(make_server, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    server = make_server("--rules", str(path))
    server.rules_path = path
    server.seeded = seed(server.http_url)
    matched = wait_until(lambda: {r["name"]: r for r in rules_body(server)["items"]}["gpt4o-calls"]["counters"]["matched"] >= 4)
    assert matched, rules_body(server)
    return server


def counters_on_page(page, rule: str) -> dict[str, str]:
    card = page.locator(f'section.rule[data-rule="{rule}"]')
    return {c.get_attribute("data-counter"): c.locator("dd").inner_text() for c in card.locator("[data-counter]").all()}


def test_rules_with_counters_then_a_reload_error(rules_server, open_page):
    server = rules_server
    api = {r["name"]: r for r in rules_body(server)["items"]}
    assert api["gpt4o-calls"]["counters"]["captured"] == 4  # one gpt-4o chat span per agent trace
    browser_page = open_page(server.http_url)
    page = browser_page.page
    page.goto("/rules")
    assert [h.inner_text() for h in page.locator("section.rule h2").all()] == ["gpt4o-calls", "half-of-errors", "hostile-watch"]
    for name, rule in api.items():
        # Every counter the API carries is on the page, with its value: new counters need no page change.
        assert counters_on_page(page, name) == {k.replace("_", " "): f"{v:,}" for k, v in rule["counters"].items()}
    assert page.locator('section.rule[data-rule="hostile-watch"] .badge').inner_text() == "disabled"
    assert page.get_by_role("alert").count() == 0
    # The definition shows the hostile filter value as text.
    page.locator('section.rule[data-rule="hostile-watch"] details.definition summary').click()
    assert HOSTILE_VALUE in page.locator('section.rule[data-rule="hostile-watch"] details.definition pre').inner_text()
    assert page.evaluate("window.__xss") is None and not browser_page.dialogs
    assert not browser_page.console_errors
    browser_page.screenshot("rules-desktop")
    phone = open_page(server.http_url, PHONE)
    phone.page.goto("/rules")
    phone.screenshot("rules-phone")
    assert phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

    # A broken file is refused; the old rules stay and the page says why.
    server.rules_path.write_text("rules:\n  - {name: broken, dataset: x, when: {field: nope, op: eq, value: 1}}\n")
    assert wait_until(lambda: rules_body(server)["reload_error"]), rules_body(server)
    page.reload()
    alert = page.get_by_role("alert")
    assert "refused" in alert.inner_text() and "nope" in alert.inner_text()
    assert page.locator("section.rule").count() == 3
    browser_page.screenshot("rules-reload-error-desktop")


def test_without_a_rules_file_the_page_says_how_to_load_one(ui_server, open_page):
    assert rules_body(ui_server)["source"] is None
    for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        browser_page = open_page(ui_server.http_url, viewport)
        page = browser_page.page
        page.goto("/rules")
        assert page.get_by_text("No rules file loaded.").is_visible()
        assert "--rules FILE" in page.locator("main").inner_text()
        browser_page.screenshot(f"rules-empty-{name}")


def test_counters_of_any_shape_are_grouped_generically():
    # The shape a scoring rule adds (branch scoring-rules): a `scoring` object beside `counters`.
    rule = {
        "name": "judge", "dataset": None, "score": ["no_errors"], "scope": "span", "enabled": True, "definition": {},
        "counters": {"matched": 3, "captured": 0},
        "scoring": {"scorers": ["no_errors"], "queued": 3, "scored": 2, "failed": 1,
                    "recent_failures": [{"trace_id": "ab", "error": "boom"}]},
    }
    groups = {g["title"]: g for g in counter_groups(rule)}
    assert groups["counters"]["figures"] == [("matched", 3), ("captured", 0)]
    assert groups["scoring"]["figures"] == [("queued", 3), ("scored", 2), ("failed", 1)]
    assert groups["scoring"]["words"] == [("scorers", "no_errors")]
    assert groups["scoring"]["entries"] == [("recent failures", [{"trace_id": "ab", "error": "boom"}])]
