"""`--json` errors: a command run with `--json` that fails prints `{"error": {"code", "message"}}` on stdout.

One piece for every command: the `agent-mesh` and `mcpwrap` groups mix in `JsonErrors`, so a command gets
JSON errors by having a `--json` flag, with no code of its own. The error goes to stdout, where the script
reads the command's JSON anyway (`out=$(agent-mesh approvals approve X --json)`, `… --json | jq`), and the
exit status stays what it is without `--json` (1, or 2 for a wrong config or command line).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

JSON_FLAG = "--json"
_JSON_KEY = "agent_mesh.json_errors"
# What a command turned into a ClickException (kept as its __context__), by class name along the MRO, so this
# module imports none of the store or config code: most specific first.
_CAUSES = (
    ("ConfigError", "config_error"),
    ("StoreConflict", "conflict"),
    ("StoreUnavailable", "store_unavailable"),
    ("NoState", "no_state"),
    ("ValueError", "invalid"),
)


def wants_json(args: Sequence[str]) -> bool:
    """True when `--json` is among the options (an argument after `--` belongs to a wrapped command)."""
    for arg in args:
        if arg == "--":
            return False
        if arg == JSON_FLAG:
            return True
    return False


def error_code(exc: BaseException) -> str:
    """A stable, machine-readable name for what went wrong: a `code` attribute on the exception, else its kind.

    `config_error` (exit 2: the config is wrong), `usage_error` (exit 2: the command line is wrong),
    `conflict` (no such approval or grant, a malformed id, or already decided), `store_unavailable`,
    `no_state` (nothing has run under this mesh yet), `invalid` (a value the command refused), `aborted`
    (Ctrl-C or EOF at a prompt), `error` (anything else a command refuses, exit 1)."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    if isinstance(exc, click.UsageError):
        return "usage_error"
    for cause in (exc, exc.__context__):
        names = {k.__name__ for k in type(cause).__mro__} if cause is not None else set()
        for name, found in _CAUSES:
            if name in names:
                return found
    if isinstance(exc, click.Abort):
        return "aborted"
    if isinstance(exc, click.ClickException) and exc.exit_code == 2:
        return "config_error"
    return "error"


def error_document(exc: BaseException) -> dict[str, Any]:
    message = exc.format_message() if isinstance(exc, click.ClickException) else (str(exc) or "aborted")
    return {"error": {"code": error_code(exc), "message": message}}


def _json_exit(exc: BaseException) -> click.exceptions.Exit:
    """Print the error document on stdout; the Exit to raise carries the status the error has without --json."""
    status = exc.exit_code if isinstance(exc, click.ClickException) else 1
    click.echo(json.dumps(error_document(exc), ensure_ascii=False))
    return click.exceptions.Exit(status)


class JsonErrors(click.Group):
    """A group whose commands report errors as JSON when run with `--json` (otherwise click's own output).

    Only the error path changes: click's `main` runs as ever (standalone or not, exit statuses, `ctx.exit`),
    and a command's own output is untouched."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        as_json = wants_json(args)
        try:
            ctx = super().make_context(info_name, args, parent, **extra)
        except click.ClickException as exc:  # the group's own options were wrong
            if not as_json:
                raise
            raise _json_exit(exc) from None
        ctx.meta[_JSON_KEY] = as_json  # meta is shared with every context below this one
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.Abort, EOFError, KeyboardInterrupt) as exc:
            if not ctx.meta.get(_JSON_KEY):
                raise
            error = exc if isinstance(exc, click.ClickException | click.Abort) else click.Abort(str(exc))
            raise _json_exit(error) from None
