"""JSON values in text cells (CSV cells, Parquet text columns), written so they read back the same.

A cell holds a string as itself, so files stay readable and hand-written ones import as text;
every other value (number, boolean, null, object, array) holds its JSON text. The one case that
would be misread is a string that is itself JSON text (`42`, `true`, `{"a": 1}`, `""`): such a
string is written as a JSON string literal (`"42"`). Reading is the mirror: a cell that parses as
JSON is that value, any other cell is the text. `encode` and `decode` share `_reads_as_json`, so
`decode(encode(v)) == v` for every JSON value.

Kept apart from the CSV writer's other concerns (quoting, neutralising formulas) on purpose:
this is about types only.
"""

from __future__ import annotations

from typing import Any

import orjson


def _reads_as_json(text: str) -> bool:
    if text == "":
        return True  # an empty cell means "no value": the empty string must be written quoted
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def encode(json_text: str | None) -> str | None:
    """The cell for a stored JSON value (given as its JSON text); None stays None (empty cell)."""
    if json_text is None:
        return None
    if json_text[:1] == '"':
        value = orjson.loads(json_text)
        if not _reads_as_json(value):
            return value
    return json_text


def decode(cell: str) -> Any:
    """The value a non-empty cell holds: its JSON when it parses, else the text itself."""
    try:
        return orjson.loads(cell)
    except orjson.JSONDecodeError:
        return cell
