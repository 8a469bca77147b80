from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from server_process import ServerProcess  # noqa: E402


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory):
    """One server for tests that only add their own traces and read them back."""
    with ServerProcess(tmp_path_factory.mktemp("shared")) as server:
        yield server


@pytest.fixture
def make_server(tmp_path: Path):
    """Factory for servers of one test, with flags; all are stopped at the end."""
    started: list[ServerProcess] = []

    def factory(*args: str, data_dir: Path | None = None, env: dict[str, str] | None = None, start: bool = True) -> ServerProcess:
        server = ServerProcess(data_dir or tmp_path / f"data{len(started)}", *args, env=env)
        started.append(server)
        return server.start() if start else server

    yield factory
    for server in started:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()


# Browser UI tests: Chromium through Playwright, and one seeded server they share.
from ui_browser import browser, open_page  # noqa: E402,F401
from ui_seed import seed  # noqa: E402


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory):
    """A server with the UI seed traces (tests/ui_seed.py); `ui_server.seeded` names them by role."""
    with ServerProcess(tmp_path_factory.mktemp("ui")) as server:
        server.seeded = seed(server.http_url)
        yield server
