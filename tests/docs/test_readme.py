"""The README stays a front page: at most ~150 lines, and every link in it leads to a file of the repository
(the docs site checks its own links: `mkdocs build --strict`)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_is_a_front_page_of_at_most_150_lines() -> None:
    assert len(README.read_text("utf-8").splitlines()) <= 150


def test_every_relative_link_in_the_readme_leads_to_a_file() -> None:
    targets = [t.split("#")[0] for t in LINK.findall(README.read_text("utf-8")) if "://" not in t]
    assert targets, "the README links into docs/"
    missing = [t for t in targets if t and not (ROOT / t).exists()]
    assert missing == []
