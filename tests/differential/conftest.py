"""Differential tests: real upstream frameworks behind the real proxy (started once per session).

Needs the npm targets (`make targets`) for Express; a missing target fails the tests, never skips them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.differential.harness import Mesh, running_mesh
from tests.support.fixtures import need, node20, targets
from tests.support.targets import Targets

__all__ = ["mesh", "node20", "targets"]


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory, node20: Path, targets: Targets) -> Iterator[Mesh]:
    node_modules = need(lambda: targets.npm_root)
    with running_mesh(tmp_path_factory.mktemp("differential"), node20, node_modules) as running:
        yield running
