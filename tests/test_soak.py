"""A short soak (the long one is `python bench/soak.py`): twice the sustainable rate for ~15 s."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_overload_is_refused_with_retry_hints_and_accepted_work_keeps_flowing(tmp_path):
    # 5 s intervals: with 3 s ones a full-suite run on this 2-core machine once saw an interval
    # with nothing acked or refused (1,452 calls in flight), most likely DuckDB's automatic
    # checkpoint, which runs inside a commit; it did not recur in isolated runs.
    out = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "0.34", "--calibrate-seconds", "4",
         "--interval", "5", "--floor", "0.2", "--rss-limit-mb", "3000", "--json", str(out)],
        capture_output=True, text=True, timeout=240,
    )
    figures = json.loads(out.read_text())
    assert result.returncode == 0, (figures["failures"], result.stderr[-2000:])
    assert figures["refused_without_retry_info"] == 0
    assert figures["second_half_min_acked"] > 0
    assert figures["peak_rss_mb"] < 3000
