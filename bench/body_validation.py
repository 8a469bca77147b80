"""Request-body validation cost per body: pydantic models vs msgspec structs vs the old hand checks.

    python bench/body_validation.py --impl pydantic          # this checkout's models (api/shapes, validate.py)
    PYTHONPATH=/tmp/msgspec python bench/body_validation.py --impl msgspec   # msgspec installed there
    PYTHONPATH=<checkout before issue 16> python bench/body_validation.py --impl hand

Three bodies: a dataset item batch of 100 items (chat-message input, expected output, metadata,
topic, tags, source ids), a manual score, a run config (target, headers, scorers, thresholds).
Each is validated from the already-parsed JSON value (parsing costs the same for all three), and
every variant runs the same domain checks (text rules, hex ids, storable JSON), so the figures
compare the validation machinery. Prints the median microseconds per body over --rounds rounds.
"""


import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

ITEMS = {"items": [
    {
        "input": {"messages": [{"role": "system", "content": "You are terse."},
                               {"role": "user", "content": f"question {n}: what is the refund policy?"}]},
        "expected_output": f"answer {n}: refunds within 30 days",
        "metadata": {"source": "prod", "customer": f"c{n % 7}", "lang": "en"},
        "topic": "refunds",
        "tags": ["support", "policy"],
        "source_trace_id": f"{n + 1:032x}",
        "source_span_id": f"{n + 1:016x}",
    }
    for n in range(100)
]}
SCORE = {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331", "name": "helpfulness",
         "value": 0.75, "source": "annotation", "scorer": "reviewer", "explanation": "mostly right",
         "metadata": {"reviewer": "ana"}}
RUN = {"name": "baseline-7", "target": {"url": "https://agent.internal/run", "headers": {"X-Team": "evals"},
                                        "timeout_s": 30, "max_attempts": 2},
       "scorers": ["exact_match", "levenshtein"], "thresholds": {"exact_match": 1, "levenshtein": 0.8},
       "concurrency": 8, "metadata": {"commit": "abc123"}}


def pydantic_checks() -> dict[str, Callable[[Any], Any]]:
    from spanlake.api.shapes.datasets import NewItems
    from spanlake.api.shapes.scores import ScoreInput
    from spanlake.runs.validate import NewRun

    return {
        "item batch (100)": lambda b: [i.new_item() for i in NewItems.model_validate(b).items],
        "score": ScoreInput.model_validate,
        "run config": NewRun.model_validate,
    }


def hand_checks() -> dict[str, Callable[[Any], Any]]:
    from spanlake.api.scores import _manual_score  # type: ignore[attr-defined]
    from spanlake.datasets import validate
    from spanlake.runs.validate import run_spec

    return {
        "item batch (100)": lambda b: [validate.item(obj, f"items[{n}]") for n, obj in enumerate(b["items"])],
        "score": _manual_score,
        "run config": run_spec,
    }


def msgspec_checks() -> dict[str, Callable[[Any], Any]]:
    from typing import Annotated, Literal

    import msgspec

    from spanlake.datasets import validate
    from spanlake.runs.validate import _headers, _url, run_name

    Trace = Annotated[str, msgspec.Meta(pattern="^[0-9a-fA-F]{32}$")]
    Span = Annotated[str, msgspec.Meta(pattern="^[0-9a-fA-F]{16}$")]

    class Item(msgspec.Struct, forbid_unknown_fields=True):
        input: Any
        expected_output: Any = None
        metadata: dict[str, Any] | None = None
        topic: Annotated[str, msgspec.Meta(max_length=200)] | None = None
        tags: Annotated[list[str], msgspec.Meta(max_length=64)] | None = None
        source_trace_id: Trace | None = None
        source_span_id: Span | None = None

        def __post_init__(self) -> None:
            validate.present_json(self.input, "input")
            validate.optional_json(self.expected_output, "expected_output")
            validate.metadata(self.metadata)
            self.topic = validate.topic(self.topic)
            self.tags = list(validate.tags(self.tags))
            if self.source_trace_id:
                self.source_trace_id = validate.hex_id(self.source_trace_id, "source_trace_id", 32)
            if self.source_span_id:
                self.source_span_id = validate.hex_id(self.source_span_id, "source_span_id", 16)

    class Items(msgspec.Struct, forbid_unknown_fields=True):
        items: Annotated[list[Item], msgspec.Meta(min_length=1, max_length=10_000)]

    class Score(msgspec.Struct, forbid_unknown_fields=True):
        name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
        trace_id: Trace | None = None
        span_id: Span | None = None
        item_id: str | None = None
        value: bool | float | None = None
        label: str | None = None
        data_type: Literal["numeric", "boolean", "categorical"] | None = None
        source: Literal["api", "annotation"] = "api"
        scorer: str | None = None
        explanation: str | None = None
        metadata: dict[str, Any] | None = None

    class Target(msgspec.Struct, forbid_unknown_fields=True):
        url: str
        headers: dict[str, str] = {}
        timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 60.0
        max_attempts: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1

        def __post_init__(self) -> None:
            _url(self.url, "target.url")
            _headers(self.headers, "target.headers")

    class Run(msgspec.Struct, forbid_unknown_fields=True):
        name: str | None = None
        mode: Literal["server", "client"] | None = None
        target: Target | None = None
        scorers: list[str] | None = None
        thresholds: dict[str, float] | None = None
        concurrency: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
        metadata: dict[str, Any] | None = None
        as_of: str | None = None

        def __post_init__(self) -> None:
            if self.name is not None:
                run_name(self.name)

    return {
        # The same NewItem rows as the pydantic variant builds (ids, JSON text).
        "item batch (100)": lambda b: [validate.ItemIn.new_item(i) for i in msgspec.convert(b, Items).items],
        "score": lambda b: msgspec.convert(b, Score),
        "run config": lambda b: msgspec.convert(b, Run),
    }


def per_body_us(fn: Callable[[Any], Any], body: Any, rounds: int) -> float:
    fn(body)  # warm up (pydantic builds validators lazily on first use)
    samples = []
    for _ in range(rounds):
        n = 200
        start = time.perf_counter()
        for _ in range(n):
            fn(body)
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", choices=("pydantic", "msgspec", "hand"), required=True)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    checks = {"pydantic": pydantic_checks, "msgspec": msgspec_checks, "hand": hand_checks}[args.impl]()
    bodies = {"item batch (100)": ITEMS, "score": SCORE, "run config": RUN}
    for name, fn in checks.items():
        print(f"{args.impl:9} {name:18} {per_body_us(fn, bodies[name], args.rounds):9.1f} us/body")


if __name__ == "__main__":
    main()
