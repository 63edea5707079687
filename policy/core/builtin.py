"""Where the built-in default configuration lives (`default.yaml`, next to this module), without importing
pydantic or YAML: mcpwrap fingerprints it before it loads the rest of the core (`mcpwrap.checked`)."""

from __future__ import annotations

import os


def default_config_path() -> str:
    """The file holding the built-in default configuration (YAML)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "default.yaml")
