"""Changes to dataset runs, one write transaction each: `await store.write(fn, ...)`.

A server-side run stores its run row, one pending result per item and its job (kind "run") in
the transaction that creates it, so the background component can claim it at once and a restart
resumes it. A client-side run gets its job when the client completes it: the job then only
scores the posted results. No SQL here: store/runs.py holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from spanlake.datasets.errors import Conflict, Invalid, NotFound
from spanlake.runs.validate import RunSpec
from spanlake.datasets.service import resolve
from spanlake.store import datasets, jobs, runs
from spanlake.store.ids import uuid7
from spanlake.clock import utc_now

KIND = "run"
NO_RESULT = "no result was posted for this item before the run was completed"


def find(cur: duckdb.DuckDBPyConnection, dataset_ref: str, run_ref: str) -> runs.Run:
    """A run of a live dataset, by id or name, or NotFound."""
    dataset = resolve(cur, dataset_ref)
    run = runs.find_run(cur, dataset["id"], run_ref)
    if run is None:
        raise NotFound(f"run {run_ref!r} not found in dataset {dataset['name']!r}")
    return run


def create_run(cur: duckdb.DuckDBPyConnection, dataset_ref: str, spec: RunSpec) -> runs.Run:
    dataset = resolve(cur, dataset_ref)
    now = utc_now()
    name = spec.name or f"run-{now:%Y%m%d-%H%M%S}-{uuid7()[-4:]}"
    if runs.name_taken(cur, dataset["id"], name):
        raise Conflict(f"dataset {dataset['name']!r} already has a run named {name!r}")
    as_of = spec.as_of
    if as_of is None:  # the dataset's latest change: exactly the items current now
        as_of = datasets.last_change(cur, dataset["id"]) or now
    elif as_of > now:
        raise Invalid("as_of is in the future; a run reads a dataset version that exists")
    run = runs.Run(
        id=uuid7(), dataset_id=dataset["id"], name=name, mode=spec.mode, as_of=as_of, target=spec.target,
        scorers=list(spec.scorers), thresholds=spec.thresholds, concurrency=spec.concurrency,
        status=runs.PENDING if spec.mode == "server" else runs.RUNNING, error=None, metadata=spec.metadata,
        job_id=None, created_at=now, updated_at=now, finished_at=None,
    )
    runs.insert_run(cur, run)
    total = runs.seed_results(cur, run.id, run.dataset_id, as_of, traced=spec.mode == "server")
    if spec.mode == "server":
        job = jobs.create_job(cur, KIND, {"run_id": run.id}, runs.job_keys(cur, run.id))
        if total:
            runs.set_status(cur, run.id, runs.PENDING, job_id=job.id)
        else:
            runs.set_status(cur, run.id, runs.COMPLETED, job_id=job.id)
    return _reload(cur, run.id)


def post_results(
    cur: duckdb.DuckDBPyConnection, dataset_ref: str, run_ref: str, rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Replace the results of these items, and the scores the client posted with them (client mode, while running)."""
    run = find(cur, dataset_ref, run_ref)
    if run.mode != "client":
        raise Conflict(f"run {run.name!r} executes on the server; only client-mode runs accept posted results")
    if run.status != runs.RUNNING or run.job_id is not None:
        raise Conflict(f"run {run.name!r} is {_state(run)}; results can be posted until it is completed")
    known = runs.known_items(cur, run.id, [r["item_id"] for r in rows])
    unknown = [r for r in rows if r["item_id"] not in known]
    if unknown:
        first = unknown[0]
        raise Invalid(
            f"results[{first['_index']}].item_id: item {first['item_id']!r} is not one of this run's items "
            f"(the dataset as of {run.as_of.isoformat()}Z)",
            unknown_item_ids=[r["item_id"] for r in unknown[:100]],
        )
    for row in rows:
        clash = next((s["name"] for s in row["scores"] if s["name"] in run.scorers), None)
        if clash is not None:
            raise Invalid(f"results[{row['_index']}].scores: {clash!r} is one of the run's server scorers; "
                          "give the client's scorer another name")
    runs.post_results(cur, run.id, rows)
    runs.replace_posted_scores(cur, run.id, rows, uuid7, utc_now())
    return {"accepted": len(rows), "run": _reload(cur, run.id)}


def complete_run(cur: duckdb.DuckDBPyConnection, dataset_ref: str, run_ref: str) -> runs.Run:
    """Close a client-mode run: unposted items become errors, and scoring starts (as a job)."""
    run = find(cur, dataset_ref, run_ref)
    if run.mode != "client":
        raise Conflict(f"run {run.name!r} executes on the server and completes by itself")
    if run.status != runs.RUNNING or run.job_id is not None:
        raise Conflict(f"run {run.name!r} is {_state(run)}; only a running client-mode run can be completed")
    runs.fail_pending(cur, run.id, NO_RESULT)
    job = jobs.create_job(cur, KIND, {"run_id": run.id}, runs.job_keys(cur, run.id))
    if job.done:  # no items: nothing to score
        runs.set_status(cur, run.id, runs.COMPLETED, job_id=job.id)
    else:
        runs.set_status(cur, run.id, runs.RUNNING, job_id=job.id)
    return _reload(cur, run.id)


def cancel_run(cur: duckdb.DuckDBPyConnection, dataset_ref: str, run_ref: str) -> runs.Run:
    run = find(cur, dataset_ref, run_ref)
    if not runs.set_status(cur, run.id, runs.CANCELLED):
        raise Conflict(f"run {run.name!r} is already {run.status}")
    return _reload(cur, run.id)


def delete_run(cur: duckdb.DuckDBPyConnection, dataset_ref: str, run_ref: str) -> None:
    """Delete a finished or cancelled run, its results and their scores.

    A run still open is refused (cancel it first), and so is a cancelled one whose worker still
    holds its job: calls in flight would write results and scores for a run that no longer exists.
    """
    run = find(cur, dataset_ref, run_ref)
    if run.status in runs.OPEN_STATUSES:
        raise Conflict(f"run {run.name!r} is {_state(run)}; cancel it first (POST .../cancel), then remove it")
    job = jobs.get_job(cur, run.job_id) if run.job_id else None
    if job is not None and job.status == jobs.RUNNING and job.lease_until is not None and job.lease_until > utc_now():
        raise Conflict(f"run {run.name!r} is still stopping its calls in flight; try again in a few seconds")
    runs.delete_run(cur, run.id, run.job_id)


def _state(run: runs.Run) -> str:
    if run.status == runs.RUNNING and run.job_id is not None:
        return "completed by the client and being scored"
    return run.status


def _reload(cur: duckdb.DuckDBPyConnection, run_id: str) -> runs.Run:
    run = runs.get_run(cur, run_id)
    assert run is not None
    return run
