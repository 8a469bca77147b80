"""Error bodies must render whatever client text they quote."""

from __future__ import annotations

import httpx


def test_a_field_name_with_a_lone_surrogate_gets_a_400_that_quotes_it(shared_server):
    # Valid JSON text whose key decodes to a lone UTF-16 surrogate; the message quotes the key.
    body = b'{"\\ud800oops": 1, "name": "n", "trace_id": "0af7651916cd43dd8448eb211c80319c"}'
    resp = httpx.post(
        f"{shared_server.http_url}/api/scores", content=body, headers={"content-type": "application/json"}, timeout=30
    )
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "bad_request"
    assert "\ud800oops: unknown field" in error["message"]
