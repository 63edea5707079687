"""What `agent-mesh check` finds: every error and warning of the active config (policy/core/lint.py).

Errors (exit 2): everything loading refused, then every rule that does not compile, all in one run. Warnings
(exit 0, or 1 with `--strict`) need a config that loads. The tool catalogue is the config's `servers:`, their
local OpenAPI specs (a spec at a URL is not fetched) and the tools the mesh's adapters pinned in state.db.
"""

from __future__ import annotations

import json
import os
import sys
from typing import NoReturn

import click

from policy.cli.common import ConfigProblem, load_loaded
from policy.cli.discovered import add_discovered
from policy.cli.errors import error_document
from policy.core.catalogue import ToolCatalogue, catalogue_for
from policy.core.config import LoadedConfig
from policy.core.errors import ConfigError
from policy.core.lint import Problem, compile_problems, problems_of, warnings

STRICT_EXIT = 1  # warnings under --strict; a wrong config stays 2


def lint_active(config_path: str | None, as_json: bool) -> tuple[LoadedConfig, list[Problem], list[str]]:
    """The loaded config, its warnings and notes; on any error, every error is reported and the command exits 2."""
    try:
        loaded = load_loaded(config_path)
    except ConfigProblem as exc:
        cause = exc.__context__
        if not isinstance(cause, ConfigError):
            raise
        fail(problems_of(cause), as_json)
    errors = compile_problems(loaded)
    base = os.path.dirname(os.path.abspath(loaded.file)) if not loaded.file.startswith("<") else "."
    catalogue = catalogue_for(loaded.config, base)
    notes = [n for n in [add_discovered(catalogue, loaded.config.state_dir)] if n]
    found = warnings(loaded, catalogue)
    if errors:
        fail(errors + found, as_json)
    return loaded, found, notes


def fail(problems: list[Problem], as_json: bool) -> NoReturn:
    """Report every problem and exit 2: JSON on stdout (the uniform `error` plus `problems`), or text on stderr."""
    errors = [p for p in problems if p.severity == "error"]
    message = "\n".join(str(p) for p in errors)
    if as_json:  # the uniform `--json` error (policy/cli/errors.py), and every problem beside it
        doc = {**error_document(ConfigProblem(message)), "problems": [p.as_json() for p in problems]}
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        sys.exit(2)
    rest = [str(p) for p in problems if p.severity != "error"]
    raise ConfigProblem("\n".join([message, *rest, tally(problems)]))


def tally(problems: list[Problem]) -> str:
    errors = sum(p.severity == "error" for p in problems)
    warns = len(problems) - errors
    parts = [f"{errors} error{'s' * (errors != 1)}"] if errors else []
    parts += [f"{warns} warning{'s' * (warns != 1)}"] if warns else []
    return ", ".join(parts) or "no problems"


def report_warnings(found: list[Problem], notes: list[str], strict: bool) -> None:
    """The warnings after the summary (text), and the exit status `--strict` gives them."""
    for note in notes:
        click.echo(note, err=True)
    if found:
        click.echo("")
        for p in found:
            click.echo(str(p))
        tail = "" if strict else " (exit 0: --strict makes warnings fail)"
        click.echo(tally(found) + tail)
    if strict and found:
        sys.exit(STRICT_EXIT)


def startup_warnings(loaded: LoadedConfig) -> list[Problem]:
    """The warnings `serve` and `proxy` print as they start: no spec is read again and state.db is not
    opened here, so W002 names only servers no `servers:` entry lists (`agent-mesh check` says more)."""
    catalogue = ToolCatalogue()
    for name in loaded.config.servers:
        catalogue.add_server(name)
    return warnings(loaded, catalogue)


def echo_startup_warnings(loaded: LoadedConfig, command: str) -> None:
    """One stderr line per start-up warning, then where to see them all."""
    found = startup_warnings(loaded)
    for p in found:
        click.echo(f"{command}: {p}", err=True)
    if found:
        click.echo(f"{command}: {tally(found)}; `agent-mesh check` lists them with the tools it knows", err=True)
