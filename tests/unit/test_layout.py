"""The layout keeps its promises: the offline verifier loads no WebRTC or web stack, no module grows huge,
and the import contracts (import-linter, in ``make check``) hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ["hearing_server", "signaling", "media", "recording", "archive", "web_client"]
MAX_MODULE_LINES = 620  # ~500 lines of code plus docstrings; split a module before it grows past this


@pytest.mark.parametrize("module", ["recording.verify", "archive.package", "media.contract"])
def test_offline_modules_load_neither_aiortc_nor_aiohttp(module: str) -> None:
    probe = (
        f"import sys, {module}; "
        "print(','.join(m for m in ('aiortc', 'aioice', 'aiohttp') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "", f"importing {module} loads {loaded}"


def test_no_product_module_is_huge() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for package in PRODUCT_PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    assert sizes, "no modules found"
    too_big = {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert not too_big, f"split these modules: {too_big}"


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.fail("import-linter is not installed (pip install -e '.[dev]')")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
