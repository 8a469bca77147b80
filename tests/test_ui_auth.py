"""UI login, sessions and CSRF, through the real server (and once through a real browser)."""

from __future__ import annotations

import re

import httpx
import pytest

KEY = "ui-test-key-1234567890"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    from server_process import ServerProcess

    with ServerProcess(tmp_path_factory.mktemp("ui-auth"), "--api-key", KEY) as server:
        yield server


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def login(client: httpx.Client, key: str = KEY, next_path: str = "/traces") -> httpx.Response:
    page = client.get("/login", params={"next": next_path})
    return client.post("/login", data={"key": key, "csrf_token": csrf_of(page.text), "next": next_path})


def test_pages_redirect_to_login_and_come_back(keyed_server, open_page):
    browser_page = open_page(keyed_server.http_url)
    page = browser_page.page
    page.goto("/traces?service=x")
    assert page.url.endswith("/login?next=%2Ftraces%3Fservice%3Dx")
    browser_page.screenshot("login-desktop")
    page.get_by_label("API key").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "That key is not valid."
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/traces?service=x")
    assert page.get_by_role("heading", name="Traces").is_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "spanlake_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert KEY not in cookie["value"]
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    page.goto("/traces")
    assert "/login" in page.url


def test_session_cookie_authenticates_api_calls_and_logout_ends_it(keyed_server):
    with httpx.Client(base_url=keyed_server.http_url) as client:
        assert client.get("/api/datasets").status_code == 401
        response = login(client)
        assert response.status_code == 303 and response.headers["location"] == "/traces"
        stolen = client.cookies.get("spanlake_session")
        assert client.get("/api/datasets").status_code == 200
        page = client.get("/traces")
        assert page.status_code == 200
        logout = client.post("/logout", data={"csrf_token": csrf_of(page.text)})
        assert logout.status_code == 303
    # The same cookie, replayed after logout, no longer works.
    with httpx.Client(base_url=keyed_server.http_url, cookies={"spanlake_session": stolen}) as replay:
        assert replay.get("/api/datasets").status_code == 401
        assert replay.get("/traces").status_code == 303


def test_login_refuses_a_forged_form_and_open_redirects(keyed_server):
    with httpx.Client(base_url=keyed_server.http_url) as client:
        client.get("/login")
        forged = client.post("/login", data={"key": KEY, "csrf_token": "not-the-token", "next": "/"})
        assert forged.status_code == 403 and "spanlake_session" not in forged.cookies
        response = login(client, next_path="//evil.example/")
        assert response.headers["location"] == "/"


def test_browser_mutations_need_the_csrf_token(keyed_server):
    with httpx.Client(base_url=keyed_server.http_url) as client:
        login(client)
        token = client.cookies.get("spanlake_csrf")
        without = client.post("/api/datasets", json={"name": "csrf-a"})
        assert without.status_code == 403
        assert without.json()["error"]["code"] == "csrf_failed"
        assert client.get("/api/datasets/csrf-a").status_code == 404
        with_token = client.post("/api/datasets", json={"name": "csrf-a"}, headers={"X-CSRF-Token": token})
        assert with_token.status_code == 201


def test_cross_site_request_without_token_is_refused_on_an_open_server(shared_server):
    # No keys: a page on another site must still not be able to make the browser write.
    response = httpx.post(
        f"{shared_server.http_url}/api/datasets", json={"name": "csrf-cross-site"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert response.status_code == 403
    # Scripts and CI (no browser headers, no cookies) are not browsers and need no token.
    assert httpx.post(f"{shared_server.http_url}/api/datasets", json={"name": "csrf-script"}).status_code == 201


def test_every_response_carries_the_content_security_policy(shared_server):
    for path in ("/", "/traces", "/api/traces", "/static/app.css"):
        headers = httpx.get(f"{shared_server.http_url}{path}").headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"


def test_static_files_and_login_need_no_key(keyed_server):
    assert httpx.get(f"{keyed_server.http_url}/static/vendor/htmx-2.0.7/htmx.min.js").status_code == 200
    assert httpx.get(f"{keyed_server.http_url}/login").status_code == 200
    assert httpx.get(f"{keyed_server.http_url}/api/traces").status_code == 401
