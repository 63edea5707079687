"""The docs' pictures come from a script, not from hand: scripts/screenshots.py still takes every shot."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.fixtures import need
from tests.support.targets import Targets

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshots.py"


def screenshots() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshots", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_the_screenshot_script_photographs_a_held_call_on_the_page(
    tmp_path: Path, chromium: Path, targets: Targets
) -> None:
    need(lambda: targets.npm_package("playwright-core"))
    shots = screenshots()
    written = [path for shoot in shots.SHOTS.values() for path in shoot(tmp_path)]
    assert {p.name for p in written} >= {"approval-card.png", "page.png"}
    card_width, card_height = png_size(tmp_path / "approval-card.png")
    page_width, page_height = png_size(tmp_path / "page.png")
    assert 0 < card_width <= page_width
    assert 0 < card_height < page_height
