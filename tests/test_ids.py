"""Item and dataset ids: UUIDv7 strings that sort in creation order (listings break ties by id)."""

from __future__ import annotations

import uuid

from spanlake.store.ids import uuid7, uuid7_batch


def test_ids_are_version_7_and_strictly_increasing_across_batches_and_singles():
    ids = [uuid7()] + uuid7_batch(300) + [uuid7(), uuid7()] + uuid7_batch(5000) + [uuid7()]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # 5000 > the 4096-per-ms counter
    for text in ids[:3] + ids[-3:]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, text)


def test_an_empty_batch_is_empty():
    assert uuid7_batch(0) == []
