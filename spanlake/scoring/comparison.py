"""Scorers that compare what a run produced with the dataset item's expected output.

Registered through the same `spanlake_scorers` hook as every built-in. They read
`ctx.actual_output` (falling back to the scored span's output) and `ctx.expected_output`; an item
without an expected output cannot be compared, so scoring it fails with that reason.

Texts: strings as they are, anything else as canonical JSON (sorted keys, no spaces), so
`{"a": 1, "b": 2}` and `{"b":2,"a":1}` are the same text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from spanlake.scoring.base import FunctionScorer, ScoreContext, ScoreResult, ScorerType, ScoringError

DEFAULT_MAX_CHARS = 2000


def _pair(ctx: ScoreContext) -> tuple[Any, Any]:
    if ctx.expected_output is None:
        raise ScoringError("the item has no expected_output to compare with")
    actual = ctx.actual_output if ctx.actual_output is not None else ctx.output
    return actual, ctx.expected_output


def canonical(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _texts(ctx: ScoreContext, params: Mapping[str, Any], *, strip_default: bool = True) -> tuple[str, str]:
    actual, expected = (canonical(v) for v in _pair(ctx))
    if params.get("strip", strip_default):
        actual, expected = actual.strip(), expected.strip()
    if params.get("ignore_case", False):
        actual, expected = actual.casefold(), expected.casefold()
    return actual, expected


class ExactMatch:
    def __init__(self, params: Mapping[str, Any]):
        self.params = dict(params)

    def score(self, ctx: ScoreContext) -> ScoreResult:
        actual, expected = _texts(ctx, self.params)
        if actual == expected:
            return ScoreResult(True, explanation="output equals the expected output")
        return ScoreResult(False, explanation=f"expected {_short(expected)}, got {_short(actual)}")


class ContainsExpected:
    def __init__(self, params: Mapping[str, Any]):
        self.params = {"ignore_case": True, **params}

    def score(self, ctx: ScoreContext) -> ScoreResult:
        actual, expected = _texts(ctx, self.params)
        if expected in actual:
            return ScoreResult(True, explanation=f"output contains {_short(expected)}")
        return ScoreResult(False, explanation=f"output lacks {_short(expected)}")


def levenshtein(a: str, b: str) -> int:
    """Edits (insert, delete, substitute one character) turning a into b; two rows of the table."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def similarity(a: str, b: str) -> float:
    """1 - distance / length of the longer text: 1.0 identical, 0.0 nothing in common."""
    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else 1.0 - levenshtein(a, b) / longest


class LevenshteinSimilarity:
    def __init__(self, params: Mapping[str, Any]):
        self.params = dict(params)
        self.max_chars = int(params.get("max_chars", DEFAULT_MAX_CHARS))

    def score(self, ctx: ScoreContext) -> ScoreResult:
        actual, expected = _texts(ctx, self.params)
        # The table is len(a) x len(b): long texts are compared by their beginnings.
        cut = len(actual) > self.max_chars or len(expected) > self.max_chars
        value = similarity(actual[: self.max_chars], expected[: self.max_chars])
        note = f" (first {self.max_chars} characters)" if cut else ""
        return ScoreResult(value, explanation=f"similarity {value:.3f}{note}")


def _parse(value: Any) -> Any:
    """A string holding JSON is that JSON; any other string is itself."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def json_same(a: Any, b: Any) -> bool:
    """Structural equality where true is not 1 (Python's == says it is); 1 and 1.0 are equal."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def json_equal(ctx: ScoreContext) -> ScoreResult:
    actual, expected = (_parse(v) for v in _pair(ctx))
    if json_same(actual, expected):
        return ScoreResult(True, explanation="output and expected output are the same JSON")
    return ScoreResult(False, explanation=f"expected {_short(canonical(expected))}, got {_short(canonical(actual))}")


def _short(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


_TEXT_OPTIONS = {
    "ignore_case": {"type": "boolean", "description": "compare case-insensitively"},
    "strip": {"type": "boolean", "default": True, "description": "ignore leading and trailing whitespace"},
}


def _schema(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "additionalProperties": False}


def spanlake_scorers() -> list[ScorerType]:
    compares = {"needs_expected_output": True}
    return [
        ScorerType("exact_match", "true when the output equals the item's expected output", ExactMatch,
                   _schema({**_TEXT_OPTIONS, "ignore_case": {**_TEXT_OPTIONS["ignore_case"], "default": False}}),
                   **compares),
        ScorerType("contains_expected", "true when the output contains the item's expected output (case-insensitive)",
                   ContainsExpected, _schema({**_TEXT_OPTIONS, "ignore_case": {**_TEXT_OPTIONS["ignore_case"], "default": True}}),
                   **compares),
        ScorerType(
            "levenshtein_similarity",
            "0..1: 1 - edit distance / length of the longer text, output against the expected output",
            LevenshteinSimilarity,
            _schema({**_TEXT_OPTIONS, "max_chars": {"type": "integer", "minimum": 1, "maximum": 100000,
                                                     "default": DEFAULT_MAX_CHARS, "description": "compare this many leading characters"}}),
            **compares,
        ),
        ScorerType("json_equal", "true when output and expected output are the same JSON value (key order ignored; strings holding JSON are parsed)",
                   lambda params: FunctionScorer(json_equal), _schema({}), **compares),
    ]
