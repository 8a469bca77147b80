"""The filter language: validation errors, SQL semantics on the store and on an Arrow batch,
and a property test that the SQL and the Python reference evaluator agree."""

from __future__ import annotations

import json
import pickle
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spanlake.filters import (
    MAX_DEPTH,
    MAX_NODES,
    FilterError,
    evaluate_reference,
    parse_filter,
)
from spanlake.store.filter_sql import CompiledFilter, compile_filter
from spanlake.filters.reference import glob_regex, json_text
from spanlake.store.schema import MIGRATIONS, SPAN_SCHEMA

TRACE_A = "0af7651916cd43dd8448eb211c80319c"
TRACE_B = "4bf92f3577b34da6a3ce929d0e0e4736"
SCORE_FIELDS = pa.schema(
    [("trace_id", pa.string()), ("span_id", pa.string()), ("name", pa.string()), ("value", pa.float64()), ("label", pa.string())]
)
T0 = datetime(2024, 5, 1, 12, 0, 0)


def span(span_id: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(SPAN_SCHEMA.names)
    row.update(trace_id=TRACE_A, span_id=span_id, kind="INTERNAL", status="UNSET", attributes="{}", resource_attributes="{}")
    for key in ("attributes", "resource_attributes"):
        if isinstance(fields.get(key), dict):
            fields[key] = json.dumps(fields[key])
    row.update(fields)
    return row


class Harness:
    """One in-memory DuckDB holding the real schema, able to run a filter two ways.

    `store`: against the `spans` table (JSON columns), as search and batch scoring do.
    `batch`: against a registered Arrow table (VARCHAR columns), as capture rules do.
    """

    def __init__(self) -> None:
        self.con = duckdb.connect(config={"threads": 1})  # tiny tables: threads only add overhead
        for statement in MIGRATIONS[0]:
            self.con.execute(statement)

    def load(self, spans: list[dict[str, Any]], scores: list[dict[str, Any]] = ()) -> None:
        batch = pa.Table.from_pylist(spans, schema=SPAN_SCHEMA)
        score_rows = pa.Table.from_pylist(list(scores), schema=SCORE_FIELDS)
        self.con.execute("DELETE FROM spans")
        self.con.execute("DELETE FROM scores")
        self.con.register("batch", batch)  # replaces the previous world's batch
        self.con.register("score_rows", score_rows)
        self.con.execute("INSERT INTO spans SELECT *, NULL FROM batch")
        self.con.execute("INSERT INTO scores (trace_id, span_id, name, value, label) SELECT * FROM score_rows")

    def run(self, f: Any, source: str, score_scope: str = "span") -> set[str]:
        c = compile_filter(f, score_scope=score_scope)
        table = "spans" if source == "store" else "batch"
        rows = self.con.execute(f"SELECT span_id FROM {table} s WHERE {c.sql}", c.params).fetchall()
        return {r[0] for r in rows}


@pytest.fixture(scope="module")
def harness() -> Harness:
    return Harness()


# --- a small, hand-written world for the example tests ---------------------------------------

SPANS = [
    span(
        "a000000000000001",
        name="chat gpt-4o",
        kind="CLIENT",
        status="ERROR",
        model="gpt-4o",
        duration_ms=2500.0,
        input_tokens=120,
        start_time=T0,
        service_name="agent",
        attributes={
            "gen_ai.request.model": "gpt-4o",
            "llm.token_count.prompt": 12,
            "flag": True,
            'we"ird': "quote",
            "back\\slash": "bs",
            "sp ace": "space",
            "*": "star",
            "a/b~c": "pointer",
            "": "empty key",
            "nothing": None,
            "finish_reasons": ["stop", "length"],
            "as_text": "12",
        },
        resource_attributes={"service.name": "agent", "deployment.environment": "prod"},
    ),
    span(
        "a000000000000002",
        parent_span_id="a000000000000001",
        name="tool lookup",
        kind="INTERNAL",
        status="OK",
        duration_ms=15.5,
        input_tokens=None,
        start_time=T0 + timedelta(seconds=1),
        service_name="agent",
        attributes={"gen_ai.request.model": "gpt-4o-mini", "llm.token_count.prompt": 3.5, "flag": False},
    ),
    span(
        "b000000000000001",
        trace_id=TRACE_B,
        parent_span_id="",
        name="HTTP GET",
        kind="SERVER",
        status="UNSET",
        duration_ms=None,
        start_time=T0 + timedelta(hours=1),
        service_name="gateway",
        attributes={"http.status_code": 200},
        resource_attributes={"deployment.environment": "staging"},
    ),
]
SCORES = [
    {"trace_id": TRACE_A, "span_id": "a000000000000001", "name": "accuracy", "value": 0.9, "label": None},
    {"trace_id": TRACE_A, "span_id": "a000000000000001", "name": "verdict", "value": None, "label": "good"},
    {"trace_id": TRACE_A, "span_id": "a000000000000002", "name": "accuracy", "value": 0.2, "label": "bad"},
]
A1, A2, B1 = "a000000000000001", "a000000000000002", "b000000000000001"


def leaf(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": field, "op": op} if value is None else {"field": field, "op": op, "value": value}


CASES = [
    # plain columns
    (leaf("model", "eq", "gpt-4o"), {A1}),
    (leaf("model", "ne", "gpt-4o"), {A2, B1}),  # a span without a model is "not equal"
    (leaf("model", "exists"), {A1}),
    (leaf("model", "not_exists"), {A2, B1}),
    (leaf("name", "in", ["tool lookup", "HTTP GET"]), {A2, B1}),
    (leaf("name", "nin", ["tool lookup"]), {A1, B1}),
    (leaf("name", "in", []), set()),
    (leaf("name", "nin", []), {A1, A2, B1}),
    (leaf("name", "contains", "gpt"), {A1}),
    (leaf("name", "contains", "GPT"), set()),  # case-sensitive
    (leaf("name", "glob", "*o?kup"), {A2}),
    (leaf("name", "regex", "^(chat|HTTP) "), {A1, B1}),
    (leaf("service", "eq", "gateway"), {B1}),
    (leaf("duration_ms", "gt", 2000), {A1}),
    (leaf("duration_ms", "lte", 15.5), {A2}),
    (leaf("duration_ms", "not_exists"), {B1}),
    (leaf("input_tokens", "gte", 100), {A1}),
    (leaf("input_tokens", "in", [120, 7]), {A1}),
    # ids, enums, root, times
    (leaf("trace_id", "eq", TRACE_B.upper()), {B1}),
    (leaf("span_id", "in", [A1, B1]), {A1, B1}),
    (leaf("parent_span_id", "eq", A1), {A2}),
    (leaf("trace_id", "glob", "0af7*"), {A1, A2}),
    (leaf("is_root", "eq", True), {A1, B1}),  # empty parent id counts as root
    (leaf("is_root", "eq", False), {A2}),
    (leaf("is_root", "ne", True), {A2}),
    (leaf("kind", "eq", "client"), {A1}),
    (leaf("kind", "eq", "SPAN_KIND_SERVER"), {B1}),
    (leaf("kind", "in", [1, "span_kind_client"]), {A1, A2}),
    (leaf("status", "eq", "STATUS_CODE_ERROR"), {A1}),
    (leaf("status", "ne", 2), {A2, B1}),
    (leaf("start_time", "gt", "2024-05-01T12:00:00Z"), {A2, B1}),
    (leaf("start_time", "gte", "2024-05-01T14:00:00+02:00"), {A1, A2, B1}),
    (leaf("start_time", "eq", "2024-05-01T12:00:00"), {A1}),
    (leaf("start_time", "lt", T0.replace(tzinfo=timezone.utc).timestamp() + 0.5), {A1}),
    (leaf("start_time", "lt", int(T0.replace(tzinfo=timezone.utc).timestamp() * 1000) + 1), {A1}),
    (leaf("start_time", "lt", int(T0.replace(tzinfo=timezone.utc).timestamp() * 10**9) + 1000), {A1}),
    (leaf("end_time", "exists"), set()),
    # attributes: the value's JSON type picks the comparison
    (leaf("attributes.gen_ai.request.model", "eq", "gpt-4o"), {A1}),
    (leaf("attributes.gen_ai.request.model", "glob", "gpt-4o*"), {A1, A2}),
    (leaf("attributes.llm.token_count.prompt", "gt", 10), {A1}),
    (leaf("attributes.llm.token_count.prompt", "eq", 3.5), {A2}),
    (leaf("attributes.llm.token_count.prompt", "eq", "12"), {A1}),  # text form of a number
    (leaf("attributes.as_text", "eq", 12), set()),  # numbers only match JSON numbers
    (leaf("attributes.as_text", "gt", 1), set()),
    (leaf("attributes.flag", "eq", True), {A1}),
    (leaf("attributes.flag", "eq", False), {A2}),
    (leaf("attributes.flag", "ne", True), {A2, B1}),
    (leaf("attributes.flag", "eq", "true"), {A1}),
    (leaf("attributes.http.status_code", "in", [404, 200]), {B1}),
    (leaf("attributes.http.status_code", "in", ["x", 200, True]), {B1}),
    (leaf("attributes.finish_reasons", "contains", '"stop"'), {A1}),
    (leaf("attributes.nothing", "exists"), set()),  # JSON null counts as absent
    (leaf("attributes.nothing", "not_exists"), {A1, A2, B1}),
    (leaf("attributes.missing", "ne", "x"), {A1, A2, B1}),
    (leaf("attributes.missing", "nin", ["x"]), {A1, A2, B1}),
    (leaf('attributes.we"ird', "eq", "quote"), {A1}),
    (leaf("attributes.back\\slash", "eq", "bs"), {A1}),
    (leaf("attributes.sp ace", "eq", "space"), {A1}),
    (leaf("attributes.*", "eq", "star"), {A1}),  # not a wildcard
    (leaf("attributes.a/b~c", "eq", "pointer"), {A1}),
    (leaf("resource.deployment.environment", "eq", "prod"), {A1}),
    (leaf("resource.service.name", "exists"), {A1}),
    # scores
    (leaf("score.accuracy", "exists"), {A1, A2}),
    (leaf("score.accuracy", "not_exists"), {B1}),
    (leaf("score.accuracy", "gte", 0.5), {A1}),
    (leaf("score.accuracy", "ne", 0.9), {A2}),  # score leaves ask "has a score that ..."
    ({"not": leaf("score.accuracy", "eq", 0.9)}, {A2, B1}),  # the complement, unscored included
    (leaf("score.accuracy", "nin", [0.2, "good"]), {A1}),
    (leaf("score.verdict", "ne", 0.5), {A1}),  # no value is "not equal", per score
    (leaf("score.verdict", "eq", "good"), {A1}),
    (leaf("score.accuracy", "in", ["bad", 0.9]), {A1, A2}),
    (leaf("score.accuracy", "glob", "b*"), {A2}),
    # trees, and NOT over unknowns
    ({"and": [leaf("kind", "eq", "client"), leaf("duration_ms", "gt", 1000)]}, {A1}),
    ({"or": [leaf("kind", "eq", "server"), leaf("duration_ms", "lt", 100)]}, {A2, B1}),
    ({"not": leaf("duration_ms", "gt", 1000)}, {A2, B1}),  # B1 has no duration: NOT still matches
    ({"not": leaf("attributes.flag", "eq", True)}, {A2, B1}),
    ({"not": {"not": leaf("attributes.flag", "eq", True)}}, {A1}),
    ({"not": {"or": [leaf("model", "eq", "x"), leaf("duration_ms", "gt", 1)]}}, {B1}),
]


@pytest.mark.parametrize("source", ["store", "batch"])
@pytest.mark.parametrize(("f", "expected"), CASES, ids=[json.dumps(c[0])[:80] for c in CASES])
def test_semantics(harness: Harness, source: str, f: dict, expected: set[str]) -> None:
    harness.load(SPANS, SCORES)
    assert harness.run(f, source) == expected
    assert {s["span_id"] for s in SPANS if evaluate_reference(f, s, SCORES)} == expected


TRACE_SCOPE_CASES = [
    (leaf("score.verdict", "eq", "good"), {A1, A2}),  # every span of a trace carries its scores
    (leaf("score.accuracy", "lt", 0.5), {A1, A2}),
    (leaf("score.accuracy", "not_exists"), {B1}),
    ({"and": [leaf("is_root", "eq", True), leaf("score.accuracy", "exists")]}, {A1}),
]


@pytest.mark.parametrize("source", ["store", "batch"])
@pytest.mark.parametrize(("f", "expected"), TRACE_SCOPE_CASES, ids=[json.dumps(c[0])[:80] for c in TRACE_SCOPE_CASES])
def test_trace_score_scope(harness: Harness, source: str, f: dict, expected: set[str]) -> None:
    harness.load(SPANS, SCORES)
    assert harness.run(f, source, score_scope="trace") == expected
    assert {s["span_id"] for s in SPANS if evaluate_reference(f, s, SCORES, score_scope="trace")} == expected
    with pytest.raises(ValueError, match="score_scope"):
        compile_filter(f, score_scope="session")


def test_values_and_keys_are_never_in_the_sql() -> None:
    evil = "x'); DROP TABLE spans; --"
    f = {
        "and": [
            leaf("name", "eq", evil),
            leaf(f"attributes.{evil}\"\\", "in", [evil, 1, True]),
            leaf(f"score.{evil}", "contains", evil),
            leaf("name", "regex", "'.*"),
        ]
    }
    c = compile_filter(f)
    assert "DROP" not in c.sql and "'." not in c.sql
    assert c.sql.count("?") == len(c.params)
    assert c.uses_scores
    assert compile_filter(leaf("model", "exists")).uses_scores is False


def test_other_alias_and_value_sql(harness: Harness) -> None:
    harness.load(SPANS, SCORES)
    for alias in ("sp", "sc"):  # "sc" collides with the score subquery's default alias
        c = compile_filter({"not": leaf("score.accuracy", "gt", 0.5)}, alias=alias)
        rows = harness.con.execute(f"SELECT span_id, {c.value_sql} FROM spans {alias} ORDER BY span_id", c.params)
        assert rows.fetchall() == [(A1, False), (A2, True), (B1, True)]
    c = compile_filter(leaf("duration_ms", "gt", 1))
    matched = harness.con.execute(f"SELECT {c.value_sql} FROM spans s WHERE span_id = '{B1}'", c.params).fetchone()
    assert matched == (False,)  # NULL duration: a real false, not NULL
    with pytest.raises(ValueError, match="alias"):
        compile_filter(leaf("model", "exists"), alias="s; DROP")


def test_accepts_json_text_and_parsed_filters() -> None:
    text = json.dumps({"or": [leaf("model", "eq", "a"), leaf("kind", "eq", "server")]})
    parsed = parse_filter(text)
    assert parse_filter(parsed) is parsed
    assert compile_filter(text) == compile_filter(parsed) == compile_filter(json.loads(text))
    assert isinstance(compile_filter(parsed), CompiledFilter)


ERRORS = [
    ([], "filter", "expected an object"),
    ("[1,", "filter", "not valid JSON"),
    ({}, "filter", "empty object"),
    ({"and": [leaf("model", "exists"), leaf("model", "explode")]}, "and[1].op", "unknown op 'explode'"),
    ({"field": "model", "op": "eq", "value": "x", "and": []}, "filter", "mixes 'and'"),
    ({"and": [leaf("model", "exists")], "or": [leaf("model", "exists")]}, "filter", "has both 'and' and 'or'"),
    ({"field": "model", "op": "eq", "vaule": "x"}, "vaule", "unknown key"),
    ({"field": "model"}, "op", "missing"),
    ({"op": "eq"}, "field", "missing"),
    ({"or": []}, "or", "empty list"),
    ({"and": leaf("model", "exists")}, "and", "expected a list"),
    ({"not": [leaf("model", "exists")]}, "not", "expected an object"),
    ({"and": [{"not": leaf("nope", "eq", 1)}]}, "and[0].not.field", "unknown field 'nope'"),
    (leaf("service_name", "eq", "x"), "field", "did you mean 'service'?"),
    (leaf("attributes.", "exists"), "field", "needs a key"),
    (leaf(7, "exists"), "field", "expected a field name"),
    (leaf("duration_ms", "gt", "slow"), "value", "expected a number for 'duration_ms', got string 'slow'"),
    (leaf("duration_ms", "gt", True), "value", "expected a number"),
    (leaf("input_tokens", "eq", float("nan")), "value", "expected a number"),
    (leaf("name", "gt", "a"), "op", "does not apply to 'name'"),
    (leaf("kind", "contains", "x"), "op", "does not apply to 'kind'"),
    (leaf("is_root", "eq", "yes"), "value", "expected true or false"),
    (leaf("is_root", "exists"), "op", "does not apply"),
    (leaf("name", "in", "x"), "value", "expected a list for 'in'"),
    (leaf("name", "nin", ["ok", 3]), "value[1]", "expected a string for 'name', got number 3"),
    (leaf("name", "contains", 5), "value", "expected a string for 'contains'"),
    (leaf("name", "eq"), "value", "missing; 'eq' needs a value"),
    ({"field": "name", "op": "eq", "value": None}, "value", "use 'exists'"),
    (leaf("name", "exists", "x"), "value", "takes no value"),
    (leaf("name", "regex", "(a"), "value", "invalid regex"),
    (leaf("name", "regex", r"(a)\1"), "value", "invalid regex"),  # RE2: no backreferences
    (leaf("name", "regex", "(?=a)"), "value", "invalid regex"),  # RE2: no lookaround
    (leaf("trace_id", "eq", "abc"), "value", "expected 32 hex characters"),
    (leaf("span_id", "in", [A1, "zz00000000000000"]), "value[1]", "expected 16 hex characters"),
    (leaf("kind", "eq", "sideways"), "value", "expected one of unspecified, internal"),
    (leaf("kind", "eq", 9), "value", "expected one of"),
    (leaf("status", "eq", True), "value", "expected one of unset, ok, error"),
    (leaf("start_time", "gt", "yesterday"), "value", "expected an ISO-8601 time"),
    (leaf("start_time", "gt", 1e30), "value", "expected an ISO-8601 time"),
    (leaf("attributes.x", "gt", "2024-01-01"), "value", "expected a number for 'gt'"),
    (leaf("attributes.x", "eq", {"a": 1}), "value", "expected a string, number or boolean"),
    (leaf("score.acc", "lt", "high"), "value", "expected a number"),
    (leaf("name", "eq", "\ud800"), "value", "not valid Unicode"),  # json.loads lets these through
    (leaf("name", "in", ["ok", "x\udfff"]), "value[1]", "not valid Unicode"),
    (leaf("name", "regex", "\ud800"), "value", "not valid Unicode"),
    (leaf("attributes.\ud800", "exists"), "field", "not valid Unicode"),
    (leaf("attributes.x", "eq", "\ud800"), "value", "not valid Unicode"),
]


@pytest.mark.parametrize(("f", "path", "message"), ERRORS, ids=[f"{e[1]}-{e[2]}" for e in ERRORS])
def test_errors_name_the_path(f: Any, path: str, message: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter(f)
    assert info.value.path == path
    assert message in info.value.message
    assert str(info.value) == f"{path}: {info.value.message}"


def test_error_path_prefix() -> None:
    with pytest.raises(FilterError, match=r"^rules\[2\]\.when\.and\[0\]\.op: unknown op") as info:
        parse_filter({"and": [leaf("model", "boom")]}, path="rules[2].when")
    assert info.value.path == "rules[2].when.and[0].op"
    with pytest.raises(FilterError, match=r"^rules\[2\]\.when: expected an object"):
        parse_filter(5, path="rules[2].when")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.path, str(copy)) == (info.value.path, str(info.value))


def test_limits_stop_hostile_filters() -> None:
    deep: dict = leaf("model", "exists")
    for _ in range(MAX_DEPTH):
        deep = {"not": deep}
    with pytest.raises(FilterError, match="nested deeper than"):
        parse_filter(deep)
    with pytest.raises(FilterError, match="nested deeper than|not valid JSON"):
        parse_filter("[" * 100_000)  # json.loads itself recurses; must not escape as RecursionError
    wide = {"or": [leaf("model", "exists")] * MAX_NODES}
    with pytest.raises(FilterError, match=f"more than {MAX_NODES} nodes") as info:
        parse_filter(wide)
    assert info.value.path == f"or[{MAX_NODES - 1}]"
    with pytest.raises(FilterError, match="at most"):
        parse_filter(leaf("name", "in", ["x"] * 10_001))
    parse_filter({"or": [leaf("model", "exists")] * (MAX_NODES - 1)})


def test_regex_check_is_cheap() -> None:
    start = time.perf_counter()
    for i in range(200):
        parse_filter(leaf("name", "regex", f"^span-{i}+$"))
    assert time.perf_counter() - start < 2.0


# --- the reference evaluator's DuckDB mirrors, checked against DuckDB itself -----------------

_GLOB_ALPHABET = st.sampled_from(list("ab*?[]!-\\é\n"))


@settings(max_examples=300, deadline=None)
@given(text=st.text(_GLOB_ALPHABET, max_size=6), pattern=st.text(_GLOB_ALPHABET, max_size=6))
def test_glob_mirror_matches_duckdb(text: str, pattern: str) -> None:
    expected = duckdb.execute("SELECT ? GLOB ?", [text, pattern]).fetchone()[0]
    compiled = glob_regex(pattern)
    assert (compiled is not None and compiled.fullmatch(text.encode()) is not None) == expected


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**63), 2**64 - 1)))
def test_json_text_mirror_matches_duckdb(value: float | int) -> None:
    got = duckdb.execute("SELECT json_extract_string(?::VARCHAR, '$')", [json.dumps(value)]).fetchone()[0]
    assert json_text(value) == got


# --- property: SQL (store and batch) == reference, on random spans and filters --------------

HEX16 = [f"{i:016x}" for i in range(1, 7)]
TRACES = [TRACE_A, TRACE_B]
WORDS = ["", "a", "ab", "gpt-4o", "é", "a\nb", "A", "12", "true", "3.0"]
KEYS = ["gen_ai.request.model", 'q"k', "*", "s/l~"]
TIMES = [T0 + timedelta(seconds=s, microseconds=u) for s in (0, 1, 3600) for u in (0, 250)]
FLOATS = [0.5, -1.25, 3.0, 1e21, 1.5e-7, 100.0]
SCORE_NAMES = ["acc", "verdict"]

words = st.sampled_from(WORDS)
numbers = st.one_of(st.integers(-1, 3), st.sampled_from([12, *FLOATS]))
json_scalars = st.one_of(st.booleans(), numbers, words)
# Attribute values lean on the tricky cases: numbers written as strings, "true", JSON null.
json_values = st.one_of(
    st.none(), st.booleans(), numbers, st.sampled_from(["a", "12", "3.0", "true", "a\nb"]), st.lists(words, max_size=2)
)


@st.composite
def spans_strategy(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = draw(st.lists(st.sampled_from(HEX16), min_size=2, max_size=5, unique=True))
    rows = []
    for sid in ids:
        rows.append(
            span(
                sid,
                trace_id=draw(st.sampled_from(TRACES)),
                parent_span_id=draw(st.one_of(st.none(), st.just(""), st.sampled_from(HEX16))),
                name=draw(words),
                model=draw(st.one_of(st.none(), words)),
                kind=draw(st.sampled_from(["INTERNAL", "SERVER", "CLIENT"])),
                status=draw(st.sampled_from(["UNSET", "OK", "ERROR"])),
                duration_ms=draw(st.one_of(st.none(), st.sampled_from([0.0, 15.5, 2000.0, 2500.25]))),
                input_tokens=draw(st.one_of(st.none(), st.integers(0, 130))),
                start_time=draw(st.sampled_from(TIMES)),
                end_time=draw(st.one_of(st.none(), st.sampled_from(TIMES))),
                attributes=draw(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4)),
                resource_attributes=draw(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=2)),
            )
        )
    return rows


@st.composite
def scores_strategy(draw: st.DrawFn, spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        target = draw(st.sampled_from(spans))
        out.append(
            {
                "trace_id": target["trace_id"],
                "span_id": target["span_id"],
                "name": draw(st.sampled_from(SCORE_NAMES)),
                "value": draw(st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0]))),
                "label": draw(st.one_of(st.none(), st.sampled_from(["good", "bad"]))),
            }
        )
    return out


def _time_value(dt: datetime, style: int) -> Any:
    epoch = dt.replace(tzinfo=timezone.utc).timestamp()
    return [
        dt.isoformat(),
        dt.isoformat() + "Z",
        dt.replace(tzinfo=timezone.utc).astimezone(timezone(timedelta(hours=-5))).isoformat(),
        epoch,
        round(epoch * 1000),
        round(epoch * 1_000_000),
        round(epoch * 1_000_000) * 1000,
    ][style]


PATTERNS = ["a", "^a", "a.b", "é", "a|é", "[ab]+", "(?i)A", ".", "^$|x", "\\d"]
GLOBS = ["*", "a*", "?", "*b", "[a-b]*", "[!a]*", "gpt-*", "*\n*"]


@st.composite
def leaf_strategy(draw: st.DrawFn) -> dict[str, Any]:
    # attributes and scores carry most of the semantics, so they are drawn more often
    family = draw(st.sampled_from(["attr", "score", "text", "attr", "id", "enum", "score", "number", "attr", "time", "root"]))
    if family == "text":
        field = draw(st.sampled_from(["name", "model"]))
        op = draw(st.sampled_from(["eq", "ne", "in", "nin", "contains", "glob", "regex", "exists", "not_exists"]))
        return _text_leaf(draw, field, op, words)
    if family == "id":
        field = draw(st.sampled_from(["span_id", "parent_span_id"]))
        op = draw(st.sampled_from(["eq", "ne", "in", "nin", "exists", "not_exists"]))
        ids = st.sampled_from(HEX16).map(lambda v: v.upper() if v.endswith("1") else v)
        return _text_leaf(draw, field, op, ids)
    if family == "enum":
        field, names = draw(st.sampled_from([("kind", ["server", "SPAN_KIND_CLIENT", 1]), ("status", ["ok", "STATUS_CODE_ERROR", 0])]))
        op = draw(st.sampled_from(["eq", "ne", "in", "nin"]))
        return _text_leaf(draw, field, op, st.sampled_from(names))
    if family == "number":
        field = draw(st.sampled_from(["duration_ms", "input_tokens"]))
        op = draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists", "not_exists"]))
        return _text_leaf(draw, field, op, st.one_of(st.integers(-1, 130), st.sampled_from([15.5, 2000.0, 2500.25])))
    if family == "time":
        field = draw(st.sampled_from(["start_time", "end_time"]))
        op = draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists"]))
        times = st.builds(_time_value, st.sampled_from(TIMES), st.integers(0, 6))
        return _text_leaf(draw, field, op, times)
    if family == "root":
        return leaf("is_root", draw(st.sampled_from(["eq", "ne"])), draw(st.booleans()))
    if family == "attr":
        field = draw(st.sampled_from(["attributes.", "resource."])) + draw(st.sampled_from(KEYS + ["absent"]))
        op = draw(st.sampled_from(["eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains", "glob", "regex", "exists", "not_exists"]))
        if op in ("gt", "gte", "lt", "lte"):
            return leaf(field, op, draw(numbers))
        return _text_leaf(draw, field, op, json_scalars)
    field = "score." + draw(st.sampled_from(SCORE_NAMES))
    op = draw(st.sampled_from(["eq", "ne", "in", "nin", "gt", "lt", "glob", "exists", "not_exists"]))
    if op in ("gt", "lt"):
        return leaf(field, op, draw(st.sampled_from([0.0, 0.5, 0.7])))
    return _text_leaf(draw, field, op, st.one_of(st.sampled_from([0.0, 0.5, 1, True]), st.sampled_from(["good", "bad", "g*"])))


def _text_leaf(draw: st.DrawFn, field: str, op: str, values: st.SearchStrategy) -> dict[str, Any]:
    if op in ("exists", "not_exists"):
        return leaf(field, op)
    if op in ("in", "nin"):
        return {"field": field, "op": op, "value": draw(st.lists(values, max_size=3))}
    if op == "contains":
        return leaf(field, op, draw(words))
    if op == "glob":
        return leaf(field, op, draw(st.sampled_from(GLOBS)))
    if op == "regex":
        return leaf(field, op, draw(st.sampled_from(PATTERNS)))
    return {"field": field, "op": op, "value": draw(values)}


filters = st.recursive(
    leaf_strategy(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"and": xs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"or": xs}),
        inner.map(lambda x: {"not": x}),
    ),
    max_leaves=6,
)


def subfilters(f: dict[str, Any]) -> list[dict[str, Any]]:
    """f and every node below it, so one wrong leaf cannot hide behind an enclosing and/or."""
    children = f.get("and") or f.get("or") or ([f["not"]] if "not" in f else [])
    return [f, *(sub for child in children for sub in subfilters(child))]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), fs=st.lists(filters, min_size=1, max_size=8), scope=st.sampled_from(["span", "trace"]))
def test_sql_agrees_with_reference(harness: Harness, data: st.DataObject, fs: list[dict[str, Any]], scope: str) -> None:
    spans = data.draw(spans_strategy())
    scores = data.draw(scores_strategy(spans))
    harness.load(spans, scores)  # once per world; every filter and all their nodes run against it
    # value_sql is coalesce(sql, false): true exactly where WHERE {sql} keeps the row, so this
    # one SELECT per source checks the WHERE behaviour too.
    nodes = [sub for f in fs for sub in subfilters(f)]
    compiled = [compile_filter(n, score_scope=scope) for n in nodes]
    select = ", ".join(c.value_sql for c in compiled)
    params = [p for c in compiled for p in c.params]
    expected = {s["span_id"]: [evaluate_reference(n, s, scores, score_scope=scope) for n in nodes] for s in spans}
    for table in ("spans", "batch"):
        rows = harness.con.execute(f"SELECT span_id, {select} FROM {table} s", params).fetchall()
        got = {r[0]: list(r[1:]) for r in rows}
        for sid, want in expected.items():
            wrong = [(n, w) for n, w, g in zip(nodes, want, got[sid]) if w != g]
            assert not wrong, f"{table}: span {sid}: reference says {wrong[0][1]} for {wrong[0][0]}"
