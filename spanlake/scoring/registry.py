"""Where scorers come from: plugins contribute types, the config file names configured scorers.

Datasette's way: a plugin is a module (or object) with a `spanlake_scorers()` hook returning
`ScorerType`s. Our own types are plugins too: DEFAULT_PLUGINS goes through the very same
`register_plugin` as the entry points of the `spanlake.scorers` group installed packages declare:

    [project.entry-points."spanlake.scorers"]
    my_checks = "my_package.scorers"      # a module with def spanlake_scorers() -> list[ScorerType]
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from spanlake.scoring.base import Scorer, ScorerConfigError, ScorerType, is_async_scorer
from spanlake.scoring.config import MODULE_CALLABLE_RE, ScorerConfig, ScoringConfig

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "spanlake.scorers"
HOOK = "spanlake_scorers"
DEFAULT_PLUGINS = (
    "spanlake.scoring.builtins",
    "spanlake.scoring.comparison",
    "spanlake.scoring.llm_judge",
    "spanlake.scoring.http_scorer",
    "spanlake.scoring.python_scorer",
)


@dataclass
class RegisteredScorer:
    """A scorer usable by name, with the run limits the engine applies to it."""

    name: str
    type: ScorerType
    scorer: Scorer
    params: Mapping[str, Any]
    description: str
    concurrency: int
    max_attempts: int
    timeout_s: float
    origin: str  # builtin | config | plugin
    is_async: bool = False
    _slots: asyncio.Semaphore | None = field(default=None, repr=False)

    @property
    def slots(self) -> asyncio.Semaphore:
        """Shared by every batch using this scorer, so its concurrency is a true bound."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        return self._slots

    def describe(self) -> dict[str, Any]:
        shown = {k: ("***" if k in self.type.secret_params else v) for k, v in self.params.items()}
        return {
            "name": self.name,
            "type": self.type.name,
            "description": self.description,
            "origin": self.origin,
            "params": shown,
            "parameters": self.type.parameters,
            "concurrency": self.concurrency,
            "max_attempts": self.max_attempts,
            "timeout_s": self.timeout_s,
            "needs_expected_output": self.type.needs_expected_output,
            "ready": True,
        }


class ScorerRegistry:
    def __init__(self) -> None:
        self.types: dict[str, ScorerType] = {}
        self.type_origin: dict[str, str] = {}
        self.scorers: dict[str, RegisteredScorer] = {}

    @classmethod
    def load(cls, config: ScoringConfig, *, entry_points: bool = True) -> "ScorerRegistry":
        registry = cls()
        for module in DEFAULT_PLUGINS:
            registry.register_plugin(importlib.import_module(module), origin="builtin")
        if entry_points:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                try:
                    registry.register_plugin(ep.load(), origin="plugin")
                except Exception:  # a broken third-party package must not stop the server
                    log.exception("scorer plugin %r (%s) failed to load; its scorers are unavailable", ep.name, ep.value)
        for scorer_type in registry.types.values():
            if not scorer_type.needs_params:
                registry._add(ScorerConfig(name=scorer_type.name, type=scorer_type.name), where=scorer_type.name)
        for i, sc in enumerate(config.scorers):
            registry._add(sc, where=f"scorers[{i}]", origin="config")
        return registry

    def register_plugin(self, plugin: Any, *, origin: str) -> None:
        """Accept a module/object with the `spanlake_scorers` hook, or a ScorerType itself."""
        if isinstance(plugin, ScorerType):
            types: Iterable[ScorerType] = [plugin]
        elif callable(getattr(plugin, HOOK, None)):
            types = getattr(plugin, HOOK)()
        else:
            raise TypeError(f"{plugin!r} has no {HOOK}() hook and is not a ScorerType")
        for scorer_type in types:
            if scorer_type.name in self.types:
                log.warning("scorer type %r from %s ignored: already registered", scorer_type.name, origin)
                continue
            self.types[scorer_type.name] = scorer_type
            self.type_origin[scorer_type.name] = origin

    def _add(self, sc: ScorerConfig, *, where: str, origin: str | None = None) -> None:
        type_name, params = sc.type, dict(sc.params)
        if MODULE_CALLABLE_RE.match(type_name):  # `type: pkg.module:fn` is short for python + callable
            type_name, params = "python", {**params, "callable": sc.type}
        scorer_type = self.types.get(type_name)
        if scorer_type is None:
            raise ScorerConfigError(
                f"{where}.type: unknown scorer type {sc.type!r}; expected one of {', '.join(sorted(self.types))} "
                "or module:callable"
            )
        validate_params(scorer_type, params, where)
        try:
            scorer = scorer_type.create(params)
        except ScorerConfigError:
            raise
        except (ValueError, TypeError, ImportError, AttributeError) as exc:
            raise ScorerConfigError(f"{where}.params: {exc}") from None
        concurrency = sc.concurrency or scorer_type.default_concurrency
        bind = getattr(scorer, "bind_concurrency", None)
        if bind is not None:  # e.g. size an HTTP connection pool to the calls the engine allows
            bind(concurrency)
        self.scorers[sc.name] = RegisteredScorer(
            name=sc.name,
            type=scorer_type,
            scorer=scorer,
            params=params,
            description=sc.description or scorer_type.description,
            concurrency=concurrency,
            max_attempts=sc.max_attempts,
            timeout_s=sc.timeout_s,
            origin=origin or self.type_origin[scorer_type.name],
            is_async=is_async_scorer(scorer),
        )

    def get(self, name: str) -> RegisteredScorer | None:
        return self.scorers.get(name)

    def catalog(self) -> dict[str, tuple[str, ...]]:
        """Scorer name -> the rule scopes it fits, for checking rules files."""
        return {name: s.type.scopes for name, s in self.scorers.items()}

    def describe(self) -> list[dict[str, Any]]:
        """Every usable scorer, then each type that needs parameters and has none configured under its name."""
        items = [s.describe() for s in sorted(self.scorers.values(), key=lambda s: s.name)]
        for name, scorer_type in sorted(self.types.items()):
            if scorer_type.needs_params and name not in self.scorers:
                items.append(
                    {
                        "name": name,
                        "type": name,
                        "description": scorer_type.description,
                        "origin": self.type_origin[name],
                        "params": None,
                        "parameters": scorer_type.parameters,
                        "concurrency": scorer_type.default_concurrency,
                        "ready": False,
                        "hint": f"needs params: declare a scorer of type {name} under `scorers:` in the config file",
                    }
                )
        return items

    async def aclose(self) -> None:
        for registered in self.scorers.values():
            close = getattr(registered.scorer, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.exception("closing scorer %s failed", registered.name)


def validate_params(scorer_type: ScorerType, params: Mapping[str, Any], where: str) -> None:
    """Check params against the type's JSON Schema; name the first bad key as the user wrote it."""
    validator = jsonschema.Draft202012Validator(scorer_type.parameters)
    errors = sorted(validator.iter_errors(dict(params)), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        path = ".".join(str(p) for p in err.path)
        raise ScorerConfigError(f"{where}.params{'.' + path if path else ''}: {err.message}")
