"""Datasets: named, time-versioned items captured from spans, imported or added by hand.

- validate.py   what clients send, checked with messages that name the field
- service.py    changes, one write transaction each (`await store.write(service.fn, ...)`)
- queries.py    reads for the API (`await store.read(queries.fn, ...)`)
- capture.py    capture requests: which spans, which fields (`parse_span_field` for rules too)
- importer.py   JSON / JSONL / CSV files, validated whole before anything is written
- export.py     streamed jsonl / csv / openai / parquet; openai_format.py builds chat examples
SQL lives in spanlake/store/datasets.py, dataset_items.py, dataset_capture.py, dataset_export.py.
"""
