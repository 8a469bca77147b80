"""Spans to Hive-partitioned Parquet (`DIR/date=YYYY-MM-DD/spans_0.parquet`), one COPY statement.

Column types are chosen for every common reader: Spark rejects Parquet nanosecond timestamps,
so start/end times are written as microsecond TIMESTAMPs with the exact instants beside them as
`*_unix_nano` integers; JSON columns are plain strings. The `date` (UTC day of start_time)
is only in the directory names, as Hive partitioning expects.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb

from spanlake.store.schema import JSON_COLUMNS, SPAN_COLUMN_NAMES

_TIME_COLUMNS = ("start_time", "end_time")


def _select_list() -> str:
    columns = []
    for name in SPAN_COLUMN_NAMES:
        if name in _TIME_COLUMNS:
            columns.append(f"{name}::TIMESTAMP AS {name}")
            columns.append(f"epoch_ns({name}) AS {name}_unix_nano")
        elif name in JSON_COLUMNS:
            columns.append(f"{name}::VARCHAR AS {name}")
        else:
            columns.append(name)
    return ", ".join(columns)


EXPORT_SELECT = _select_list()


@dataclass(frozen=True)
class DayCount:
    date: str
    spans: int


def count_days(cur: duckdb.DuckDBPyConnection, since: dt.datetime, until: dt.datetime) -> list[DayCount]:
    rows = cur.execute(
        "SELECT strftime(start_time, '%Y-%m-%d') AS d, count(*) FROM spans "
        "WHERE start_time >= ? AND start_time < ? GROUP BY d ORDER BY d",
        [since, until],
    ).fetchall()
    return [DayCount(d, int(n)) for d, n in rows]


def export_spans(cur: duckdb.DuckDBPyConnection, since: dt.datetime, until: dt.datetime, out_dir: Path) -> None:
    """Write the spans that started in [since, until); a day already exported is replaced."""
    # COPY takes its target as literal text, not a parameter; the path is quoted as a literal.
    target = "'" + str(out_dir).replace("'", "''") + "'"
    cur.execute(
        f"""
        COPY (
            SELECT {EXPORT_SELECT}, strftime(start_time, '%Y-%m-%d') AS date
            FROM spans WHERE start_time >= ? AND start_time < ?
            ORDER BY start_time, trace_id, span_id
        ) TO {target} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date), OVERWRITE_OR_IGNORE,
                       FILENAME_PATTERN 'spans_{{i}}')
        """,
        [since, until],
    )
