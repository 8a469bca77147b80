"""Table definitions and migrations: the one place where the store's shape is written down.

The spans table is declared once, as an Arrow schema, because the decoder builds Arrow batches
of exactly this shape and the writer appends them in bulk. The DDL is derived from it so the two
cannot drift. No PRIMARY KEY / UNIQUE / INDEX anywhere: DuckLake has none, and we keep one dialect.
"""

from __future__ import annotations

import pyarrow as pa

# Columns every span row carries. JSON-valued columns are Arrow strings holding JSON text;
# they become DuckDB JSON columns in the table.
SPAN_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),  # 32 lowercase hex chars
        ("span_id", pa.string()),  # 16 lowercase hex chars
        ("parent_span_id", pa.string()),  # NULL for a root span
        ("trace_state", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),  # UNSPECIFIED | INTERNAL | SERVER | CLIENT | PRODUCER | CONSUMER
        ("status", pa.string()),  # UNSET | OK | ERROR
        ("status_message", pa.string()),
        ("start_time", pa.timestamp("ns")),  # UTC
        ("end_time", pa.timestamp("ns")),
        ("duration_ms", pa.float64()),
        ("service_name", pa.string()),
        ("scope_name", pa.string()),
        ("scope_version", pa.string()),
        # LLM fields mapped from GenAI / OpenInference / OpenLLMetry conventions.
        ("span_type", pa.string()),  # llm | chain | tool | retriever | embedding | agent | ...
        ("model", pa.string()),
        ("input", pa.string()),  # text, or JSON text when structured (chat messages)
        ("output", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("session_id", pa.string()),
        ("user_id", pa.string()),
        # Everything the client sent, so nothing is lost.
        ("attributes", pa.string()),  # JSON object
        ("resource_attributes", pa.string()),  # JSON object
        ("scope_attributes", pa.string()),  # JSON object
        ("events", pa.string()),  # JSON array
        ("links", pa.string()),  # JSON array
        ("flags", pa.int64()),
        ("dropped_counts", pa.string()),  # JSON object: attributes/events/links dropped by the SDK
    ]
)

JSON_COLUMNS = frozenset(
    {"attributes", "resource_attributes", "scope_attributes", "events", "links", "dropped_counts"}
)

_ARROW_TO_SQL = {
    pa.string(): "VARCHAR",
    pa.timestamp("ns"): "TIMESTAMP_NS",
    pa.float64(): "DOUBLE",
    pa.int64(): "BIGINT",
}


def _span_columns_ddl() -> str:
    cols = []
    for field in SPAN_SCHEMA:
        sql_type = "JSON" if field.name in JSON_COLUMNS else _ARROW_TO_SQL[field.type]
        cols.append(f"    {field.name} {sql_type}")
    # Set by the writer: when the commit happened. Pagination snapshots use it.
    cols.append("    ingested_at TIMESTAMP")
    return ",\n".join(cols)


# OpenTelemetry GenAI events that arrived as OTLP log records (ingest/decode_logs.py): one row
# each, linked to their span by id. The loader merges them into the span's `events`.
GENAI_EVENT_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("time", pa.timestamp("ns")),  # time_unix_nano, else observed_time_unix_nano
        ("name", pa.string()),  # gen_ai.user.message, gen_ai.choice, ...
        ("service_name", pa.string()),
        ("attributes", pa.string()),  # JSON object
        ("body", pa.string()),  # JSON text of the AnyValue body (NULL when unset)
    ]
)


SPAN_COLUMN_NAMES: tuple[str, ...] = tuple(SPAN_SCHEMA.names) + ("ingested_at",)

# Each migration is a list of statements; the index + 1 is the schema version.
MIGRATIONS: list[list[str]] = [
    [
        f"CREATE TABLE IF NOT EXISTS spans (\n{_span_columns_ddl()}\n)",
        # One row per (trace, commit): a small table that answers "where is trace X?" and
        # "which traces are newest?" without scanning the wide spans table. trace_key is an
        # integer from the trace id (see TRACE_KEY_SQL): equality on it scans 8-byte ints
        # instead of 32-char strings, ~15x faster for a point lookup.
        """CREATE TABLE IF NOT EXISTS trace_index (
    trace_key BIGINT,
    trace_id VARCHAR,
    start_time TIMESTAMP_NS,
    end_time TIMESTAMP_NS,
    span_count BIGINT,
    error_count BIGINT,
    total_tokens BIGINT,
    root_name VARCHAR,
    root_span_id VARCHAR,
    service_name VARCHAR,
    ingested_at TIMESTAMP
)""",
        """CREATE TABLE IF NOT EXISTS datasets (
    id VARCHAR,
    name VARCHAR,
    description VARCHAR,
    metadata JSON,
    created_at TIMESTAMP,
    updated_at TIMESTAMP,
    deleted_at TIMESTAMP
)""",
        """CREATE TABLE IF NOT EXISTS dataset_items (
    id VARCHAR,
    dataset_id VARCHAR,
    input JSON,
    expected_output JSON,
    metadata JSON,
    topic VARCHAR,
    tags VARCHAR[],
    source_trace_id VARCHAR,
    source_span_id VARCHAR,
    created_at TIMESTAMP,
    valid_from TIMESTAMP,
    valid_to TIMESTAMP,
    change VARCHAR,
    created_by VARCHAR
)""",
        """CREATE TABLE IF NOT EXISTS scores (
    id VARCHAR,
    trace_id VARCHAR,
    span_id VARCHAR,
    name VARCHAR,
    value DOUBLE,
    label VARCHAR,
    data_type VARCHAR,
    source VARCHAR,
    scorer VARCHAR,
    explanation VARCHAR,
    metadata JSON,
    batch_id VARCHAR,
    run_id VARCHAR,
    run_result_id VARCHAR,
    created_at TIMESTAMP,
    created_by VARCHAR,
    item_id VARCHAR
)""",
        # Background work that must survive a restart: scoring batches, trace-scope capture,
        # runs, retention. `owner` + `lease_until` let one replica claim a job at a time.
        """CREATE TABLE IF NOT EXISTS jobs (
    id VARCHAR,
    kind VARCHAR,
    status VARCHAR,
    params JSON,
    total BIGINT,
    completed BIGINT,
    failed BIGINT,
    errors JSON,
    owner VARCHAR,
    lease_until TIMESTAMP,
    created_at TIMESTAMP,
    updated_at TIMESTAMP,
    finished_at TIMESTAMP
)""",
        """CREATE TABLE IF NOT EXISTS job_items (
    job_id VARCHAR,
    seq BIGINT,
    trace_id VARCHAR,
    span_id VARCHAR,
    status VARCHAR,
    attempts BIGINT,
    error VARCHAR,
    updated_at TIMESTAMP
)""",
    ],
    [
        # Traces waiting for trace-scope capture rules: judged once quiet, then deleted in the
        # same transaction that captures them, so a restart neither loses nor repeats one.
        """CREATE TABLE IF NOT EXISTS capture_pending (
    trace_id VARCHAR,
    last_seen TIMESTAMP
)""",
    ],
    [
        # Lock rows for cross-replica exclusion and leases (see store/locks.py): a transaction that
        # UPDATEs a row conflicts on DuckLake with every other one that does, so one retries.
        # Two replicas running this migration at once both create the table and conflict too.
        """CREATE TABLE IF NOT EXISTS locks (
    name VARCHAR,
    holder VARCHAR,
    lease_until TIMESTAMP,
    version BIGINT,
    updated_at TIMESTAMP
)""",
        "INSERT INTO locks VALUES ('uniqueness', NULL, NULL, 0, NULL), ('maintenance', NULL, NULL, 0, NULL), "
        "('capture-judge', NULL, NULL, 0, NULL)",
    ],
    [
        # Dataset runs (experiments): one row per run, one result row per dataset item, created
        # pending when the run starts so `seq` (the item's position) pairs it with its job item.
        """CREATE TABLE IF NOT EXISTS runs (
    id VARCHAR,
    dataset_id VARCHAR,
    name VARCHAR,
    mode VARCHAR,
    as_of TIMESTAMP,
    target JSON,
    scorers JSON,
    thresholds JSON,
    concurrency BIGINT,
    status VARCHAR,
    error VARCHAR,
    metadata JSON,
    job_id VARCHAR,
    created_at TIMESTAMP,
    updated_at TIMESTAMP,
    finished_at TIMESTAMP,
    created_by VARCHAR
)""",
        """CREATE TABLE IF NOT EXISTS run_results (
    id VARCHAR,
    run_id VARCHAR,
    seq BIGINT,
    item_id VARCHAR,
    status VARCHAR,
    output JSON,
    error VARCHAR,
    trace_id VARCHAR,
    span_id VARCHAR,
    parent_span_id VARCHAR,
    latency_ms DOUBLE,
    input_tokens BIGINT,
    output_tokens BIGINT,
    total_tokens BIGINT,
    created_at TIMESTAMP,
    updated_at TIMESTAMP
)""",
    ],
    [
        # The write fence (store/fence.py): a replica that must delete from tables other replicas
        # keep inserting into (retention) asks them to hold their writes for a moment.
        "INSERT INTO locks VALUES ('write-fence', NULL, NULL, 0, NULL)",
    ],
    [
        # The name of the API key that wrote the row (store/actor.py); NULL for rows the server
        # wrote on its own (capture rules) and for servers without keys. Never the key itself.
        # New stores get these columns (and scores.item_id below) in the CREATE TABLEs above, so
        # the ALTERs only upgrade older stores: on DuckLake 1.5.5 a table altered this way and
        # then scanned while another replica writes can fail with "INTERNAL Error: Attempted to
        # access index 0 within vector of size 0" (seen in tests/test_lake_replicas.py), which
        # invalidates the database.
        "ALTER TABLE scores ADD COLUMN IF NOT EXISTS created_by VARCHAR",
        "ALTER TABLE dataset_items ADD COLUMN IF NOT EXISTS created_by VARCHAR",
        "ALTER TABLE runs ADD COLUMN IF NOT EXISTS created_by VARCHAR",
    ],
    [
        # Scoring rules' matches waiting to become scoring jobs (store/rule_scores.py): the ingest
        # transaction only appends here; a background dispatcher moves rows into jobs and deletes
        # them in one transaction, so a restart neither loses nor repeats a match's scoring.
        """CREATE TABLE IF NOT EXISTS rule_score_queue (
    rule VARCHAR,
    scorer VARCHAR,
    scope VARCHAR,
    trace_id VARCHAR,
    span_id VARCHAR,
    queued_at TIMESTAMP
)""",
    ],
    [
        # A score may target a dataset item (an item added by hand has no trace to score).
        "ALTER TABLE scores ADD COLUMN IF NOT EXISTS item_id VARCHAR",
    ],
    [
        # How far each ingest log (ingest/log.py; one per server, on its local disk) has been
        # loaded. The loader appends a row in the same transaction as the spans it loads, so a
        # crash replays from exactly there; appends only, so replicas on a lake never conflict.
        """CREATE TABLE IF NOT EXISTS ingest_log_positions (
    log_id VARCHAR,
    position BIGINT,
    loaded_at TIMESTAMP
)""",
    ],
    [
        # GenAI events sent as OTLP log records (store/log_events.py). `attached` turns true in the
        # transaction that merges the event into its span's `events`; until then it waits here
        # for its span. Every column is created here: DuckLake 1.5.5 cannot scan ALTERed tables.
        """CREATE TABLE IF NOT EXISTS genai_events (
    trace_id VARCHAR,
    span_id VARCHAR,
    time TIMESTAMP_NS,
    name VARCHAR,
    service_name VARCHAR,
    attributes JSON,
    body JSON,
    attached BOOLEAN,
    ingested_at TIMESTAMP
)""",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)

# The rightmost 60 bits of the trace id: W3C Trace Context makes the right half the random part
# (some tracers put a timestamp in the left half), so keys spread evenly.
TRACE_KEY_SQL = "('0x' || right({col}, 15))::BIGINT"


def trace_key(trace_id: str) -> int:
    """Python twin of TRACE_KEY_SQL."""
    return int(trace_id[-15:], 16)
