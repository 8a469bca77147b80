"""Finding items in a dataset: `search=` over input, expected output and metadata, `metadata.<key>=`
filters, and unknown parameters refused by name."""

from __future__ import annotations

import pytest

from datasets_client import add_items, assert_error, client, items, new_dataset


@pytest.fixture(scope="module")
def http(shared_server):
    with client(shared_server) as c:
        yield c


@pytest.fixture(scope="module")
def dataset(http):
    d = new_dataset(http)["id"]
    add_items(http, d, [
        {"input": "Refund my ORDER please", "expected_output": "sure", "metadata": {"lang": "en", "tier": 1}},
        {"input": {"messages": [{"role": "user", "content": "hola"}]}, "expected_output": "order received",
         "metadata": {"lang": "es", "tier": "1"}},
        {"input": "weather?", "metadata": {"lang": "en", "note": "customer said order"}},
        {"input": "nothing", "expected_output": {"ok": True}},
    ])
    return d


def inputs(http, d, **params):
    return [it["input"] for it in items(http, d, **params)]


def test_search_looks_in_input_expected_output_and_metadata_in_any_case(http, dataset):
    assert inputs(http, dataset, search="order") == [
        "Refund my ORDER please", {"messages": [{"role": "user", "content": "hola"}]}, "weather?"
    ]
    assert inputs(http, dataset, search="HOLA") == [{"messages": [{"role": "user", "content": "hola"}]}]
    assert inputs(http, dataset, search="nope") == []


def test_metadata_filters_match_the_value_as_text_and_combine(http, dataset):
    assert inputs(http, dataset, **{"metadata.lang": "en"}) == ["Refund my ORDER please", "weather?"]
    assert len(inputs(http, dataset, **{"metadata.tier": "1"})) == 2  # the number 1 and the string "1"
    assert inputs(http, dataset, **{"metadata.lang": "en", "search": "weather"}) == ["weather?"]
    both = http.get(f"/api/datasets/{dataset}/items", params=[("metadata.lang", "en"), ("metadata.lang", "es")])
    assert len(both.json()["items"]) == 3  # repeated: any of the values
    assert inputs(http, dataset, **{"metadata.missing": "x"}) == []


def test_unknown_parameters_are_refused_by_name(http, dataset):
    err = assert_error(http.get(f"/api/datasets/{dataset}/items", params={"serch": "x", "limt": "2"}), 400, "limt, serch")
    assert "metadata.<key>" in err["message"]
    assert_error(http.get(f"/api/datasets/{dataset}/items", params={"metadata.": "x"}), 400, "metadata.")
