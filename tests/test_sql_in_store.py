"""SQL lives only under spanlake/store/: elsewhere no statement is run, fetched or written.

The other packages reach the database through store functions (`store.read(fn, ...)`, or a
store function given the caller's cursor), so one dialect stays in one layer. This reads every
module outside spanlake/store/ with `ast` and fails on a DuckDB call (`.execute(`, `.sql(`,
`fetchall`, ...), a `duckdb.connect(`, or a string holding a SQL statement or SQL-only
function; docstrings may still talk about SQL.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "spanlake"

# DuckDB connection and relation methods that run or fetch SQL.
DB_METHODS = frozenset({
    "execute", "executemany", "sql", "query", "fetchall", "fetchone", "fetchmany", "fetchdf",
    "fetchnumpy", "fetch_arrow_table", "fetch_record_batch", "to_arrow_table", "arrow", "df", "pl",
    "register", "unregister", "begin", "commit", "rollback",
})
# Calls by those names that are not DuckDB's: (module, the called expression).
NOT_DUCKDB = frozenset({
    ("spanlake/cli/main.py", "module.register"),  # a command module adds its subparser
    ("spanlake/leased_jobs.py", "self.execute"),  # a leased job runs
    ("spanlake/client/experiment.py", "experiment.execute"),  # the client runs a task on an item
})
SQL_TEXT = re.compile(
    r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+INTO\b|\bDELETE\s+FROM\b|\bUPDATE\s+\w+\s+SET\b"
    r"|\bCREATE\s+(OR\s+REPLACE\s+)?(TEMP\s+|TEMPORARY\s+)?(TABLE|VIEW|MACRO|SCHEMA)\b"
    r"|\bDROP\s+(TABLE|VIEW|MACRO|SCHEMA)\b|\bATTACH\s+'|\bCHECKPOINT\b|^\s*USE\s"
    r"|\bmake_timestamp_ns\(|\bepoch_ns\(|\bjson_extract(_string)?\(|\?::\w+\[\]"
)


def _modules_outside_store(package: Path) -> list[Path]:
    store = package / "store"
    return sorted(p for p in package.rglob("*.py") if store not in p.parents)


def _docstrings(tree: ast.AST) -> set[int]:
    owners = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, owners) and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def sql_outside_store(package: Path) -> list[str]:
    found = []
    for path in _modules_outside_store(package):
        module = path.relative_to(package.parent).as_posix()
        tree = ast.parse(path.read_text())
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                called = ast.unparse(node.func)
                if called == "duckdb.connect":
                    found.append(f"{module}:{node.lineno}: duckdb.connect(")
                elif node.func.attr in DB_METHODS and (module, called) not in NOT_DUCKDB:
                    found.append(f"{module}:{node.lineno}: .{node.func.attr}(")
            elif (
                isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstrings and SQL_TEXT.search(node.value)
            ):
                found.append(f"{module}:{node.lineno}: SQL text {node.value.strip()[:60]!r}")
    return sorted(found)


def test_no_sql_outside_the_store():
    found = sql_outside_store(PACKAGE)
    assert not found, (
        "SQL outside spanlake/store/: move the statement into a store module (a function taking "
        "the cursor) and call that instead:\n" + "\n".join(found)
    )


def test_the_scan_finds_sql_planted_outside_the_store(tmp_path):
    package = tmp_path / "spanlake"
    for module, text in {
        "store/reads.py": 'def f(cur):\n    return cur.execute("SELECT 1 FROM spans").fetchall()\n',
        "query/reads.py": (
            'def f(cur, t):\n'
            '    """Reads SELECT x FROM spans through the store."""\n'
            '    cur.execute(f"DELETE FROM {t}")\n'
            '    return cur.sql("SELECT 1").fetchone()\n'
        ),
        "query/where.py": 'BOUND = "s.start_time BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?)"\n',
        "scratch.py": "import duckdb\n\nCON = duckdb.connect()\n",
        "leased_jobs.py": "async def run(self, job):\n    return await self.execute(job)\n",
    }.items():
        (package / module).parent.mkdir(parents=True, exist_ok=True)
        (package / module).write_text(text)
    assert sql_outside_store(package) == [
        "spanlake/query/reads.py:3: .execute(",
        "spanlake/query/reads.py:3: SQL text 'DELETE FROM'",
        "spanlake/query/reads.py:4: .fetchone(",
        "spanlake/query/reads.py:4: .sql(",
        "spanlake/query/where.py:1: SQL text 's.start_time BETWEEN make_timestamp_ns(?) AND make_timestamp'",
        "spanlake/scratch.py:3: duckdb.connect(",
    ]
