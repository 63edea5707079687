"""`make` / `make help` lists every target of the Makefile, each with a line saying what it does."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def targets() -> set[str]:
    text = (ROOT / "Makefile").read_text("utf-8")
    return {m.group(1) for m in re.finditer(r"^([a-z][a-z-]*):", text, re.MULTILINE)}


def listed(*args: str) -> dict[str, str]:
    out = subprocess.run(["make", "-s", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60, check=True)
    return {m.group(1): m.group(2) for m in re.finditer(r"^  make (\S+)\s+(.+)$", out.stdout, re.MULTILINE)}


def test_make_help_lists_every_target_with_what_it_does() -> None:
    shown = listed("help")
    assert set(shown) == targets()
    assert all(line.strip() for line in shown.values())
    assert {"serve", "install", "test", "lint", "bench"} <= set(shown)


def test_plain_make_shows_the_same_list() -> None:
    assert listed() == listed("help")
