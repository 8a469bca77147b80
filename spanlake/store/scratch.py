"""Private in-memory DuckDB connections, for SQL that reads nothing of the store.

Two users: the filter parser asks DuckDB's own RE2 whether a regex compiles (`re2_error`), and
capture evaluates score-free rules on an Arrow batch beside the writer (capture/evaluate.py).
"""

from __future__ import annotations

import threading

import duckdb

from spanlake.store import chat_functions

# DuckDB uses RE2, which rejects backreferences and lookaround that Python's `re` accepts;
# asking DuckDB itself is the only faithful check. One shared in-memory connection (a fresh
# one costs ~8 ms); DuckDB connections are not safe to share across threads, hence the lock.
_regex_lock = threading.Lock()
_regex_con: duckdb.DuckDBPyConnection | None = None


def re2_error(pattern: str) -> str | None:
    """Why DuckDB's RE2 refuses `pattern`, or None when it compiles."""
    global _regex_con
    with _regex_lock:
        if _regex_con is None:
            _regex_con = duckdb.connect(":memory:")
        try:
            _regex_con.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
        except duckdb.Error as e:
            return str(e).removeprefix("Invalid Input Error: ")
    return None


def rule_connection() -> duckdb.DuckDBPyConnection:
    """A connection for evaluating rules on Arrow batches, with the store's SQL functions (rules'
    item values read the spans' chat). One DuckDB thread: the work is a few thousand rows, and
    the writer needs the other core."""
    conn = duckdb.connect(":memory:", config={"threads": "1"})
    chat_functions.register(conn)
    return conn
