"""Datasets: named, time-versioned items captured from spans, imported or added by hand.

- validate.py   what clients send, checked with messages that name the field
- service.py    changes, one write transaction each (`await store.write(service.fn, ...)`)
- queries.py    reads for the API (`await store.read(queries.fn, ...)`)
- capture.py    capture requests: which spans, which fields (`parse_span_field` for rules too)
- importer.py   JSON / JSONL / CSV / Parquet files, validated whole before anything is written
- export.py     streamed jsonl / csv / openai / parquet; openai_format.py builds and checks
                fine-tuning examples; text_cells.py writes values into text cells that read back
                with their types
- runs.py       dataset runs: create, post results, complete, cancel (run_validate.py checks requests,
                run_queries.py reads them); component.py + run_runner.py execute and score them in
                the background (run_target.py calls the HTTP target, run_scoring.py scores a result)
SQL lives in spanlake/store/datasets.py, dataset_items.py, dataset_capture.py, dataset_export.py,
runs.py and run_reads.py.
"""
