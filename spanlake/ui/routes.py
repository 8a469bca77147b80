"""Every page of the web UI in one list, plus the static files it ships with."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from spanlake.ui.pages import dataset, datasets, login, rules, runs, scores, trace, traces
from spanlake.ui.templating import STATIC_DIR


def routes() -> list[BaseRoute]:
    return [
        Route("/", traces.traces_page, methods=["GET"]),
        Route("/traces", traces.traces_page, methods=["GET"]),
        Route("/traces/{trace_id}", trace.trace_page, methods=["GET"]),
        Route("/datasets", datasets.datasets_page, methods=["GET"]),
        Route("/datasets/{name}/preview", datasets.dataset_preview, methods=["GET"]),
        Route("/datasets/{name}", dataset.dataset_page, methods=["GET"]),
        Route("/scores", scores.scores_page, methods=["GET"]),
        Route("/scores/batches", scores.batches_fragment, methods=["GET"]),
        Route("/scores/summary", scores.summary_fragment, methods=["GET"]),
        Route("/rules", rules.rules_page, methods=["GET"]),
        Route("/datasets/{dataset}/runs", runs.runs_page, methods=["GET"]),
        Route("/datasets/{dataset}/runs/compare", runs.compare_page, methods=["GET"]),  # before {run_id}
        Route("/datasets/{dataset}/runs/{run_id}", runs.run_page, methods=["GET"]),
        Route("/login", login.login_page, methods=["GET"]),
        Route("/login", login.login_submit, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
