"""`spanlake demo` fills a running server with traces a new user can explore."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx


def test_demo_sends_traces_that_the_api_shows(shared_server):
    result = subprocess.run(
        [sys.executable, "-m", "spanlake", "demo", "--traces", "20", "--seed", "7", "--url", shared_server.http_url],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "sent 20 demo traces (100 spans)" in result.stdout
    flt = {"field": "resource.deployment.environment", "op": "eq", "value": "demo"}
    traces = httpx.get(f"{shared_server.http_url}/api/traces", params={"filter": json.dumps(flt), "limit": 100}).json()["items"]
    assert len(traces) == 20
    assert all(t["span_count"] == 5 and t["name"] == "agent.run support-agent" for t in traces)
    trace = httpx.get(f"{shared_server.http_url}/api/traces/{traces[0]['trace_id']}").json()
    chat = next(s for s in trace["spans"] if s["name"].startswith("chat"))
    assert chat["model"] in ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet")
    assert chat["input"] and chat["input_tokens"] > 0


def test_demo_against_no_server_is_a_one_line_error():
    result = subprocess.run(
        [sys.executable, "-m", "spanlake", "demo", "--url", "http://127.0.0.1:9"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot reach spanlake" in result.stderr
