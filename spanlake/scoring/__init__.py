"""Scoring: scorers (built-in, LLM judge, HTTP, Python, plugins), batch jobs and their scores.

What plugin authors import lives here; see README.md in this directory for the config format.
"""

from spanlake.scoring.base import (
    FunctionScorer,
    ScoreContext,
    ScoreResult,
    Scorer,
    ScorerConfigError,
    ScorerType,
    ScoringError,
    TransientError,
)

__all__ = [
    "FunctionScorer",
    "ScoreContext",
    "ScoreResult",
    "Scorer",
    "ScorerConfigError",
    "ScorerType",
    "ScoringError",
    "TransientError",
]
