"""LLM semantic conventions -> spanlake's dedicated span columns.

Three conventions describe the same facts with different keys: OpenTelemetry GenAI
(`gen_ai.*`, https://opentelemetry.io/docs/specs/semconv/gen-ai/), OpenInference
(`input.value`, `llm.*`, `openinference.span.kind`) and OpenLLMetry/Traceloop
(`traceloop.*`, indexed `gen_ai.prompt.N.*`). Mapping them once at ingest lets filters,
capture rules and datasets use one column (`model`, `input`, ...) whatever SDK sent the span.

This runs once per span on the ingest hot path, so it works on the already-decoded attribute
dict with plain lookups, and a span carrying none of the keys below costs one set check.
"""

from __future__ import annotations

from typing import Any

import orjson

# Output column order of map_llm_fields(): the order of these columns in SPAN_SCHEMA,
# which spanrows.py relies on (tests/test_decode.py checks it).
LLM_COLUMNS: tuple[str, ...] = (
    "span_type",
    "model",
    "input",
    "output",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "session_id",
    "user_id",
)

# First key present wins. The request model comes first because it is what users ask for
# (`gpt-4o`), while the response model is often a dated snapshot (`gpt-4o-2024-08-06`).
MODEL_KEYS = (
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.model_name",
    "embedding.model_name",
    "llm.request.model",
    "llm.response.model",
)
INPUT_TOKEN_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "llm.usage.prompt_tokens",
)
OUTPUT_TOKEN_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
)
TOTAL_TOKEN_KEYS = ("llm.usage.total_tokens", "llm.token_count.total", "gen_ai.usage.total_tokens")
SESSION_KEYS = (
    "session.id",
    "gen_ai.conversation.id",
    "traceloop.association.properties.session_id",
)
USER_KEYS = ("user.id", "traceloop.association.properties.user_id", "enduser.id")

# Whole-value input/output keys, in precedence order around the indexed message lists:
# structured chat messages beat a generic "value" (OpenInference's `input.value` is often the
# raw request JSON, while `llm.input_messages.*` is the conversation itself).
INPUT_VALUE_KEYS = ("gen_ai.input.messages", "gen_ai.prompt")
INPUT_FALLBACK_KEYS = ("input.value", "traceloop.entity.input")
OUTPUT_VALUE_KEYS = ("gen_ai.output.messages", "gen_ai.completion")
OUTPUT_FALLBACK_KEYS = ("output.value", "traceloop.entity.output")

# Indexed message lists: keys are `<prefix><N><role suffix>` and `<prefix><N><content suffix>`.
INPUT_MESSAGE_LISTS = (
    ("gen_ai.prompt.", ".role", ".content"),  # OpenLLMetry
    ("llm.input_messages.", ".message.role", ".message.content"),  # OpenInference
)
OUTPUT_MESSAGE_LISTS = (
    ("gen_ai.completion.", ".role", ".content"),
    ("llm.output_messages.", ".message.role", ".message.content"),
)

KIND_KEYS = ("openinference.span.kind", "traceloop.span.kind")

# `gen_ai.operation.name` names an operation, not a span type; fold the well-known ones onto
# the span-type vocabulary so `span_type = 'llm'` finds chat calls from every SDK.
OPERATION_TO_TYPE = {
    "chat": "llm",
    "text_completion": "llm",
    "completion": "llm",
    "generate_content": "llm",
    "embeddings": "embedding",
    "embedding": "embedding",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
}

_NONE_ROW: tuple[Any, ...] = (None,) * len(LLM_COLUMNS)


def _with_first_keys(lists: tuple[tuple[str, str, str], ...]) -> tuple[tuple[str, ...], ...]:
    """Append each list's index-0 keys, so a span without that list costs two lookups."""
    return tuple((p, r, c, f"{p}0{r}", f"{p}0{c}") for p, r, c in lists)


_INPUT_LISTS = _with_first_keys(INPUT_MESSAGE_LISTS)
_OUTPUT_LISTS = _with_first_keys(OUTPUT_MESSAGE_LISTS)

# Every key whose presence means the span may carry LLM fields: the fast-path check.
TRIGGER_KEYS = frozenset(
    MODEL_KEYS
    + INPUT_TOKEN_KEYS
    + OUTPUT_TOKEN_KEYS
    + TOTAL_TOKEN_KEYS
    + SESSION_KEYS
    + USER_KEYS
    + KIND_KEYS
    + ("gen_ai.operation.name",)
    + INPUT_VALUE_KEYS
    + INPUT_FALLBACK_KEYS
    + OUTPUT_VALUE_KEYS
    + OUTPUT_FALLBACK_KEYS
    + tuple(k for lst in _INPUT_LISTS + _OUTPUT_LISTS for k in lst[3:])
)


def map_llm_fields(attrs: dict[str, Any]) -> tuple[Any, ...]:
    """Return the values of LLM_COLUMNS for one span's decoded attributes (None = unknown).

    Written as inline loops over the key tuples above (first usable key wins) rather than
    one helper call per column: this runs for every span and calls are the cost here.
    """
    if attrs.keys().isdisjoint(TRIGGER_KEYS):
        return _NONE_ROW
    get = attrs.get
    model = _first_text(get, MODEL_KEYS)
    in_tok = out_tok = total = None
    for key in INPUT_TOKEN_KEYS:
        if (value := get(key)) is not None and (in_tok := _as_int(value)) is not None:
            break
    for key in OUTPUT_TOKEN_KEYS:
        if (value := get(key)) is not None and (out_tok := _as_int(value)) is not None:
            break
    for key in TOTAL_TOKEN_KEYS:
        if (value := get(key)) is not None and (total := _as_int(value)) is not None:
            break
    if total is None and (in_tok is not None or out_tok is not None):
        total = (in_tok or 0) + (out_tok or 0)
    return (
        _span_type(get, model),
        model,
        _io(attrs, INPUT_VALUE_KEYS, _INPUT_LISTS, INPUT_FALLBACK_KEYS),
        _io(attrs, OUTPUT_VALUE_KEYS, _OUTPUT_LISTS, OUTPUT_FALLBACK_KEYS),
        in_tok,
        out_tok,
        total,
        _first_text(get, SESSION_KEYS),
        _first_text(get, USER_KEYS),
    )


def _span_type(get: Any, model: str | None) -> str | None:
    for key in KIND_KEYS:
        kind = get(key)
        if type(kind) is str and kind:
            return kind.lower()
    op = get("gen_ai.operation.name")
    if type(op) is str and op:
        op = op.lower()
        return OPERATION_TO_TYPE.get(op, op)
    return "llm" if model is not None else None


def _io(
    attrs: dict[str, Any],
    value_keys: tuple[str, ...],
    lists: tuple[tuple[str, ...], ...],
    fallback_keys: tuple[str, ...],
) -> str | None:
    """Input or output text: whole-value keys, then indexed message lists, then generic values."""
    get = attrs.get
    text = _first_text(get, value_keys)
    if text is not None:
        return text
    for prefix, role_suffix, content_suffix, first_role, first_content in lists:
        if first_role in attrs or first_content in attrs:
            messages = _messages(get, prefix, role_suffix, content_suffix)
            return orjson.dumps(messages).decode()
    return _first_text(get, fallback_keys)


def _messages(get: Any, prefix: str, role_suffix: str, content_suffix: str) -> list:
    """Collect `<prefix>N<suffix>` messages for N = 0, 1, ... until an index has neither key.

    SDKs number messages densely from 0, so walking indices costs a few lookups instead of a
    scan of every attribute key on every span.
    """
    out = []
    i = 0
    while True:
        role = get(f"{prefix}{i}{role_suffix}")
        content = get(f"{prefix}{i}{content_suffix}")
        if role is None and content is None:
            return out
        out.append({"role": role, "content": content})
        i += 1


def _first_text(get: Any, keys: tuple[str, ...]) -> str | None:
    """First present value as text; structured values (lists, maps) become JSON text."""
    for key in keys:
        value = get(key)
        if value is None:
            continue
        if type(value) is str:
            return value
        return orjson.dumps(value).decode()
    return None


def _as_int(value: Any) -> int | None:
    """A token count; SDKs send ints, and sometimes doubles or decimal strings."""
    kind = type(value)
    if kind is int:
        return value
    if kind is float:
        if value == value and abs(value) < 2**63:  # not NaN, fits BIGINT
            return int(value)
        return None
    if kind is str:
        value = value.strip()
        if value.isascii() and value.isdigit() and len(value) < 19:  # < 2**63
            return int(value)
    return None
