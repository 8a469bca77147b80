"""The datasets pages in a real browser: list, search, expand, create/rename/delete/export, and one
dataset's records: topic edit, JSON editor, versions (As of), bulk actions, sort, import, paging."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import time
from urllib.parse import quote

import httpx
import pytest

from datasets_client import unique
from ui_browser import DESKTOP, PHONE
from ui_seed import HOSTILE_TEXT


@pytest.fixture(scope="module")
def api(ui_server):
    with httpx.Client(base_url=ui_server.http_url, timeout=30) as client:
        yield client


def make_dataset(api: httpx.Client, records: list[dict], name: str | None = None) -> tuple[str, list[dict]]:
    name = name or unique("ui")
    assert api.post("/api/datasets", json={"name": name}).status_code == 201
    if not records:
        return name, []
    resp = api.post(f"/api/datasets/{quote(name, safe='')}/items", json={"items": records})
    assert resp.status_code == 201, resp.text
    return name, resp.json()["items"]


def current_items(api: httpx.Client, name: str, **params) -> list[dict]:
    resp = api.get(f"/api/datasets/{quote(name, safe='')}/items", params={"limit": 500, **params})
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def dataset_row(page, name: str):
    return page.locator("li.dataset").filter(has=page.get_by_role("button", name=name, exact=True))


def record_row(page, item_id: str):
    return page.get_by_role("row").filter(has=page.get_by_role("checkbox", name=f"Select record {item_id}"))


def page_ids(page) -> list[str]:
    return page.locator("table.records tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")


# --- /datasets ---------------------------------------------------------------------------------


def test_empty_list_suggests_adding_spans(make_server, open_page):
    server = make_server()
    browser_page = open_page(server.http_url)
    page = browser_page.page
    page.goto("/datasets")
    assert page.get_by_text("No datasets yet.").is_visible()
    assert page.get_by_role("link", name="Go to traces").get_attribute("href") == "/traces"
    assert not browser_page.console_errors


def test_create_search_expand_and_see_all(ui_server, api, open_page):
    taken, _ = make_dataset(api, [])
    name = unique("created")
    browser_page = open_page(ui_server.http_url)
    page = browser_page.page
    page.goto("/datasets")
    page.get_by_role("button", name="New dataset").click()
    dialog = page.get_by_role("dialog", name="New dataset")
    dialog.get_by_role("textbox", name="Dataset name").fill(taken)
    dialog.get_by_role("button", name="Create").click()
    # A taken name: the API's own message, inside the dialog, which stays open.
    assert "already exists" in dialog.get_by_role("alert").inner_text()
    dialog.get_by_role("textbox", name="Dataset name").fill(name)
    dialog.get_by_role("button", name="Create").click()
    page.wait_for_url("**/datasets?**")
    assert page.get_by_role("status").get_by_text(f"Created dataset {name}").is_visible()
    assert api.get(f"/api/datasets/{name}").json()["item_count"] == 0

    api.post(f"/api/datasets/{name}/items", json={"items": [{"input": f"question {n}", "topic": "math" if n % 2 else None} for n in range(7)]})
    page.get_by_role("searchbox", name="Search datasets").fill(name[-6:])
    page.wait_for_url(f"**q={name[-6:]}**")  # the search lives in the URL, so it can be shared
    rows = page.locator("li.dataset")
    rows.first.wait_for()
    assert rows.count() == 1 and "7 records" in rows.first.inner_text()

    disclosure = page.get_by_role("button", name=name, exact=True)
    disclosure.click()
    assert disclosure.get_attribute("aria-expanded") == "true"
    preview = page.get_by_role("list", name=f"First records of {name}")
    preview.wait_for()
    assert preview.get_by_role("listitem").count() == 5
    assert "question 0" in preview.inner_text() and "Topic: math" in preview.inner_text()
    browser_page.screenshot("datasets-desktop")
    page.set_viewport_size(PHONE)
    browser_page.screenshot("datasets-phone")
    page.set_viewport_size(DESKTOP)
    disclosure.click()
    assert disclosure.get_attribute("aria-expanded") == "false" and not preview.is_visible()
    rows.first.get_by_text("7 records", exact=True).click()  # the row's free space expands it too
    assert disclosure.get_attribute("aria-expanded") == "true" and preview.is_visible()
    page.get_by_role("link", name="See all 7 records").click()
    page.wait_for_url(f"**/datasets/{name}")
    assert page.get_by_role("heading", name=name).is_visible()
    assert len(page_ids(page)) == 7

    # The same page opened from its shared URL, and a search that matches nothing.
    page.goto(f"/datasets?q={name}")
    assert page.locator("li.dataset").count() == 1
    page.goto("/datasets?q=no-such-dataset-anywhere")
    assert page.get_by_text("No matches.").is_visible()
    # Only the refused create (409) was logged by the browser: no script error.
    assert [e for e in browser_page.console_errors if "409" not in e] == []


def test_rename_and_delete_with_confirmation(ui_server, api, open_page):
    name, _ = make_dataset(api, [{"input": "a"}, {"input": "b"}])
    new_name = unique("renamed")
    page = open_page(ui_server.http_url).page
    page.goto(f"/datasets?q={name}")
    page.get_by_role("button", name=f"Actions for {name}").click()
    page.get_by_role("button", name="Rename").click()
    dialog = page.get_by_role("dialog", name="Rename dataset")
    dialog.get_by_role("textbox", name="Dataset name").fill(new_name)
    dialog.get_by_role("button", name="Rename").click()
    page.get_by_role("status").get_by_text(f"Renamed {name} to {new_name}").wait_for()
    assert api.get(f"/api/datasets/{new_name}").json()["item_count"] == 2
    assert api.get(f"/api/datasets/{name}").status_code == 404

    page.goto(f"/datasets?q={new_name}")
    page.get_by_role("button", name=f"Actions for {new_name}").click()
    page.get_by_role("button", name="Delete").click()
    confirm = page.get_by_role("dialog", name="Are you sure?")
    assert "2 records" in confirm.inner_text()
    confirm.get_by_role("button", name="Cancel").click()
    assert api.get(f"/api/datasets/{new_name}").status_code == 200  # cancel keeps it

    page.get_by_role("button", name=f"Actions for {new_name}").click()
    page.get_by_role("button", name="Delete").click()
    confirm.get_by_role("button", name="Delete").click()
    page.get_by_role("status").get_by_text(f"Deleted dataset {new_name}").wait_for()
    assert api.get(f"/api/datasets/{new_name}").status_code == 404
    assert page.get_by_text("No matches.").is_visible()


def test_export_links_download_each_format(ui_server, api, open_page):
    name, made = make_dataset(api, [{"input": [{"role": "user", "content": "hi"}], "expected_output": {"role": "assistant", "content": "hello"}, "topic": "greet"}])
    page = open_page(ui_server.http_url).page
    page.goto(f"/datasets?q={name}")
    page.get_by_role("button", name=f"Actions for {name}").click()
    page.get_by_role("button", name="Export").click()
    dialog = page.get_by_role("dialog", name=f"Export {name}")
    contents = {}
    for label in ("JSONL", "CSV", "OpenAI fine-tuning", "Parquet"):
        with page.expect_download() as info:
            dialog.get_by_role("link", name=label).click()
        download = info.value
        contents[label] = (download.suggested_filename, open(download.path(), "rb").read())
    filename, body = contents["JSONL"]
    assert filename.endswith(".jsonl")
    (row,) = [json.loads(line) for line in body.decode().splitlines()]
    assert row["id"] == made[0]["id"] and row["topic"] == "greet"
    filename, body = contents["CSV"]
    assert filename.endswith(".csv")
    (record,) = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert record["topic"] == "greet"
    _, body = contents["OpenAI fine-tuning"]
    assert json.loads(body.decode().splitlines()[0])["messages"][-1]["content"] == "hello"
    filename, body = contents["Parquet"]
    assert filename.endswith(".parquet") and body[:4] == b"PAR1"


def test_hostile_values_render_inert(ui_server, api, open_page):
    hostile_name = f'<img src=x onerror="window.__xss = 3"> {unique("x")}'
    name, _ = make_dataset(api, [{"input": HOSTILE_TEXT, "expected_output": HOSTILE_TEXT, "topic": "<b>bold</b>"}], name=hostile_name)
    browser_page = open_page(ui_server.http_url)
    page = browser_page.page
    page.goto("/datasets")
    page.get_by_role("button", name=name, exact=True).click()
    preview = page.get_by_role("list", name=f"First records of {name}")
    assert HOSTILE_TEXT in preview.inner_text()
    page.goto(f"/datasets/{quote(name, safe='')}")
    assert page.get_by_role("heading", name=name).is_visible()
    assert page.get_by_role("button", name="<b>bold</b>").is_visible()
    assert HOSTILE_TEXT in page.locator("table.records").inner_text()
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img, main b").count() == 0
    assert not browser_page.dialogs


# --- /datasets/{name} --------------------------------------------------------------------------


def test_inline_topic_edit(ui_server, api, open_page):
    name, (first, second) = make_dataset(api, [{"input": "one", "topic": "old"}, {"input": "two"}])
    page = open_page(ui_server.http_url).page
    page.goto(f"/datasets/{name}")
    row = record_row(page, first["id"])
    row.get_by_role("button", name="old").click()
    box = row.get_by_role("textbox", name="Topic")
    box.fill("new topic")
    box.press("Enter")
    row.get_by_role("button", name="new topic").wait_for()
    assert page.get_by_role("status").get_by_text("Topic set to new topic").is_visible()
    assert api.get(f"/api/datasets/{name}/items/{first['id']}").json()["topic"] == "new topic"

    row2 = record_row(page, second["id"])
    row2.get_by_role("button", name="Add topic").click()
    row2.get_by_role("textbox", name="Topic").fill("never saved")
    row2.get_by_role("textbox", name="Topic").press("Escape")
    assert row2.get_by_role("button", name="Add topic").is_visible()
    assert api.get(f"/api/datasets/{name}/items/{second['id']}").json()["topic"] is None


def test_json_editor_validates_saves_a_version_and_as_of_shows_the_old_one(ui_server, api, open_page):
    name, (item,) = make_dataset(api, [{"input": {"question": "2+2?"}, "expected_output": "4", "metadata": {"src": "seed"}}])
    time.sleep(1.1)  # "As of" has one-second steps: leave a whole second between the versions
    browser_page = open_page(ui_server.http_url)
    page = browser_page.page
    page.goto(f"/datasets/{name}")
    record_row(page, item["id"]).get_by_role("button", name="Edit data").click()
    dialog = page.get_by_role("dialog", name=re.compile("Edit record"))
    editor = dialog.get_by_role("textbox", name="Record JSON")
    assert json.loads(editor.input_value()) == {"input": {"question": "2+2?"}, "expected_output": "4", "metadata": {"src": "seed"}}
    save = dialog.get_by_role("button", name="Save changes")
    assert save.is_enabled()

    editor.fill('{\n  "input": {"question": "2+2?"},\n  "expected_output" "four"\n}')
    alert = dialog.get_by_role("alert")
    assert "Line 3, column 21" in alert.inner_text()
    assert save.is_disabled()
    browser_page.screenshot("dataset-editor-desktop", full_page=False)
    page.set_viewport_size(PHONE)
    browser_page.screenshot("dataset-editor-phone", full_page=False)
    page.set_viewport_size(DESKTOP)
    editor.fill('{"input": {"question": "2+2?"}, "expected_output": "four", "metadata": {"src": "edited"}, "id": 1}')
    assert "id cannot be edited" in alert.inner_text() and save.is_disabled()
    editor.fill('{"input": {"question": "2+2?"}, "expected_output": "four", "metadata": {"src": "edited"}}')
    assert not alert.is_visible() and save.is_enabled()
    save.click()
    page.get_by_role("status").get_by_text("Record saved").wait_for()

    now = api.get(f"/api/datasets/{name}/items/{item['id']}").json()
    assert now["id"] == item["id"] and now["expected_output"] == "four" and now["metadata"] == {"src": "edited"}
    old = current_items(api, name, as_of=item["valid_from"])
    assert [(i["id"], i["expected_output"]) for i in old] == [(item["id"], "4")]
    assert "four" in record_row(page, item["id"]).inner_text()

    # The UI's "As of": the second after the first version opened.
    first = dt.datetime.fromisoformat(item["valid_from"].replace("Z", "+00:00")).replace(microsecond=0) + dt.timedelta(seconds=1)
    page.get_by_label("As of (UTC)").fill(first.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**as_of=**")
    assert "viewing a past version" in page.locator("#past-notice").inner_text()
    table = page.locator("table.records")
    assert "4" in table.locator("td.output-cell").inner_text() and "four" not in table.inner_text()
    assert page.get_by_role("button", name="Edit data").count() == 0  # editing is disabled
    assert page.get_by_role("checkbox").count() == 0
    assert not browser_page.console_errors


def test_select_all_bulk_topic_and_bulk_delete(ui_server, api, open_page):
    name, made = make_dataset(api, [{"input": f"q{n}"} for n in range(4)])
    page = open_page(ui_server.http_url, PHONE).page  # the phone layout keeps every control
    page.goto(f"/datasets/{name}")
    page.get_by_role("checkbox", name="Select all").check()
    assert page.get_by_text("4 selected", exact=True).is_visible()
    page.get_by_role("button", name="Set topic").click()
    dialog = page.get_by_role("dialog", name="Set topic of 4 records")
    dialog.get_by_role("textbox", name="Topic").fill("bulk")
    dialog.get_by_role("button", name="Apply").click()
    page.get_by_role("status").get_by_text("Set the topic of 4 records").wait_for()
    assert {i["topic"] for i in current_items(api, name)} == {"bulk"}

    doomed = [made[0]["id"], made[2]["id"]]
    for item_id in doomed:
        page.get_by_role("checkbox", name=f"Select record {item_id}").check()
    page.get_by_role("button", name="Delete selected").click()
    page.get_by_role("dialog", name="Are you sure?").get_by_role("button", name="Delete").click()
    page.get_by_role("status").get_by_text("Deleted 2 records").wait_for()
    assert sorted(i["id"] for i in current_items(api, name)) == sorted([made[1]["id"], made[3]["id"]])

    # One record from its own trash button, after a cancelled first try.
    trash = page.get_by_role("button", name=f"Delete record {made[1]['id']}")
    trash.click()
    page.get_by_role("dialog", name="Are you sure?").get_by_role("button", name="Cancel").click()
    assert len(current_items(api, name)) == 2
    trash.click()
    page.get_by_role("dialog", name="Are you sure?").get_by_role("button", name="Delete").click()
    page.get_by_role("status").get_by_text("Record deleted").wait_for()
    assert [i["id"] for i in current_items(api, name)] == [made[3]["id"]]
    assert page_ids(page) == [made[3]["id"]]


def test_sort_from_the_select_and_the_headers_with_source_links(ui_server, api, open_page):
    seeded = ui_server.seeded
    name, _ = make_dataset(api, [])
    spans = {role: (seeded[role].trace_id, seeded[role].span_ids[2]) for role in ("ok", "error", "slow")}
    resp = api.post(f"/api/datasets/{name}/capture", json={"span_ids": [s for _, s in spans.values()]})
    assert resp.json()["captured"] == 3, resp.text
    by_span = {i["source_span_id"]: i for i in current_items(api, name)}
    ids = {role: by_span[span]["id"] for role, (_, span) in spans.items()}
    for role, topic in (("ok", "zeta"), ("error", "alpha")):
        api.patch(f"/api/datasets/{name}/items/{ids[role]}", json={"topic": topic})
    for role, value in (("ok", 0.9), ("slow", 0.1)):
        trace_id, span_id = spans[role]
        body = {"trace_id": trace_id, "span_id": span_id, "name": unique("ui-eval"), "value": value}
        assert api.post("/api/scores", json=body).status_code == 201, body
    browser_page = open_page(ui_server.http_url)
    page = browser_page.page
    page.goto(f"/datasets/{name}")
    assert page_ids(page) == [i["id"] for i in current_items(api, name)]  # timestamp, as the API
    trace_id, span_id = spans["ok"]
    link = record_row(page, ids["ok"]).get_by_role("link", name=re.compile("span"))
    assert link.get_attribute("href") == f"/traces/{trace_id}?span={span_id}"

    sort_by = page.get_by_role("combobox", name="Sort by")
    sort_by.select_option(label="Topic")
    page.wait_for_url("**sort=topic**")
    assert page_ids(page) == [ids["error"], ids["ok"], ids["slow"]]  # empty topic last
    sort_by = page.get_by_role("combobox", name="Sort by")
    sort_by.select_option(label="Evaluation")
    page.wait_for_url("**sort=evaluation**")
    assert page_ids(page) == [ids["slow"], ids["ok"], ids["error"]]  # unscored last
    assert "0.9" in record_row(page, ids["ok"]).inner_text()
    browser_page.screenshot("dataset-desktop")
    page.set_viewport_size(PHONE)
    browser_page.screenshot("dataset-phone")
    page.set_viewport_size(DESKTOP)

    page.get_by_role("columnheader", name="Evaluation").get_by_role("link").click()
    page.wait_for_url("**order=desc**")
    assert page_ids(page) == [ids["ok"], ids["slow"], ids["error"]]  # unscored last either way
    page.get_by_role("columnheader", name="Topic").get_by_role("link").click()
    page.wait_for_url("**sort=topic**")
    assert page_ids(page) == [ids["error"], ids["ok"], ids["slow"]]
    assert page.get_by_role("columnheader", name="Topic").get_attribute("aria-sort") == "ascending"
    page.get_by_role("columnheader", name="Timestamp").get_by_role("link").click()
    page.wait_for_url(re.compile(r"/datasets/[^?]+$"))
    assert page.get_by_role("combobox", name="Sort by").input_value() == "timestamp"
    assert page.get_by_role("link", name="Runs").get_attribute("href") == f"/datasets/{name}/runs"


def test_import_shows_row_errors_then_imports(ui_server, api, open_page, tmp_path):
    name, _ = make_dataset(api, [])
    bad = tmp_path / "records.jsonl"
    bad.write_text('{"input": "ok row", "topic": "t"}\n{"expected_output": "no input"}\n{"input": "third"}\n')
    page = open_page(ui_server.http_url).page
    page.goto(f"/datasets/{name}")
    assert page.get_by_text("No records in this dataset yet.").is_visible()
    page.get_by_role("button", name="Import").click()
    dialog = page.get_by_role("dialog", name="Import records")
    dialog.get_by_label("File").set_input_files(str(bad))
    dialog.get_by_role("button", name="Import").click()
    alert = dialog.get_by_role("alert")
    alert.get_by_role("listitem").first.wait_for()
    assert re.search(r"Row 2: .*input", alert.inner_text())
    assert current_items(api, name) == []  # nothing was imported

    bad.write_text('{"input": "ok row", "topic": "t"}\n{"input": "third"}\n')
    dialog.get_by_label("File").set_input_files(str(bad))
    dialog.get_by_role("button", name="Import").click()
    page.get_by_role("status").get_by_text("Imported 2 records").wait_for()
    assert sorted(i["input"] for i in current_items(api, name)) == ["ok row", "third"]
    assert len(page_ids(page)) == 2


def test_big_dataset_pages(ui_server, api, open_page):
    name, _ = make_dataset(api, [{"input": f"row {n:03d}"} for n in range(120)])
    page = open_page(ui_server.http_url).page
    page.goto(f"/datasets/{name}")
    first = page_ids(page)
    assert len(first) == 50
    page.get_by_role("link", name="Next page").click()
    second = page_ids(page)
    assert len(second) == 50 and not set(first) & set(second)
    page.get_by_role("link", name="Next page").click()
    third = page_ids(page)
    assert len(third) == 20 and page.get_by_role("link", name="Next page").count() == 0
    assert first + second + third == [i["id"] for i in current_items(api, name)]
    page.get_by_role("link", name="First page").click()
    assert page_ids(page) == first


def test_missing_dataset_and_bad_view_say_so(ui_server, api, open_page):
    page = open_page(ui_server.http_url).page
    response = page.goto("/datasets/not-a-dataset-here")
    assert response.status == 404
    assert "not found" in page.get_by_role("alert").inner_text()
    name, _ = make_dataset(api, [{"input": "x"}])
    response = page.goto(f"/datasets/{name}?as_of=yesterday")
    assert response.status == 400 and "as_of" in page.get_by_role("alert").inner_text()


def test_expanding_a_dataset_deleted_meanwhile_shows_an_error(ui_server, api, open_page):
    name, _ = make_dataset(api, [{"input": "x"}])
    page = open_page(ui_server.http_url).page
    page.goto(f"/datasets?q={name}")
    assert api.delete(f"/api/datasets/{name}").status_code == 204
    page.get_by_role("button", name=name, exact=True).click()
    assert "Could not load the records (HTTP 404)" in page.get_by_role("alert").inner_text()


def test_a_broken_list_link_shows_an_error(ui_server, open_page):
    page = open_page(ui_server.http_url).page
    response = page.goto("/datasets?cursor=not-a-cursor")
    assert response.status == 400
    assert page.get_by_role("alert").inner_text()
    assert page.get_by_role("button", name="New dataset").is_visible()  # the page still works
