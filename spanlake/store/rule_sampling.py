"""Rules' deterministic sampling in SQL: the first 32 bits of md5(rule name + key) against a threshold.

capture/rules.py has the Python twin (`sampled_in`), which computes the same answer per key.
"""

from __future__ import annotations


def sample_threshold(fraction: float) -> int:
    """Sampling compares the first 32 bits of md5(rule name + id) with fraction * 2**32."""
    return int(round(fraction * 2**32))


def sample_sql(rule_name: str, fraction: float, key_sql: str) -> tuple[str, list]:
    """The sampling test of a rule over the SQL expression `key_sql`, with its bound parameters."""
    if fraction >= 1.0:
        return "TRUE", []
    return sample_expr("?", "?", key_sql), [rule_name, sample_threshold(fraction)]


def sample_expr(name_sql: str, threshold_sql: str, key_sql: str) -> str:
    """The sampling test over SQL expressions for the rule name, its threshold and the key."""
    return f"('0x' || left(md5({name_sql} || {key_sql}), 8))::BIGINT < {threshold_sql}"
