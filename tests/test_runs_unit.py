"""The comparison scorers, the target answer parsing and the run request checks, without a server."""

from __future__ import annotations

import pytest

from spanlake.datasets.errors import Invalid
from spanlake.runs.target import parse_answer, traceparent
from spanlake.runs.validate import posted_results, run_spec
from spanlake.scoring.base import ScoreContext, ScoringError
from spanlake.scoring.comparison import json_same, levenshtein, similarity, spanlake_scorers
from spanlake.scoring.registry import ScorerRegistry
from spanlake.scoring.config import ScoringConfig

SCORERS = {t.name: t for t in spanlake_scorers()}


def score(name: str, actual, expected, **params) -> float:
    ctx = ScoreContext(trace_id="", spans=[], target={"span_id": None}, expected_output=expected, actual_output=actual)
    return SCORERS[name].create(params).score(ctx).normalized()[0]


@pytest.mark.parametrize("a,b,distance", [
    ("", "", 0), ("abc", "", 3), ("kitten", "sitting", 3), ("flaw", "lawn", 2), ("Lyon", "Paris", 5),
    ("Madrid is the capital", "Madrid", 15), ("gumbo", "gambol", 2),
])
def test_levenshtein_distances(a, b, distance):
    assert levenshtein(a, b) == levenshtein(b, a) == distance


def test_similarity_is_normalized():
    assert similarity("", "") == 1.0 and similarity("abc", "xyz") == 0.0
    assert similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert score("levenshtein_similarity", "KITTEN ", "sitting", ignore_case=True) == pytest.approx(1 - 3 / 7)
    assert score("levenshtein_similarity", "abcd", "abxy", max_chars=2) == 1.0  # only "ab" compared


def test_exact_and_contains():
    assert score("exact_match", " Paris\n", "Paris") == 1.0  # stripped by default
    assert score("exact_match", "paris", "Paris") == 0.0
    assert score("exact_match", "paris", "Paris", ignore_case=True) == 1.0
    assert score("exact_match", {"b": 2, "a": 1}, {"a": 1, "b": 2}) == 1.0  # canonical JSON
    assert score("exact_match", 42, "42") == 1.0
    assert score("contains_expected", "The capital is PARIS.", "Paris") == 1.0
    assert score("contains_expected", "The capital is PARIS.", "Paris", ignore_case=False) == 0.0


def test_json_equal():
    assert score("json_equal", '{"a": [1, 2.0]}', {"a": [1, 2]}) == 1.0  # a string holding JSON is parsed
    assert score("json_equal", {"a": True}, {"a": 1}) == 0.0  # true is not 1
    assert score("json_equal", [1, 2], [2, 1]) == 0.0
    assert score("json_equal", "Paris", "Paris") == 1.0
    assert json_same({"x": None}, {"x": None}) and not json_same({"x": None}, {})


def test_no_expected_output_fails_the_score():
    with pytest.raises(ScoringError, match="no expected_output"):
        score("exact_match", "x", None)


def test_comparison_scorers_are_builtins_of_the_registry():
    registry = ScorerRegistry.load(ScoringConfig(), entry_points=False)
    for name in SCORERS:
        assert registry.get(name) is not None and registry.get(name).origin == "builtin"


def test_parse_answer():
    call = parse_answer(0, b'{"output": "hi", "usage": {"prompt_tokens": 3, "completion_tokens": 4}}', "", 1.0)
    assert (call.output, call.input_tokens, call.output_tokens, call.total_tokens) == ('"hi"', 3, 4, None)
    assert parse_answer(0, b"plain words", "plain words", 1.0).output == '"plain words"'
    assert parse_answer(0, b"[1, 2]", "", 1.0).output == "[1,2]"
    reported = parse_answer(0, b'{"output": 1, "trace_id": "' + b"a" * 32 + b'", "tokens": 9}', "", 1.0)
    assert (reported.trace_id, reported.total_tokens) == ("a" * 32, 9)
    assert traceparent("a" * 32, "b" * 16) == f"00-{'a' * 32}-{'b' * 16}-01"


@pytest.mark.parametrize("body,words", [
    ({"target": {"url": "http://[::1"}}, "target.url"),
    ({"target": {"url": "http://x", "headers": {"X-A": "é"}}}, "ASCII"),
    ({"target": {"url": "http://x", "timeout_s": 0}}, "timeout_s"),
    ({"target": {"url": "http://x", "max_attempts": 9}}, "max_attempts"),
    ({"name": "compare"}, "compare"),
    ({"name": "a,b"}, ","),
    ({"scorers": "exact_match"}, "scorers"),
    ({"as_of": 5}, "as_of"),
])
def test_run_spec_refusals(body, words):
    with pytest.raises(Invalid, match=words):
        run_spec(body)


def test_run_spec_and_posted_results():
    spec = run_spec({"target": {"url": "https://agent.local/run"}, "scorers": ["a", "a", "b"]})
    assert (spec.mode, spec.scorers, spec.concurrency, spec.target["max_attempts"]) == ("server", ("a", "b"), 4, 1)
    assert run_spec({}).mode == "client"
    rows = posted_results({"results": [{"item_id": "i", "output": "x"}, {"item_id": "i", "error": "late", "tokens": 5}]})
    assert len(rows) == 1 and (rows[0]["status"], rows[0]["error"], rows[0]["total_tokens"]) == ("error", "late", 5)


def test_as_of_out_of_range_is_a_client_error():
    with pytest.raises(Invalid, match="as_of"):
        run_spec({"as_of": "0001-01-01T00:00:00+01:00"})
