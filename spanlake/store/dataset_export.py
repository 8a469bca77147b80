"""SQL for exporting a dataset in chunks: items at one instant, ordered by (created_at, id).

Every chunk reads the same instant (`as_of`, fixed when the export starts), so an export is one
consistent version even while items change, and keyset paging on (created_at, id) never skips
or repeats an item. DuckDB renders the JSON forms itself, which keeps Python out of the per-row work for jsonl.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from spanlake.store.dataset_items import keyset_after, visible
from spanlake.store.datasets import last_change
from spanlake.clock import utc_now

_KEYS = [("epoch_us(i.created_at)", False), ("i.id", False)]
_RFC3339 = "'%Y-%m-%dT%H:%M:%S.%fZ'"


def snapshot(cur: duckdb.DuckDBPyConnection, dataset_id: str, as_of: dt.datetime | None) -> dict[str, Any]:
    """Fix the instant an export reads (the latest change when no `as_of`) and count what it holds."""
    if as_of is None:
        latest = last_change(cur, dataset_id)
        as_of = max(utc_now(), latest) if latest is not None else utc_now()
    cond, params = visible(as_of)
    total, incomplete = cur.execute(
        f"SELECT count(*), count(*) FILTER (WHERE i.expected_output IS NULL OR i.input IS NULL) "
        f"FROM dataset_items i "
        f"WHERE i.dataset_id = ? AND {cond}",
        [dataset_id, *params],
    ).fetchone()
    return {"as_of": as_of, "total": int(total), "incomplete": int(incomplete)}


def _page(
    cur: duckdb.DuckDBPyConnection, select: str, dataset_id: str, as_of: dt.datetime,
    after: Sequence[Any] | None, limit: int, select_params: Sequence[Any] = (),
) -> duckdb.DuckDBPyConnection:
    """One chunk: pick the page's keys first, then compute `select` for those rows only.

    Sorting whole rows (or computing JSON for every row after the key) before the LIMIT makes
    each chunk cost as much as the rest of the dataset; choosing keys first keeps chunks cheap.
    """
    cond, params = visible(as_of)
    where, where_params = ["i.dataset_id = ?", cond], [dataset_id, *params]
    page_where, page_params = list(where), list(where_params)
    if after is not None:
        sql, after_params = keyset_after(_KEYS, after)
        page_where.append(sql)
        page_params.extend(after_params)
    return cur.execute(
        f"""
        WITH page AS (
            SELECT i.id, i.created_at FROM dataset_items i WHERE {' AND '.join(page_where)}
            ORDER BY epoch_us(i.created_at), i.id LIMIT ?
        )
        SELECT {select}, epoch_us(i.created_at) AS _k0, i.id AS _k1
        FROM dataset_items i SEMI JOIN page ON page.id = i.id AND page.created_at = i.created_at
        WHERE {' AND '.join(where)}
        ORDER BY epoch_us(i.created_at), i.id
        """,
        [*page_params, limit, *select_params, *where_params],
    )


def json_lines(
    cur: duckdb.DuckDBPyConnection, dataset_id: str, as_of: dt.datetime, after: Sequence[Any] | None, limit: int
) -> tuple[list[str], list[Any] | None]:
    """One chunk of items as JSON object texts, and the key to continue after."""
    rows = _page(
        cur,
        f"""json_object(
            'id', i.id, 'input', i.input, 'expected_output', i.expected_output,
            'metadata', coalesce(i.metadata, '{{}}'::JSON), 'topic', i.topic, 'tags', coalesce(i.tags, []),
            'source_trace_id', i.source_trace_id, 'source_span_id', i.source_span_id,
            'created_at', strftime(i.created_at, {_RFC3339}), 'updated_at', strftime(i.valid_from, {_RFC3339})
        )::VARCHAR""",
        dataset_id, as_of, after, limit,
    ).fetchall()
    return [r[0] for r in rows], (list(rows[-1][1:]) if rows else None)


def metadata_keys(cur: duckdb.DuckDBPyConnection, dataset_id: str, as_of: dt.datetime) -> list[str]:
    """Every top-level metadata key of the items at `as_of`, sorted (the CSV `metadata.*` columns)."""
    cond, params = visible(as_of)
    rows = cur.execute(
        f"SELECT DISTINCT unnest(json_keys(i.metadata)) AS k FROM dataset_items i "
        f"WHERE i.dataset_id = ? AND {cond} AND json_type(i.metadata) = 'OBJECT' ORDER BY k",
        [dataset_id, *params],
    ).fetchall()
    return [r[0] for r in rows]


def arrow_chunk(
    cur: duckdb.DuckDBPyConnection, dataset_id: str, as_of: dt.datetime, after: Sequence[Any] | None, limit: int,
    *, metadata_columns: Sequence[str] | None = None,
) -> tuple[pa.Table, list[Any] | None]:
    """One chunk as an Arrow table.

    input / expected_output are JSON text (the datasets package turns them into cells).
    With `metadata_columns` (for CSV) every column is text: one `metadata.<key>` column per key
    (JSON text of the value, NULL when the item lacks the key),
    tags comma-separated (a JSON array when a tag holds a comma), times in RFC 3339.
    """
    def value(expr: str) -> str:
        return f"({expr})::VARCHAR"

    columns = ["i.id AS id", f"{value('i.input')} AS input", f"{value('i.expected_output')} AS expected_output"]
    params: list[Any] = []
    cells = metadata_columns is not None
    if not cells:
        columns.append("coalesce(i.metadata, '{}'::JSON)::VARCHAR AS metadata")
    else:
        for n, key in enumerate(metadata_columns or ()):
            ptr = "/" + key.replace("~", "~0").replace("/", "~1")
            extract = value("json_extract(i.metadata, ?)")
            columns.append(f"{extract} AS m{n}")
            params.extend([ptr] * extract.count("?"))
    tags = "coalesce(i.tags, [])::VARCHAR[]"
    if cells:
        tags = (
            f"(CASE WHEN len(list_filter({tags}, lambda t: contains(t, ',') OR t <> trim(t))) > 0 "
            f"OR starts_with(coalesce(({tags})[1], ''), '[') THEN to_json({tags})::VARCHAR "
            f"ELSE array_to_string({tags}, ',') END)"
        )
    created, updated = "i.created_at", "i.valid_from"
    if cells:
        created, updated = f"strftime(i.created_at, {_RFC3339})", f"strftime(i.valid_from, {_RFC3339})"
    columns += [
        "i.topic AS topic", f"{tags} AS tags",
        "i.source_trace_id AS source_trace_id", "i.source_span_id AS source_span_id",
        f"{created} AS created_at", f"{updated} AS updated_at",
    ]
    table = _page(cur, ", ".join(columns), dataset_id, as_of, after, limit, params).to_arrow_table()
    if table.num_rows == 0:
        return table.drop_columns(["_k0", "_k1"]), None
    last = [table.column("_k0")[-1].as_py(), table.column("_k1")[-1].as_py()]
    table = table.drop_columns(["_k0", "_k1"])
    if cells:
        names = [f"metadata.{metadata_columns[int(c[1:])]}" if c[:1] == "m" and c[1:].isdigit() else c  # type: ignore[index]
                 for c in table.column_names]
        table = table.rename_columns(names)
    return table, last
