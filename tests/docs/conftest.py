"""Fixtures for the docs tests: the headless chromium and playwright-core the e2e tests use."""

from __future__ import annotations

from tests.support.fixtures import chromium, targets

__all__ = ["chromium", "targets"]
