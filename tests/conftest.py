from __future__ import annotations

import compileall
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from server_process import ServerProcess  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """Compile spanlake's modules once. Tests start a few hundred server processes from this
    source tree; where PYTHONDONTWRITEBYTECODE is set (it is on this project's CI machines),
    each one compiled every module again, ~1.4 s of CPU per start (cProfile of a start). An
    installed spanlake has its bytecode written by pip, so this is what users run too."""
    compileall.compile_dir(str(Path(__file__).parent.parent / "spanlake"), quiet=1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed test's report ends with the log tail of every server it used: in CI that log
    is the only account of what the server was doing (a slow request, a loader error)."""
    report = yield
    if report.failed and call.when == "call":
        for name, value in getattr(item, "funcargs", {}).items():
            started = getattr(value, "started", None)  # make_server's factory lists its servers
            candidates = started if isinstance(started, list) else [value]
            servers = [s for s in candidates if isinstance(s, ServerProcess)]
            for number, server in enumerate(servers):
                try:
                    tail = "\n".join(server.output().splitlines()[-80:])
                except OSError:
                    continue
                report.sections.append((f"server log: {name}[{number}] (last 80 lines)", tail))
    return report


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

    factory.started = started  # read by pytest_runtest_makereport below
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
        server.wait_loaded()  # the trace list pages wait only briefly for the loader
        yield server
