"""The `pricing:` section: what a model's tokens cost, so runs show what they spent.

```yaml
pricing:                      # USD per million tokens
  gpt-4o-mini: {input: 0.15, output: 0.60}
  gpt-4o: {input: 2.50, output: 10.00}
```

A run's model is its `metadata.model` (set when the run is created). A result costs
`input_tokens x input + output_tokens x output` (per million); a result that reported only a
total, or no tokens, has no cost, and a run's cost is the sum over its results. Nothing is
priced for a model the table does not name: a guessed price would be worse than none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spanlake.config_section import SettingsError, parse_section

PER_TOKENS = 1_000_000
CURRENCY = "USD"


class PricingError(SettingsError):
    """The `pricing:` section cannot be used; the message names the key."""


@dataclass(frozen=True)
class Price:
    input: float
    output: float

    def cost(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        if input_tokens is None and output_tokens is None:
            return None
        return ((input_tokens or 0) * self.input + (output_tokens or 0) * self.output) / PER_TOKENS


@dataclass(frozen=True)
class Pricing:
    models: Mapping[str, Price] = field(default_factory=dict)

    @classmethod
    def from_sections(cls, sections: Mapping[str, Any]) -> "Pricing":
        """The config file's `pricing:` section: model name -> {input, output}."""
        raw = sections.get("pricing") or {}
        if not isinstance(raw, Mapping):
            raise PricingError("pricing: expected a mapping of model name to {input, output} prices per million tokens")
        models = {}
        for model, price in raw.items():
            where = f"pricing.{model}"
            parsed = parse_section(price, Price, where, PricingError)
            for key in ("input", "output"):
                if getattr(parsed, key) < 0:
                    raise PricingError(f"{where}.{key}: must be a number >= 0, got {getattr(parsed, key)!r}")
            models[str(model)] = parsed
        return cls(models)

    def price(self, model: Any) -> Price | None:
        return self.models.get(model) if isinstance(model, str) else None


def run_model(run: Mapping[str, Any]) -> str | None:
    model = (run.get("metadata") or {}).get("model")
    return model if isinstance(model, str) else None


def price_results(results: list[dict[str, Any]], model: str | None, pricing: Pricing) -> None:
    """Add `cost` to each result (None when it cannot be priced)."""
    price = pricing.price(model)
    for result in results:
        tokens = result.get("tokens") or {}
        result["cost"] = None if price is None else price.cost(tokens.get("input"), tokens.get("output"))


def price_summary(summary: dict[str, Any], model: str | None, pricing: Pricing) -> None:
    """Add `cost` to a run summary: the sum of its results' costs, or None without a price."""
    price = pricing.price(model)
    tokens = summary.get("tokens")
    if price is None or tokens is None:
        summary["cost"] = None
        return
    summary["cost"] = {
        "model": model,
        "currency": CURRENCY,
        "total": price.cost(tokens["input"], tokens["output"]),
        "input_per_million": price.input,
        "output_per_million": price.output,
    }
