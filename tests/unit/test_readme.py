"""The README documents every configuration option and starts with the two set-up commands."""

from __future__ import annotations

from pathlib import Path

from hearing_server.config import ENV_PREFIX, Config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_option_is_documented_with_its_variable() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [name for name in Config.model_fields if f"`{ENV_PREFIX}{name.upper()}`" not in text]
    assert missing == []


def test_readme_starts_with_run_and_test_commands() -> None:
    commands = [line.split("#")[0].strip() for line in README.read_text(encoding="utf-8").splitlines()]
    first_block = [c for c in commands if c.startswith("make ")][:2]
    assert first_block == ["make run", "make test"]
