"""Capture and scoring rules: the YAML file operators keep in their config repo, loaded and validated.

A rule captures matches into a dataset (`dataset:`), scores them in the background (`score:`,
scorer names from the config), or both.

Validation collects every problem, each with the rule's name and the path inside it
(`rules[2] (slow-calls).when.and[0].op: unknown op 'explode'`), so `spanlake rules check`
can print them all at once and a hot reload can refuse a broken file without guessing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from spanlake.datasets.capture import parse_span_field
from spanlake.datasets.errors import Invalid
from spanlake.datasets.validate import dataset_name
from spanlake.filters import FilterError, parse_filter
from spanlake.store.filter_sql import CompiledFilter, compile_filter
from spanlake.store.rule_sampling import sample_threshold

SCOPES = ("span", "trace")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_KNOWN_KEYS = frozenset(
    {
        "name", "dataset", "scope", "when", "sample", "input", "expected_output", "topic", "tags",
        "max_per_hour", "enabled", "root_only", "capture_spans", "description", "score",
    }
)
# Keys that only mean something when the rule captures into a dataset.
_CAPTURE_KEYS = ("input", "expected_output", "topic", "tags", "capture_spans")
# What `rules check` and the server know about scorers: name -> the scopes it can score.
ScorerCatalog = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Rule:
    name: str
    dataset: str | None  # None: the rule only scores
    when: CompiledFilter
    definition: dict[str, Any]  # as written, for /api/rules
    scope: str = "span"
    sample: float = 1.0
    input: str = "input"
    expected_output: str | None = "output"
    topic: str | None = None
    tags: tuple[str, ...] = ()
    max_per_hour: int | None = None
    enabled: bool = True
    root_only: bool = False
    capture_spans: CompiledFilter | None = None
    score: tuple[str, ...] = ()  # scorer names; each match is scored by each of them

    @property
    def cost(self) -> int:
        """Budget units one match uses: a scorer call per scorer, else one capture."""
        return len(self.score) or 1


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    source: str | None = None
    digest: str = ""

    def active(self, scope: str) -> list[Rule]:
        return [r for r in self.rules if r.enabled and r.scope == scope]

    def scorer_names(self) -> set[str]:
        return {name for rule in self.rules for name in rule.score}

    def by_name(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)


class RulesError(ValueError):
    """A rules file that cannot be used; `problems` lists every error found, one per line."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} error(s):\n" + "\n".join(f"  {p}" for p in problems))


def sampled_in(rule_name: str, key: str, fraction: float) -> bool:
    """Python twin of the SQL sampling expression (store/rule_sampling.py), used by tests."""
    if fraction >= 1.0:
        return True
    digest = hashlib.md5((rule_name + key).encode()).hexdigest()
    return int(digest[:8], 16) < sample_threshold(fraction)


class _Validator:
    def __init__(self, scorers: ScorerCatalog | None = None) -> None:
        self.problems: list[str] = []
        self.scorers = scorers  # None: scorer names are not checked (no config at hand)

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def rule(self, index: int, raw: Any, seen: set[str]) -> Rule | None:
        label = f"rules[{index}]"
        if not isinstance(raw, dict):
            self.problem(label, f"expected a mapping, got {type(raw).__name__}")
            return None
        name = raw.get("name")
        if isinstance(name, str):
            label = f"rules[{index}] ({name})"
        before = len(self.problems)
        if not isinstance(name, str) or not _NAME.match(name):
            self.problem(label + ".name", "required: letters, digits, '_', '-', '.' (max 128)")
        elif name in seen:
            self.problem(label + ".name", f"duplicate rule name {name!r}")
        else:
            seen.add(name)
        for key in raw:
            if key not in _KNOWN_KEYS:
                self.problem(f"{label}.{key}", f"unknown key; expected one of {', '.join(sorted(_KNOWN_KEYS))}")
        dataset = raw.get("dataset")
        score = self._score(raw, label, raw.get("scope", "span"))
        if dataset is None and "score" not in raw:
            self.problem(label + ".dataset", "required: the dataset name (created if missing), or score: [scorer, ...]")
        elif dataset is None:
            for key in _CAPTURE_KEYS:
                if key in raw:
                    self.problem(f"{label}.{key}", "only applies to rules with a dataset")
        elif not isinstance(dataset, str) or not dataset.strip():
            self.problem(label + ".dataset", "must be the dataset name (created if missing)")
        else:
            try:
                dataset_name(dataset, label + ".dataset")
            except Invalid as exc:
                self.problems.append(str(exc))
        scope = raw.get("scope", "span")
        if scope not in SCOPES:
            self.problem(label + ".scope", f"must be 'span' or 'trace', got {scope!r}")
        when = self._filter(raw, "when", label, required=True)
        capture_spans = self._filter(raw, "capture_spans", label, required=False)
        sample = raw.get("sample", 1.0)
        if isinstance(sample, bool) or not isinstance(sample, (int, float)) or not 0 < sample <= 1:
            self.problem(label + ".sample", f"must be a number in (0, 1], got {sample!r}")
        for key, default in (("input", "input"), ("expected_output", "output")):
            value = raw.get(key, default)
            if value is not None:
                try:
                    parse_span_field(value, f"{label}.{key}")
                except Invalid as exc:
                    self.problems.append(str(exc))
        topic = raw.get("topic")
        if topic is not None and not isinstance(topic, str):
            self.problem(label + ".topic", "must be a string")
        tags = raw.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            self.problem(label + ".tags", "must be a list of strings")
        cap = raw.get("max_per_hour")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            self.problem(label + ".max_per_hour", f"must be a positive integer, got {cap!r}")
        for key in ("enabled", "root_only"):
            if key in raw and not isinstance(raw[key], bool):
                self.problem(f"{label}.{key}", "must be true or false")
        if scope == "span":
            for key in ("root_only", "capture_spans"):
                if key in raw:
                    self.problem(f"{label}.{key}", "only applies to scope: trace")
        if len(self.problems) > before:
            return None
        return Rule(
            name=name,
            dataset=dataset.strip() if dataset is not None else None,
            when=when,  # type: ignore[arg-type]
            definition=raw,
            scope=scope,
            sample=float(sample),
            input=raw.get("input", "input"),
            expected_output=raw.get("expected_output", "output"),
            topic=topic,
            tags=tuple(tags),
            max_per_hour=cap,
            enabled=raw.get("enabled", True),
            root_only=raw.get("root_only", False),
            capture_spans=capture_spans,
            score=score,
        )

    def _score(self, raw: dict, label: str, scope: Any) -> tuple[str, ...]:
        if "score" not in raw:
            return ()
        where = label + ".score"
        names = raw["score"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            self.problem(where, "must be a non-empty list of scorer names (the config's scorers:, or built-ins)")
            return ()
        if len(set(names)) != len(names):
            self.problem(where, "names a scorer twice")
        if self.scorers is not None:
            for i, scorer in enumerate(names):
                scopes = self.scorers.get(scorer)
                if scopes is None:
                    known = ", ".join(sorted(self.scorers))
                    self.problem(f"{where}[{i}]", f"unknown scorer {scorer!r}; expected one of {known}")
                elif scope in SCOPES and scope not in scopes:
                    fits = " or ".join(scopes) if scopes else "no rule"
                    self.problem(f"{where}[{i}]", f"scorer {scorer!r} cannot score a {scope}; it fits {fits} scope")
        return tuple(names)

    def _filter(self, raw: dict, key: str, label: str, *, required: bool) -> CompiledFilter | None:
        if key not in raw:
            if required:
                self.problem(f"{label}.{key}", "required: a filter (see the filter language)")
            return None
        try:
            return compile_filter(parse_filter(raw[key], path=f"{label}.{key}"))
        except FilterError as exc:
            self.problems.append(str(exc))
            return None


def parse_rules(text: str, source: str = "<rules>", scorers: ScorerCatalog | None = None) -> RuleSet:
    """Parse and validate a rules document; raise RulesError listing every problem.

    `scorers` (name -> scopes it can score) checks every `score:` name; None skips that check."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(source, [f"not valid YAML: {exc}"]) from None
    if doc is None:
        doc = {"rules": []}
    if not isinstance(doc, dict) or set(doc) - {"rules"}:
        raise RulesError(source, ["top level must be a mapping with one key, 'rules' (a list)"])
    raw_rules = doc.get("rules") or []
    if not isinstance(raw_rules, list):
        raise RulesError(source, ["rules: must be a list"])
    validator = _Validator(scorers)
    seen: set[str] = set()
    rules = [validator.rule(i, raw, seen) for i, raw in enumerate(raw_rules)]
    if validator.problems:
        raise RulesError(source, validator.problems)
    return RuleSet(tuple(r for r in rules if r is not None), source, hashlib.sha256(text.encode()).hexdigest())


def load_rules(path: str | Path, scorers: ScorerCatalog | None = None) -> RuleSet:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise RulesError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    return parse_rules(text, str(path), scorers)
