"""Docs match the code: every setting is in the README table and the example config."""

from __future__ import annotations

import re
from pathlib import Path

from spanlake.settings import SETTINGS, Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.cli_flag}`" in readme, f"README has no row for {setting.cli_flag}"
        assert setting.env in readme, f"README does not name {setting.env}"


def test_every_setting_has_a_field_with_the_same_default():
    for setting in SETTINGS:
        assert hasattr(Settings, setting.name) or setting.name in Settings.__dataclass_fields__
        assert Settings.__dataclass_fields__[setting.name].default == setting.default, setting.name


def test_readme_starts_with_the_run_and_test_commands():
    readme = (ROOT / "README.md").read_text()
    blocks = readme.split("```sh")[1:3]
    assert "spanlake serve" in blocks[0]
    test_command = blocks[1].strip().splitlines()[0]
    assert re.match(r"^python3 -m venv .venv && .*pytest", test_command)
    # .ci/run runs the first README line of that shape, so this is the command CI runs.
    assert 'grep -m1 -E "^python3 -m venv .venv && .*pytest" README.md' in (ROOT / ".ci" / "run").read_text()


def test_example_config_only_uses_known_settings():
    import yaml

    known = {s.name for s in SETTINGS} | {"scorers", "retention"}
    for name in ("spanlake.yaml",):
        config = yaml.safe_load((ROOT / "config" / name).read_text())
        assert set(config) <= known, set(config) - known
