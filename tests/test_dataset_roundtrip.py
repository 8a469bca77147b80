"""Round trips through the real server: export -> import -> export gives the same file, and the
imported items hold the values (and types) the first dataset held, for jsonl, csv and parquet.

Hypothesis generates items with awkward values: numbers and booleans where text was expected,
strings that look like JSON (`"42"`, `"true"`, `"{\\"a\\":1}"`, `""`), nested objects, unicode,
control characters, metadata keys with spaces and dots, tags with commas.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from datasets_client import add_items, assert_error, client, items, new_dataset

FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
EXAMPLES, MIN_ITEMS = 10, 50  # at least 500 items per format
EXPORT_ONLY = ("id", "created_at", "updated_at")
FIELDS = ("input", "expected_output", "metadata", "topic", "tags", "source_trace_id", "source_span_id")

any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
plain_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
json_looking = st.sampled_from(["42", "-1.5", "true", "false", "null", "", " ", '{"a": 1}', "[1, 2]", '"q"', "1e5", " 7 "])
scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | any_text | json_looking
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3), max_leaves=6
)
tags = st.lists(plain_text.filter(lambda t: t.strip()) | st.sampled_from(["a,b", "[x", " pad "]), max_size=3)
hex_ids = st.text("0123456789abcdef", min_size=32, max_size=32).filter(lambda t: set(t) != {"0"})
item = st.fixed_dictionaries(
    {"input": json_values.filter(lambda v: v is not None)},
    optional={
        "expected_output": json_values,
        "metadata": st.dictionaries(plain_text | st.sampled_from(["a.b", " sp ", "metadata"]), json_values, max_size=3),
        "topic": plain_text | json_looking,
        "tags": tags,
        "source_trace_id": hex_ids,
        "source_span_id": hex_ids.map(lambda t: t[:16]),
    },
)


@pytest.fixture(scope="module")
def http(shared_server):
    with client(shared_server) as c:
        yield c


def export(http, dataset: str, fmt: str) -> bytes:
    resp = http.get(f"/api/datasets/{dataset}/export", params={"format": fmt})
    assert resp.status_code == 200, resp.text
    return resp.content


def comparable(fmt: str, body: bytes) -> list[Any]:
    """The file's rows without the columns a new dataset changes (ids, times)."""
    if fmt == "jsonl":
        rows = [json.loads(line) for line in body.decode().split("\n") if line]  # not splitlines: U+2028
        return [{k: v for k, v in row.items() if k not in EXPORT_ONLY} for row in rows]
    if fmt == "csv":
        records = list(csv.reader(io.StringIO(body.decode(), newline="")))
        keep = [n for n, name in enumerate(records[0]) if name not in EXPORT_ONLY]
        return [[record[n] for n in keep] for record in records]
    return pq.read_table(pa.BufferReader(body)).drop_columns(list(EXPORT_ONLY)).to_pylist()


def values(listing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: it.get(k) for k in FIELDS} for it in listing]


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_import_export_is_identical(http, fmt):
    seen = []

    @settings(
        # No shrinking: each example costs several requests, and a failing one is shown as is.
        max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(st.lists(item, min_size=MIN_ITEMS, max_size=MIN_ITEMS + 5))
    def round_trip(generated: list[dict[str, Any]]) -> None:
        source = new_dataset(http)["id"]
        add_items(http, source, generated)
        first = export(http, source, fmt)
        target = new_dataset(http)["id"]
        resp = http.post(f"/api/datasets/{target}/import", content=first, headers={"content-type": FORMATS[fmt]})
        assert resp.status_code == 201, resp.text
        assert values(items(http, target)) == values(items(http, source))  # same values, same types
        assert comparable(fmt, export(http, target, fmt)) == comparable(fmt, first)
        seen.append(len(generated))

    round_trip()
    assert sum(seen) >= EXAMPLES * MIN_ITEMS


def test_csv_records_types_readably(http):
    """What the README promises about a CSV cell, checked on a file a person could write too."""
    d = new_dataset(http)["id"]
    add_items(http, d, [
        {"input": "plain", "expected_output": 42, "metadata": {"k": 1, "s": "1", "b": True, "j": '{"a":1}'}},
    ])
    header, row = list(csv.reader(io.StringIO(export(http, d, "csv").decode(), newline="")))
    cells = dict(zip(header, row))
    assert (cells["input"], cells["expected_output"]) == ("plain", "42")
    assert (cells["metadata.k"], cells["metadata.s"], cells["metadata.b"]) == ("1", '"1"', "true")
    assert cells["metadata.j"] == json.dumps('{"a":1}')
    hand = new_dataset(http)["id"]
    body = 'input,expected_output,metadata.n\nwhat is 2+2?,4,"""4"""\n"[{""role"": ""user""}]",true,x\n'
    resp = http.post(f"/api/datasets/{hand}/import", content=body, headers={"content-type": "text/csv"})
    assert resp.status_code == 201, resp.text
    got = values(items(http, hand))
    assert [(g["input"], g["expected_output"], g["metadata"]) for g in got] == [
        ("what is 2+2?", 4, {"n": "4"}),
        ([{"role": "user"}], True, {"n": "x"}),
    ]


def test_bad_parquet_imports_are_refused(http):
    d = new_dataset(http)["id"]
    post = lambda body: http.post(f"/api/datasets/{d}/import", content=body, headers={"content-type": FORMATS["parquet"]})
    assert_error(post(b"not parquet"), 400, "Parquet")
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"input": ["q"], "surprise": [1]}), sink)
    assert_error(post(sink.getvalue().to_pybytes()), 400, "surprise")
    assert items(http, d) == []
