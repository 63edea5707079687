"""e2e fixtures: the real third-party targets installed by scripts/install-targets.sh (`make targets`).

Every test under tests/e2e is marked `e2e` (`make test-fast` leaves them out). Fixtures live in
tests/support/fixtures.py so other folders' conftests can import them too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fixtures import (
    chromedriver,
    chromium,
    github_api,
    httpbin_url,
    node20,
    node22,
    petstore_api,
    stdio_server,
    targets,
)

__all__ = [
    "chromedriver",
    "chromium",
    "github_api",
    "httpbin_url",
    "node20",
    "node22",
    "petstore_api",
    "stdio_server",
    "targets",
]

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)
