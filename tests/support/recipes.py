"""Load a recipe script from recipes/ as a module, so a test can call its `main() -> int`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def load_recipe(name: str) -> ModuleType:
    """`load_recipe("day1_to_day7")` imports recipes/day1_to_day7.py (registered in sys.modules, which its
    dataclasses need to find their module)."""
    spec = importlib.util.spec_from_file_location(name, RECIPES / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"no recipe {name!r} in {RECIPES}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
