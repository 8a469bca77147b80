"""The trace page and selection mode in a real browser: span tree + waterfall, span detail (chat
messages, tool calls, attributes, long values, scores, datasets), annotations, and adding spans
or whole traces to a dataset, each checked through the JSON API too."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from otlp_builders import attrs, new_span_id, new_trace_id, span
from ui_browser import DESKTOP, PHONE
from ui_seed import HOSTILE_TEXT, send

LONG_TEXT = "lorem ipsum " * 2500  # 30,000 characters, over LONG_VALUE_CHARS


def rich_trace() -> tuple[str, dict[str, str], list]:
    """An agent whose chat span asked for a tool: OpenAI request/response JSON, events, a link, a long value."""
    trace_id = new_trace_id()
    ids = {name: new_span_id() for name in ("root", "retrieve", "chat", "tool", "answer", "genai")}
    start = time.time_ns() - 5_000_000_000
    request = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a billing assistant."},
            {"role": "user", "content": f"Refund order 42 {HOSTILE_TEXT}"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup_order", "arguments": json.dumps({"order_id": 42})}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"status": "shipped"})},
        ],
    }
    request["tools"] = [{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}]
    response = {"choices": [{"message": {"role": "assistant", "content": "The order shipped; I started the refund."}, "finish_reason": "stop"}]}
    spans = [
        span(trace_id, ids["root"], "billing.agent", start_ns=start, duration_ms=900, attributes={"input.value": "Refund order 42"}),
        span(trace_id, ids["retrieve"], "retrieve policy", parent=ids["root"], start_ns=start + 10_000_000, duration_ms=80,
             attributes={"openinference.span.kind": "RETRIEVER", "retrieval.note": LONG_TEXT}),
        span(trace_id, ids["chat"], "chat gpt-4o", parent=ids["root"], start_ns=start + 100_000_000, duration_ms=500,
             attributes={"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "input.value": json.dumps(request),
                         "output.value": json.dumps(response), "llm.token_count.prompt": 321, "llm.token_count.completion": 54,
                         "app.note": HOSTILE_TEXT}),
        span(trace_id, ids["tool"], "lookup_order", parent=ids["chat"], start_ns=start + 200_000_000, duration_ms=40,
             attributes={"openinference.span.kind": "TOOL", "input.value": json.dumps({"order_id": 42})}),
        span(trace_id, ids["answer"], "format answer", parent=ids["root"], start_ns=start + 700_000_000, duration_ms=150),
        # GenAI's current shape: messages made of parts, tool calls and their responses among them.
        span(trace_id, ids["genai"], "chat claude", parent=ids["answer"], start_ns=start + 710_000_000, duration_ms=100,
             attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-sonnet", "gen_ai.input.messages": json.dumps([
                 {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
                 {"role": "assistant", "parts": [{"type": "tool_call", "id": "t1", "name": "get_weather", "arguments": {"city": "Paris"}}]},
                 {"role": "tool", "parts": [{"type": "tool_call_response", "id": "t1", "response": "rainy, 12C"}]},
             ]), "gen_ai.output.messages": json.dumps([
                 {"role": "assistant", "parts": [{"type": "text", "content": "It is rainy in Paris."}], "finish_reason": "stop"}])}),
    ]
    chat = spans[2]
    chat.events.add(name="first token", time_unix_nano=start + 180_000_000, attributes=attrs({"ttft_ms": 80}))
    chat.links.add(trace_id=bytes.fromhex(new_trace_id()), span_id=bytes.fromhex(new_span_id()))
    return trace_id, ids, spans


@pytest.fixture(scope="module")
def rich(ui_server):
    trace_id, ids, spans = rich_trace()
    # Its own service and no error span: the traces page tests count the seeded ones by both.
    send(ui_server.http_url, spans, "refund-agent")
    return trace_id, ids


def api_get(server, path: str, **params):
    response = httpx.get(f"{server.http_url}{path}", params=params, timeout=10)
    response.raise_for_status()
    return response.json()


def open_trace(ui_server, open_page, trace_id: str, span_id: str | None = None, viewport=DESKTOP):
    browser_page = open_page(ui_server.http_url, viewport)
    url = f"/traces/{trace_id}" + (f"?span={span_id}" if span_id else "")
    response = browser_page.page.goto(url)
    assert response.status == 200
    return browser_page


def test_tree_order_depth_and_waterfall_bars(ui_server, open_page, rich):
    trace_id, ids = rich
    browser_page = open_trace(ui_server, open_page, trace_id)
    page = browser_page.page
    rows = page.locator("[data-span-tree] > li")
    api_order = [s["span_id"] for s in api_get(ui_server, f"/api/traces/{trace_id}")["spans"]]
    assert [rows.nth(i).get_attribute("data-span-id") for i in range(rows.count())] == api_order
    depth = {rows.nth(i).get_attribute("data-span-id"): rows.nth(i).get_attribute("data-depth") for i in range(rows.count())}
    assert depth == {ids["root"]: "0", ids["retrieve"]: "1", ids["chat"]: "1", ids["tool"]: "2", ids["answer"]: "1", ids["genai"]: "2"}
    # Every span has a bar; the later span starts further right.
    bars = {sid: page.locator(f'li[data-span-id="{sid}"] svg.bar rect') for sid in api_order}
    assert all(bar.count() == 1 for bar in bars.values())
    assert float(bars[ids["answer"]].get_attribute("x")) > float(bars[ids["chat"]].get_attribute("x")) > 0
    box_root, box_answer = (page.locator(f'li[data-span-id="{ids[k]}"] svg.bar rect').bounding_box() for k in ("root", "answer"))
    assert box_root["width"] > box_answer["width"] > 0
    assert page.get_by_role("heading", name="billing.agent", level=2).is_visible()  # the root, until one is chosen
    assert not browser_page.console_errors


def test_error_spans_are_marked(ui_server, open_page):
    errored = ui_server.seeded["error"]
    page = open_trace(ui_server, open_page, errored.trace_id).page
    spans = {s["span_id"]: s for s in api_get(ui_server, f"/api/traces/{errored.trace_id}")["spans"]}
    for span_id, span in spans.items():
        row = page.locator(f'li[data-span-id="{span_id}"]')
        # In words, not only in colour.
        assert row.get_by_text("Error", exact=True).count() == (1 if span["status"] == "ERROR" else 0)
        assert ("error" in (row.locator("rect").get_attribute("class") or "")) == (span["status"] == "ERROR")
    # The root is shown until a span is chosen.
    assert page.get_by_role("heading", name="agent.run", level=2).is_visible()


def test_selecting_a_span_shows_its_chat_tool_call_and_attributes(ui_server, open_page, rich):
    trace_id, ids = rich
    browser_page = open_trace(ui_server, open_page, trace_id)
    page = browser_page.page
    page.get_by_role("link", name="chat gpt-4o").click()
    page.wait_for_url(f"**span={ids['chat']}")
    detail = page.locator("#span-detail")
    assert detail.get_by_role("heading", name="chat gpt-4o").is_visible()
    system = detail.get_by_role("article", name="system message")
    assert "You are a billing assistant." in system.inner_text()
    assert "Refund order 42" in detail.get_by_role("article", name="user message").inner_text()
    call = detail.locator(".tool-call")
    assert "lookup_order" in call.inner_text() and '"order_id": 42' in call.inner_text()
    assert '"status": "shipped"' in detail.get_by_role("article", name="tool message").inner_text()
    assert "lookup_order" in detail.locator(".tools-offered").inner_text()
    output = detail.get_by_label("Output messages")
    assert "I started the refund" in output.inner_text() and "finish: stop" in output.inner_text()
    assert "321 in · 54 out · 375 total" in detail.inner_text()
    attributes = detail.get_by_role("table", name="Attributes", exact=True)
    assert "llm.model_name" in attributes.inner_text()
    assert "service.name" in detail.get_by_role("table", name="Resource").inner_text()
    assert "first token" in detail.inner_text()
    assert page.locator(f'li[data-span-id="{ids["chat"]}"] a').get_attribute("aria-current") == "true"
    # The URL alone renders the same selection (a shared link).
    page.reload()
    assert page.locator("#span-detail").get_by_role("heading", name="chat gpt-4o").is_visible()
    assert not browser_page.console_errors
    browser_page.screenshot("trace-desktop")


def test_genai_parts_render_as_messages(ui_server, open_page, rich):
    trace_id, ids = rich
    detail = open_trace(ui_server, open_page, trace_id, ids["genai"]).page.locator("#span-detail")
    assert "Weather in Paris?" in detail.get_by_role("article", name="user message").inner_text()
    call = detail.locator(".tool-call")
    assert "get_weather" in call.inner_text() and '"city": "Paris"' in call.inner_text()
    result = detail.get_by_role("article", name="tool message").inner_text()
    assert "rainy, 12C" in result and "t1" in result
    assert "It is rainy in Paris." in detail.get_by_label("Output messages").inner_text()


def test_keyboard_moves_through_the_tree_and_selects(ui_server, open_page, rich):
    trace_id, ids = rich
    page = open_trace(ui_server, open_page, trace_id).page
    page.locator(f'li[data-span-id="{ids["root"]}"] a').focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**span={ids['chat']}")
    assert page.locator("#span-detail").get_by_role("heading", name="chat gpt-4o").is_visible()
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**span={ids['genai']}")
    page.locator("#span-detail").get_by_role("heading", name="chat claude").wait_for()
    # Back returns to the previous selection, and the tree marks it.
    page.go_back()
    page.wait_for_url(f"**span={ids['chat']}")
    page.locator("#span-detail").get_by_role("heading", name="chat gpt-4o").wait_for()
    assert page.locator(f'li[data-span-id="{ids["chat"]}"] a').get_attribute("aria-current") == "true"
    assert page.locator('[data-span-tree] a[aria-current="true"]').count() == 1


def test_phone_layout_with_a_span_selected(ui_server, open_page, rich):
    trace_id, ids = rich
    browser_page = open_trace(ui_server, open_page, trace_id, ids["chat"], PHONE)
    page = browser_page.page
    assert page.locator("#span-detail").get_by_role("heading", name="chat gpt-4o").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    browser_page.screenshot("trace-phone")


def test_hostile_values_are_inert(ui_server, open_page, rich):
    trace_id, ids = rich
    browser_page = open_trace(ui_server, open_page, trace_id, ids["chat"])
    page = browser_page.page
    assert "<script>window.__xss = 1</script>" in page.get_by_role("table", name="Attributes", exact=True).inner_text()
    hostile = ui_server.seeded["hostile"]
    page.goto(f"/traces/{hostile.trace_id}")
    assert HOSTILE_TEXT in page.locator("#span-detail").inner_text()
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img").count() == 0
    assert not browser_page.dialogs


def test_long_values_are_cut_with_show_all(ui_server, open_page, rich):
    trace_id, ids = rich
    page = open_trace(ui_server, open_page, trace_id, ids["retrieve"]).page
    cell = page.get_by_role("table", name="Attributes", exact=True).get_by_role("row", name="retrieval.note")
    assert len(cell.locator("pre").inner_text()) < len(LONG_TEXT)
    cell.get_by_role("button", name="Show all").click()
    assert cell.locator("pre").inner_text() == LONG_TEXT
    assert cell.get_by_role("button", name="Show all").count() == 0


def test_add_a_score_annotation(ui_server, open_page, rich):
    trace_id, ids = rich
    browser_page = open_trace(ui_server, open_page, trace_id, ids["chat"])
    page = browser_page.page
    page.get_by_role("button", name="Add a score").click()
    dialog = page.get_by_role("dialog", name="Add a score")
    dialog.get_by_role("button", name="Save score").click()
    assert "name" in dialog.get_by_role("alert").inner_text()
    dialog.get_by_label("Name").fill("helpfulness")
    dialog.get_by_label("Value").fill("0.25")
    dialog.get_by_label("Explanation").fill("did not confirm the amount")
    dialog.get_by_role("button", name="Save score").click()
    page.get_by_role("status").get_by_text("Score “helpfulness” saved").wait_for()
    table = page.get_by_role("table", name="Span scores")
    table.wait_for()
    assert "helpfulness" in table.inner_text() and "annotation" in table.inner_text()
    scores = api_get(ui_server, f"/api/traces/{trace_id}/spans/{ids['chat']}/scores")["items"]
    assert [(s["name"], s["value"], s["source"], s["explanation"]) for s in scores] == [
        ("helpfulness", 0.25, "annotation", "did not confirm the amount")
    ]
    assert "helpfulness" in page.get_by_role("table", name="Trace scores").inner_text()
    assert not browser_page.console_errors


def add_dialog(page):
    return page.get_by_role("dialog", name="Add to dataset")


@pytest.mark.parametrize("viewport,name", [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_select_spans_into_a_new_dataset_then_duplicates(ui_server, open_page, rich, viewport, name):
    trace_id, ids = rich
    dataset = f"refunds-{name}-{uuid.uuid4().hex[:6]}"
    browser_page = open_trace(ui_server, open_page, trace_id, viewport=viewport)
    page = browser_page.page
    assert page.get_by_role("checkbox", name=f"Select span {ids['chat']}").is_hidden()
    page.get_by_role("button", name="Select", exact=True).click()
    page.get_by_role("checkbox", name=f"Select span {ids['chat']}").check()
    page.get_by_role("checkbox", name=f"Select span {ids['tool']}").check()
    bar = page.get_by_role("region", name="Selection")
    assert "2 spans selected" in bar.inner_text()
    assert bar.get_by_role("button", name="Score traces").count() == 0  # spans are scored from the detail
    bar.get_by_role("button", name="Add to dataset").click()
    dialog = add_dialog(page)
    dialog.get_by_label("New dataset").check()
    dialog.get_by_role("textbox", name="Dataset name").fill(dataset)
    dialog.get_by_role("textbox", name="Topic").fill("refunds")
    browser_page.screenshot(f"add-to-dataset-{name}", full_page=False)
    dialog.get_by_role("button", name="Add 2 spans").click()
    page.get_by_role("status").get_by_text(f"2 added to {dataset}").wait_for()
    items = api_get(ui_server, f"/api/datasets/{dataset}/items")["items"]
    assert sorted(i["source_span_id"] for i in items) == sorted([ids["chat"], ids["tool"]])
    assert {i["topic"] for i in items} == {"refunds"} and {i["source_trace_id"] for i in items} == {trace_id}

    # Again, into the dataset that now exists: nothing new, two duplicates.
    page.get_by_role("button", name="Select", exact=True).click()
    page.get_by_role("checkbox", name=f"Select span {ids['chat']}").check()
    page.get_by_role("checkbox", name=f"Select span {ids['tool']}").check()
    bar.get_by_role("button", name="Add to dataset").click()
    dialog.get_by_label("Dataset", exact=True).select_option(dataset)
    dialog.get_by_role("button", name="Add 2 spans").click()
    page.get_by_role("status").get_by_text("2 duplicates").wait_for()
    assert len(api_get(ui_server, f"/api/datasets/{dataset}/items")["items"]) == 2
    assert not browser_page.console_errors


def test_span_detail_shows_dataset_badges_after_adding(ui_server, open_page, rich):
    trace_id, ids = rich
    names = [f"badge-{n}-{uuid.uuid4().hex[:6]}" for n in range(4)]
    page = open_trace(ui_server, open_page, trace_id, ids["answer"]).page
    memberships = page.get_by_label("Datasets", exact=True)
    assert "in none" in memberships.inner_text()
    for n, dataset in enumerate(names):
        memberships.get_by_role("button", name="Add to dataset").click()
        dialog = add_dialog(page)
        dialog.get_by_label("New dataset").check()
        dialog.get_by_role("textbox", name="Dataset name").fill(dataset)
        if n == 0:  # "Create" makes it first; the dialog then offers it as the chosen dataset
            dialog.get_by_role("button", name="Create").click()
            page.get_by_role("status").get_by_text(f"Dataset {dataset} created").wait_for()
            assert dialog.get_by_label("Existing dataset").is_checked()
            assert dialog.get_by_label("Dataset", exact=True).input_value() == dataset
            assert api_get(ui_server, f"/api/datasets/{dataset}")["item_count"] == 0
        dialog.get_by_role("button", name="Add 1 span").click()
        page.get_by_role("status").get_by_text(f"1 added to {dataset}").wait_for()
        memberships = page.get_by_label("Datasets", exact=True)
        if n == 0:
            memberships.get_by_role("link", name=dataset).wait_for()
    memberships.get_by_text("+1 more").wait_for()
    assert memberships.get_by_role("link").count() == 3  # the fourth waits behind "+1 more"
    memberships.get_by_text("+1 more").click()
    assert memberships.get_by_role("link").count() == 4
    api = api_get(ui_server, f"/api/traces/{trace_id}/spans/{ids['answer']}/datasets")["items"]
    assert sorted(m["dataset_name"] for m in api) == sorted(names)


def test_traces_page_selection_adds_whole_traces(ui_server, open_page, rich):
    trace_id, ids = rich
    root_id = ids["root"]
    other = ui_server.seeded["ok"]
    dataset = f"whole-traces-{uuid.uuid4().hex[:6]}"
    browser_page = open_page(ui_server.http_url)
    page = browser_page.page
    page.goto("/traces")
    page.get_by_role("button", name="Select", exact=True).click()
    page.get_by_role("checkbox", name=f"Select trace {trace_id}").check()
    page.get_by_role("checkbox", name=f"Select trace {other.trace_id}").check()
    browser_page.screenshot("traces-selecting-desktop", full_page=False)
    page.set_viewport_size(PHONE)
    browser_page.screenshot("traces-selecting-phone", full_page=False)
    page.set_viewport_size(DESKTOP)
    bar = page.get_by_role("region", name="Selection")
    assert "2 traces selected" in bar.inner_text()
    assert bar.get_by_role("button", name="Score traces").is_enabled()
    bar.get_by_role("button", name="Add to dataset").click()
    dialog = add_dialog(page)
    dialog.get_by_label("New dataset").check()
    dialog.get_by_role("textbox", name="Dataset name").fill(dataset)
    dialog.get_by_role("button", name="Add 2 traces").click()
    page.get_by_role("status").get_by_text(f"2 added from 2 traces to {dataset}").wait_for()
    # A trace becomes one record: its root span (the capture API's trace_ids semantics).
    items = api_get(ui_server, f"/api/datasets/{dataset}/items")["items"]
    assert sorted((i["source_trace_id"], i["source_span_id"]) for i in items) == sorted(
        [(trace_id, root_id), (other.trace_id, other.root_span_id)]
    )
    assert not browser_page.console_errors


def test_unknown_and_invalid_trace_ids(ui_server, open_page, rich):
    page = open_page(ui_server.http_url).page
    response = page.goto(f"/traces/{new_trace_id()}")
    assert response.status == 404
    assert page.get_by_role("heading", name="Trace not found").is_visible()
    assert page.get_by_role("link", name="Back to traces").is_visible()
    response = page.goto("/traces/not-a-trace-id")
    assert response.status == 400
    assert "32 hex characters" in page.get_by_role("alert").inner_text()
    trace_id, _ = rich
    response = page.goto(f"/traces/{trace_id}?span={new_span_id()}")
    assert response.status == 404
    assert "not in this trace" in page.get_by_role("alert").inner_text()
