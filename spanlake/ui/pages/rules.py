"""The rules page: the loaded rules file, each rule with its counters, and the last reload error.

It renders what `GET /api/rules` answers (`api.rules.rules_listing`). Counters are shown
generically: every number a rule carries in `counters`, or in any other object it has (scoring
rules add a `scoring` object), becomes a labelled figure, so new counters show without a change here.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from spanlake.api.errors import ApiError
from spanlake.api.rules import rules_listing
from spanlake.ui.templating import render

SHOWN_ELSEWHERE = {"name", "dataset", "scope", "enabled", "definition", "score"}


def _label(key: str) -> str:
    return key.replace("_", " ")


def counter_groups(rule: dict[str, Any]) -> list[dict[str, Any]]:
    """Each object of the rule as a titled group: numbers as figures, lists of objects as entries."""
    groups = []
    for key, value in rule.items():
        if key in SHOWN_ELSEWHERE or not isinstance(value, dict):
            continue
        figures, words, entries = [], [], []
        for name, inner in value.items():
            if isinstance(inner, bool) or isinstance(inner, str):
                words.append((_label(name), str(inner)))
            elif isinstance(inner, (int, float)):
                figures.append((_label(name), inner))
            elif isinstance(inner, list) and all(isinstance(x, (str, int, float)) for x in inner):
                words.append((_label(name), ", ".join(map(str, inner)) or "–"))
            elif isinstance(inner, list):
                entries.append((_label(name), inner))
        groups.append({"title": _label(key), "figures": figures, "words": words, "entries": entries})
    return groups


async def rules_page(request: Request) -> Response:
    try:
        listing = await rules_listing(request)
    except ApiError as exc:
        context = {"title": "Rules", "message": exc.message, "back_href": "/", "back_label": "Back to traces"}
        return render(request, "error.html", context, status_code=exc.status)
    rules = [{**rule, "groups": counter_groups(rule)} for rule in listing["items"]]
    return render(request, "rules.html", {**listing, "rules": rules})
