"""docs/client.md runs as written: its Python blocks, in order, as one script against a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from server_process import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "client.md"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every ```python block."""
    return [(text[: m.start()].count("\n") + 2, m.group(1)) for m in re.finditer(r"```python\n(.*?)```", text, re.S)]


def test_the_client_docs_run_against_a_server(tmp_path):
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 8
    script = "\n".join(f"# docs/client.md line {line}\n{code}" for line, code in blocks)
    (tmp_path / "client_docs.py").write_text(script)
    with ServerProcess(tmp_path / "data") as server:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SPANLAKE_URL": server.http_url}
        env.pop("SPANLAKE_API_KEY", None)
        done = subprocess.run([sys.executable, "client_docs.py"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=240)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    out = done.stdout
    assert "['exact_match mean 0 < 0.9']" in out  # the CI gate example
    assert "409 conflict a dataset named 'golden' already exists" in out
    assert "completed {'exact_match': 1.0, 'token_usage': 15.0, 'first_word_matches': 1.0}" in out
    assert (tmp_path / "imported.parquet").exists()
