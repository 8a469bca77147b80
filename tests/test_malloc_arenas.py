"""The server caps glibc's malloc arenas, unless the operator set MALLOC_ARENA_MAX."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CHECK = "from spanlake.malloc_arenas import cap_malloc_arenas; print(cap_malloc_arenas())"


def run_check(env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="arenas are glibc's")
def test_arenas_are_capped_unless_the_environment_says_how_many():
    base = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert run_check(base) == "True"
    assert run_check({**base, "MALLOC_ARENA_MAX": "8"}) == "False"
