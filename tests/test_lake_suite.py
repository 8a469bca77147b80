"""Existing API tests, re-run on a DuckLake store (PostgreSQL catalog): one SQL dialect, proven.

`SPANLAKE_TEST_STORE=ducklake-postgres` makes every `ServerProcess` of the suite start on a
fresh lake (tests/lake_env.py). Running the whole suite that way takes minutes (it passes:
`SPANLAKE_TEST_STORE=ducklake-postgres pytest`); this module runs, in a child pytest, the tests
that exercise the SQL of each package: ingest + dedup, queries and filters, datasets and items,
capture (API, span rules, trace-scope judge), scoring batches and score writes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lake_env import STORE_ENV, postgres_reachable

HERE = Path(__file__).resolve().parent

SUBSET = [
    "test_ingest_grpc.py::test_same_span_twice_is_stored_once",
    "test_ingest_grpc.py::test_nanosecond_times_dedup_and_lookup_exactly",
    "test_ingest_http.py::test_json_partial_success",
    "test_query.py",
    "test_datasets.py::test_items_versions_and_as_of",
    "test_datasets.py::test_bulk_update_and_delete",
    "test_datasets_capture.py::test_capture_span_ids_keeps_chat_messages_and_dedups",
    "test_datasets_capture.py::test_capture_trace_roots_or_filtered_spans",
    "test_capture_rules.py::test_span_rules_capture_exactly_the_matching_spans",
    "test_capture_rules.py::test_trace_scope_waits_for_quiet_then_captures_root_or_chosen_spans",
    "test_scoring_api.py::test_builtin_and_configured_code_scorers",
    "test_scoring_api.py::test_one_failing_trace_does_not_stop_the_others",
]


@pytest.mark.skipif(
    not postgres_reachable(), reason="PostgreSQL is not reachable on 127.0.0.1:5432 (the lake catalog these tests need)"
)
def test_api_suite_subset_passes_on_a_postgres_lake(tmp_path: Path):
    env = {**os.environ, STORE_ENV: "ducklake-postgres"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "run"),
         *(str(HERE / test) for test in SUBSET)],
        cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
