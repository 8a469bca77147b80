"""`python` scorers: your own function or class, named `module:callable` in the config.

```yaml
scorers:
  - name: polite
    type: my_checks.tone:is_polite      # short for type: python, params.callable: my_checks.tone:is_polite
    params: {min_words: 3}              # the rest of params reach the scorer as ctx.params
```

A function `fn(ctx) -> ScoreResult | number | bool | dict` (sync or async) is called per trace;
a class is instantiated once with the params and used through its `score(ctx)` method.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from spanlake.scoring.base import FunctionScorer, Scorer, ScorerType

PARAMETERS = {
    "type": "object",
    "properties": {"callable": {"type": "string", "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
                                "description": "module:callable to import"}},
    "required": ["callable"],
    "additionalProperties": True,
}


def import_callable(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"callable {spec!r}: cannot import {module_name}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(f"callable {spec!r}: {module_name} has no attribute {attr}") from None
    return obj


def create(params: Mapping[str, Any]) -> Scorer:
    target = import_callable(params["callable"])
    rest = {k: v for k, v in params.items() if k != "callable"}
    if inspect.isclass(target):
        return target(rest)
    if not callable(target):
        raise TypeError(f"callable {params['callable']!r} is a {type(target).__name__}, not a function or class")
    return FunctionScorer(target)


def spanlake_scorers() -> list[ScorerType]:
    return [ScorerType("python", "calls a Python function or class named module:callable", create, PARAMETERS)]
