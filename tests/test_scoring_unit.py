"""Scoring pieces without a server: the job lease contract, score upserts, sampling, parsing, config."""

from __future__ import annotations

import datetime as dt
import os
import sys
import textwrap

import duckdb
import pytest

from spanlake.scoring.base import ScoreContext, ScoreResult, ScorerConfigError, ScorerType, ScoringError
from spanlake.scoring.batches import sample_threshold, sampled
from spanlake.scoring.builtins import spanlake_scorers as builtin_types
from spanlake.scoring.config import ScoringConfig
from spanlake.scoring.http_errors import retry_after_seconds
from spanlake.scoring.llm_judge import LlmJudge
from spanlake.scoring.registry import ScorerRegistry
from spanlake.store import jobs
from spanlake.store.migrate import migrate
from spanlake.store.score_summary import score_summary
from spanlake.store.scores import ScoreQuery, list_scores, score_stats, upsert_scores
from spanlake.store.trace_reads import SAMPLE_SQL
from spanlake.clock import utc_now


@pytest.fixture
def cur():
    conn = duckdb.connect()
    migrate(conn)
    yield conn
    conn.close()


def tx(cur, fn, *args, **kwargs):
    cur.begin()
    try:
        out = fn(cur, *args, **kwargs)
        cur.commit()
        return out
    except BaseException:
        cur.rollback()
        raise


def test_job_lease_and_exactly_once_outcomes(cur):
    job = tx(cur, jobs.create_job, "score_batch", {"scorer": "x"}, [("a" * 32, None), ("b" * 32, "c" * 16), ("d" * 32, None)])
    assert job.status == jobs.PENDING and job.total == 3
    assert tx(cur, jobs.claim_job, "score_batch", "A", 30).owner == "A"
    assert tx(cur, jobs.claim_job, "score_batch", "B", 30) is None  # held by A
    with pytest.raises(jobs.LeaseLost):
        tx(cur, jobs.record_outcomes, job.id, "B", [jobs.ItemOutcome(0, jobs.ITEM_DONE)], 30)

    assert tx(cur, jobs.record_outcomes, job.id, "A", [jobs.ItemOutcome(0, jobs.ITEM_DONE)], 30) == [0]
    # The same item reported again (a retry after a crash) is not counted twice.
    assert tx(cur, jobs.record_outcomes, job.id, "A", [jobs.ItemOutcome(0, jobs.ITEM_DONE)], 30) == []
    assert [i.seq for i in jobs.pending_items(cur, job.id, -1, 10)] == [1, 2]
    assert tx(cur, jobs.finish_job, job.id, "A") is None  # items still pending

    # A dead owner: once its lease has passed, another replica takes the job over.
    cur.execute("UPDATE jobs SET lease_until = ? WHERE id = ?", [utc_now() - dt.timedelta(seconds=1), job.id])
    assert tx(cur, jobs.claim_job, "score_batch", "B", 30).owner == "B"
    with pytest.raises(jobs.LeaseLost):
        tx(cur, jobs.renew_lease, job.id, "A", 30)
    fresh = tx(
        cur, jobs.record_outcomes, job.id, "B",
        [jobs.ItemOutcome(1, jobs.ITEM_FAILED, 3, "boom"), jobs.ItemOutcome(2, jobs.ITEM_DONE, 2)], 30,
    )
    assert sorted(fresh) == [1, 2]
    done = tx(cur, jobs.finish_job, job.id, "B")
    assert (done.status, done.completed, done.failed, done.owner) == ("completed", 2, 1, None)
    assert done.errors == [{"seq": 1, "trace_id": "b" * 32, "span_id": "c" * 16, "error": "boom", "attempts": 3}]


def test_job_release_and_all_failed(cur):
    job = tx(cur, jobs.create_job, "score_batch", {}, [("a" * 32, None)])
    tx(cur, jobs.claim_job, "score_batch", "A", 30)
    assert tx(cur, jobs.release_all, "score_batch") == 1  # what an embedded store does at start
    assert tx(cur, jobs.get_job, job.id).status == jobs.PENDING
    tx(cur, jobs.claim_job, "score_batch", "B", 30)
    tx(cur, jobs.record_outcomes, job.id, "B", [jobs.ItemOutcome(0, jobs.ITEM_FAILED, 1, "bad")], 30)
    assert tx(cur, jobs.finish_job, job.id, "B").status == jobs.FAILED
    empty = tx(cur, jobs.create_job, "score_batch", {}, [])
    assert empty.status == jobs.COMPLETED and empty.finished_at is not None
    assert [j.id for j in tx(cur, jobs.list_jobs, "score_batch", limit=10)] == [empty.id, job.id]


def _score(trace: str, name: str, value: float, **kw) -> dict:
    return {"id": os.urandom(8).hex(), "trace_id": trace, "span_id": "s" * 16, "name": name, "value": value,
            "data_type": kw.pop("data_type", "numeric"), "source": "eval", "scorer": name, "created_at": utc_now(), **kw}


def test_upsert_replaces_same_identity_and_stats(cur):
    tx(cur, upsert_scores, [_score("a" * 32, "q", 0.1), _score("a" * 32, "q", 0.2), _score("b" * 32, "q", 0.9)])
    tx(cur, upsert_scores, [_score("a" * 32, "q", 0.5)])
    rows = list_scores(cur, ScoreQuery(name="q"), limit=10)
    assert sorted((r["trace_id"][0], r["value"]) for r in rows) == [("a", 0.5), ("b", 0.9)]
    stats = score_stats(cur, ScoreQuery(name="q"), pass_threshold=0.6, bins=4)
    assert stats["count"] == 2 and stats["pass_rate"] == 0.5 and stats["mean"] == pytest.approx(0.7)
    assert [b["count"] for b in stats["histogram"]] == [1, 0, 0, 1]
    assert score_stats(cur, ScoreQuery(name="q"), pass_threshold=None)["pass_rate"] is None  # numeric needs a bar


def test_summary_per_name_agrees_with_each_scorers_stats(cur):
    values = {"q": [0.05, 0.31, 0.32, 0.77, 1.0, 0.5], "flag": [1.0, 0.0, 1.0], "same": [3.0, 3.0]}
    rows = [_score(os.urandom(16).hex(), name, v, data_type="boolean" if name == "flag" else "numeric",
                   label="good" if v >= 0.5 else "bad")
            for name, vs in values.items() for v in vs]
    run_score = _score(os.urandom(16).hex(), "q", -5.0, run_id="r1", run_result_id="x")  # a run's: not a trace score
    tx(cur, upsert_scores, [*rows, run_score])
    for threshold in (None, 0.5):
        summary = {s["name"]: s for s in score_summary(cur, ScoreQuery(), pass_threshold=threshold, bins=4, worst=2)}
        assert list(summary) == ["flag", "q", "same"]
        for name in values:
            stats = score_stats(cur, ScoreQuery(name=name), pass_threshold=threshold, bins=4)
            if name == "q":  # score_stats sees the run score too; take it out by hand
                assert stats["count"] == 7
                continue
            assert {k: summary[name][k] for k in stats} == stats
    q = {s["name"]: s for s in score_summary(cur, ScoreQuery(), pass_threshold=None, bins=4, worst=2)}["q"]
    assert (q["count"], q["min"], q["max"]) == (6, 0.05, 1.0) and q["mean"] == pytest.approx(sum(values["q"]) / 6)
    assert [h["count"] for h in q["histogram"]] == [1, 3, 0, 2]  # bins of width 0.2375 from 0.05
    assert [w["value"] for w in q["worst"]] == [0.05, 0.31] and q["labels"] == {"bad": 3, "good": 3}
    assert score_summary(cur, ScoreQuery(name="nothing"), pass_threshold=None) == []


def test_sampling_agrees_between_python_and_sql():
    ids = [os.urandom(16).hex() for _ in range(2000)]
    conn = duckdb.connect()
    threshold = sample_threshold(0.3)
    in_sql = {
        r[0] for r in conn.execute(
            f"SELECT t FROM unnest(?::VARCHAR[]) AS u(t) WHERE {SAMPLE_SQL.format(col='t')}", [ids, threshold]
        ).fetchall()
    }
    in_py = {t for t in ids if sampled(t, 0.3)}
    assert in_sql == in_py
    assert 450 < len(in_py) < 750


@pytest.mark.parametrize(
    "answer,mode,expected",
    [
        ('{"score": 0.8, "explanation": "good"}', "score", (0.8, None, "good")),
        ('```json\n{"score": 1}\n```', "score", (1.0, None, None)),
        ("Score: 0.25 because it is vague", "score", (0.25, None, None)),
        ("0.6", "score", (0.6, None, None)),
        ("label: pass", "label", (1.0, "pass", None)),
        ('{"label": "FAIL", "reason": "wrong"}', "label", (0.0, "fail", "wrong")),
    ],
)
def test_llm_judge_parses_answers(answer, mode, expected):
    judge = LlmJudge({"model": "m", "mode": mode, "labels": {"pass": 1, "fail": 0}})
    result = judge.parse(answer)
    assert (result.value, result.label, result.explanation) == expected


@pytest.mark.parametrize(
    "answer,message",
    [
        ("I think it is fine.", "no score"),
        ('{"score": 7}', "outside"),
        ("pass or fail, hard to say", "several labels"),
    ],
)
def test_llm_judge_refuses_unusable_answers(answer, message):
    mode = "label" if "pass" in answer else "score"
    judge = LlmJudge({"model": "m", "mode": mode, "labels": ["pass", "fail"]})
    with pytest.raises(ScoringError, match=message):
        judge.parse(answer)


def test_retry_after_forms():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None


def _ctx(output, status="OK", duration_ms=1500.0):
    spans = [
        {"span_id": "r" * 16, "parent_span_id": None, "name": "root", "status": status, "duration_ms": duration_ms,
         "input": "question", "output": output, "span_type": "agent", "input_tokens": None, "output_tokens": None},
        {"span_id": "c" * 16, "parent_span_id": "r" * 16, "name": "llm", "status": "OK", "duration_ms": 10.0,
         "input": None, "output": None, "span_type": "llm", "input_tokens": 7, "output_tokens": 3},
    ]
    return ScoreContext(trace_id="t" * 32, spans=spans)


def test_builtin_scorers():
    types = {t.name: t for t in builtin_types()}
    assert types["no_errors"].create({}).score(_ctx("x", status="ERROR")).value is False
    assert types["latency"].create({}).score(_ctx("x")).value == 1.5
    assert types["latency"].create({"threshold_ms": 1000}).score(_ctx("x")).value is False
    assert types["token_usage"].create({}).score(_ctx("x")).value == 10
    assert types["output_not_empty"].create({}).score(_ctx("  ")).value is False
    schema = {"type": "object", "required": ["city"]}
    assert types["json_output"].create({"schema": schema}).score(_ctx('{"city": "Paris"}')).value is True
    bad = types["json_output"].create({"schema": schema}).score(_ctx('{"town": 1}'))
    assert bad.value is False and "city" in bad.explanation
    assert types["regex"].create({"pattern": r"\[\d+\]"}).score(_ctx("see [2]")).value is True
    assert types["contains"].create({"values": ["A", "b"], "mode": "all"}).score(_ctx("a B")).value is True
    assert types["contains"].create({"value": "quest", "field": "input"}).score(_ctx("x")).value is True
    assert ScoreResult(True).normalized() == (1.0, "boolean")
    with pytest.raises(ScoringError):
        ScoreResult(float("nan")).normalized()


@pytest.mark.parametrize(
    "scorers,message",
    [
        ([{"name": "a", "type": "nope"}], "scorers[0].type: unknown scorer type 'nope'"),
        ([{"name": "a", "type": "regex"}], "scorers[0].params: 'pattern' is a required property"),
        ([{"name": "a", "type": "regex", "params": {"pattern": "("}}], "not a valid regular expression"),
        ([{"name": "a", "type": "latency", "params": {"threshold_ms": "x"}}], "scorers[0].params.threshold_ms"),
        ([{"name": "a", "type": "no_errors"}, {"name": "a", "type": "latency"}], "declared twice"),
        ([{"name": "a", "type": "no_errors", "colour": "red"}], "scorers[0].colour: unknown key"),
        ([{"name": "j", "type": "llm_judge", "params": {"model": "m", "prompt": "{{nope}}"}}], "unknown variable"),
        ([{"name": "p", "type": "no_such_module:fn"}], "cannot import no_such_module"),
    ],
)
def test_config_errors_name_the_key(scorers, message):
    with pytest.raises(ScorerConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        ScorerRegistry.load(ScoringConfig.from_sections({"scorers": scorers}), entry_points=False)


def test_outside_plugins_register_like_builtins(tmp_path, monkeypatch):
    """A package declaring the `spanlake.scorers` entry point adds its types; configs can use them."""
    (tmp_path / "my_checks.py").write_text(
        textwrap.dedent(
            """
            from spanlake.scoring import ScorerType, FunctionScorer, ScoreResult

            def spanlake_scorers():
                return [ScorerType("shouty", "true when the output is upper case",
                                   lambda params: FunctionScorer(lambda ctx: ScoreResult(ctx.output.isupper())))]
            """
        )
    )
    dist = tmp_path / "my_checks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-checks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[spanlake.scorers]\nmy_checks = my_checks\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = ScorerRegistry.load(ScoringConfig.from_sections({"scorers": [{"name": "loud", "type": "shouty"}]}))
    assert registry.types["shouty"] and registry.type_origin["shouty"] == "plugin"
    assert registry.get("shouty").origin == "plugin" and registry.get("loud").origin == "config"
    assert registry.get("loud").scorer.score(_ctx("HELLO")).value is True
    assert {"no_errors", "llm_judge", "http", "python"} <= set(registry.types)
    registry.register_plugin(ScorerType("direct", "d", lambda p: None), origin="plugin")
    assert "direct" in registry.types
    sys.modules.pop("my_checks", None)
