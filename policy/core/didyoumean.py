""" "Did you mean …?": the closest known name to a misspelt one (config keys, agents, tools).

`key_hint(model, loc)` walks the pydantic model along an unknown key's path (through lists, dicts and
optional fields) to the model that refused the key, and offers its closest field name (as written in YAML:
the alias when a field has one).
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

CUTOFF = 0.6  # difflib's default: `wehn` -> `when`, `polices` -> `policies`, not `x` -> `tools`


def closest(word: str, choices: Iterable[str], n: int = 1) -> list[str]:
    """The known names most like `word` (at most n, best first; none when nothing is close)."""
    import difflib  # only when a name is wrong: loading a good config (mcpwrap's start-up) never pays it

    return difflib.get_close_matches(word, sorted(set(choices)), n=n, cutoff=CUTOFF)


def hint(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)`, or "" when no known name is close."""
    found = closest(word, choices)
    return f" (did you mean {found[0]!r}?)" if found else ""


def key_names(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts as YAML spells them (`not`, not `not_`)."""
    return [f.alias or name for name, f in model.model_fields.items()]


def model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model that holds the key at the end of `loc`, or None when the path leaves the models."""
    node: Any = model
    for part in loc[:-1]:
        node = _step(node, part)
        if node is None:
            return None
    return _unwrap_model(node)


def key_hint(model: type[BaseModel], loc: Sequence[str | int]) -> str:
    """` (did you mean 'when'?)` for an unknown key at `loc` under `model`, or ""."""
    if not loc or not isinstance(loc[-1], str):
        return ""
    holder = model_at(model, loc)
    return hint(loc[-1], key_names(holder)) if holder is not None else ""


def _unwrap_model(node: Any) -> type[BaseModel] | None:
    for option in _options(node):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def _options(node: Any) -> list[Any]:
    """An annotation without Annotated and Optional: the types a value there may have."""
    if get_origin(node) is Annotated:
        return _options(get_args(node)[0])
    if get_origin(node) in (Union, types.UnionType):
        return [o for arg in get_args(node) if arg is not type(None) for o in _options(arg)]
    return [node]


def _step(node: Any, part: str | int) -> Any:
    for option in _options(node):
        origin = get_origin(option)
        if isinstance(option, type) and issubclass(option, BaseModel) and isinstance(part, str):
            for name, f in option.model_fields.items():
                if part in (name, f.alias):
                    return f.annotation
        elif origin is list and isinstance(part, int):
            return get_args(option)[0]
        elif origin is dict and isinstance(part, str):
            return get_args(option)[1]
    return None
