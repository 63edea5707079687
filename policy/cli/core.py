"""Core commands: `check`, `explain`, `test` and `config show` — the policy without any adapter.

`explain` and `test` answer through Gate.preview (policy/gate/preview.py): what the live gate would do, the
state-dir guard and the mesh's state (grants, approvals, decision memory, limits) included, changing nothing.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from policy.cli.checking import STRICT_EXIT, lint_active, report_warnings
from policy.cli.common import ConfigProblem, config_option, load_loaded, load_policy_set, parse_call_options, where_used
from policy.cli.look import paint
from policy.core.casefile import CaseResult, load_cases, run_cases
from policy.core.config import default_config_text
from policy.core.engine import CATCH_ALL, EXACT, PolicySet, compile_policies
from policy.core.errors import ConfigError

if TYPE_CHECKING:
    from policy.gate.preview import Preview

_KIND = {EXACT: "exact", 1: "glob", CATCH_ALL: "catch-all"}


def _summary(ps: PolicySet, file: str) -> str:
    cfg = ps.config
    lines = [f"{file}: OK (policy hash {ps.policy_hash})", f"state_dir: {cfg.state_dir}"]
    agents = ", ".join(sorted(cfg.agents)) or "(none: identity from proxy user name or --agent)"
    lines.append(f"agents:   {agents}")
    servers = [f"{n} ({_server_kind(s.model_dump())})" for n, s in sorted(cfg.servers.items())]
    lines.append(f"servers:  {', '.join(servers) or '(none)'}")
    lines.append("policies, in evaluation order:")
    for i, p in enumerate(ps.policies, 1):
        limits = ""
        if p.rate_limit:
            limits = f", rate limit {p.rate_limit.max_per_minute or '-'}/min {p.rate_limit.max_total or '-'} total"
        counts: dict[str, int] = {}
        for r in p.rules:
            counts[r.action.value] = counts.get(r.action.value, 0) + 1
        per = ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "no rules"
        lines.append(
            f"  {i}. {p.name:<24} agent {p.agent!r} ({_KIND[p.specificity]}): {len(p.rules)} rules ({per}){limits}"
        )
    lines.append("anything no rule matches: deny (rule 'default')")
    return "\n".join(lines)


def _server_kind(s: dict[str, Any]) -> str:
    if s.get("openapi"):
        return f"openapi {s['openapi']}"
    if s.get("mcp_url"):
        return f"mcp {s['mcp_url']}"
    return s.get("base_url") or "named"


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary, warnings and errors as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 when there are warnings (a wrong config exits 2 anyway).")
def check(config_path: str | None, as_json: bool, strict: bool) -> None:
    """Validate a config file and its policy_dir, print a one-screen summary, and lint it.

    Every error is reported at once, each as `file:line: key: message [code name]`, with the closest known
    key for a misspelt one; the exit status is 2. Warnings (exit 0, or 1 with --strict): W001 a policy for an
    agent not in agents:, W002 a tool name or glob that names no known server or tool (servers:, their local
    OpenAPI specs, tools pinned in state.db), W003 a rule an earlier unconditional rule always answers first,
    W004 an agent without a token next to agents with one, W005 an unreadable local OpenAPI spec.
    With --json, `problems` lists them (code, name, severity, file, line, path, message).

    \b
    Example:
      agent-mesh check --config agent-mesh.yaml
      agent-mesh check --strict   # in CI: warnings fail too
      agent-mesh check            # ./agent-mesh.yaml, $AGENT_MESH_CONFIG, or the built-in default
    """
    loaded, found, notes = lint_active(config_path, as_json)
    ps, file = compile_policies(loaded), loaded.file
    if as_json:
        out = {
            "file": file,
            "policy_hash": ps.policy_hash,
            "policies": [
                {"name": p.name, "agent": p.agent, "kind": _KIND[p.specificity], "rules": len(p.rules)}
                for p in ps.policies
            ],
            "problems": [p.as_json() for p in found],
        }
        click.echo(json.dumps(out, indent=2))
        if strict and found:
            sys.exit(STRICT_EXIT)
    else:
        click.echo(_summary(ps, file))
        report_warnings(found, notes, strict)


@click.command()
@config_option
@click.option("--agent", required=True, help="The calling agent's name.")
@click.option("--tool", required=True, help="The tool's full name, server.tool (e.g. filesystem.write_file).")
@click.option("--args", "args_json", default="{}", help="The call's arguments as a JSON object.")
@click.option("--surface", default="mcp_stdio", type=click.Choice(["mcp_stdio", "mcp_http", "openapi", "http", "cli"]))
@click.option("--http-method", default=None, help="HTTP method, for rules on http.method.")
@click.option("--http-host", default=None, help="HTTP host, for rules on http.host.")
@click.option("--http-path", default=None, help="HTTP path, for rules on http.path.")
@click.option(
    "--annotation",
    "annotations",
    multiple=True,
    metavar="HINT=JSON",
    help="A tool annotation, e.g. readOnlyHint=true.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def explain(config_path: str | None, as_json: bool, **opts: Any) -> None:
    """Show what the live gate would do with one call now, the rule that decided, and why.

    The answer is the gate's own: the built-in state-dir guard, rate limits and loop detection, the policy,
    then an approval for this exact call, a grant or decision memory that would lift a human_approval (named
    with its id and expiry). It reads the mesh's state without changing it (no approval is opened, nothing is
    counted or traced); with no state dir yet it answers on an empty state and says so.

    \b
    Example:
      agent-mesh explain --agent claude --tool filesystem.write_file --args '{"path": "/etc/passwd"}'
      agent-mesh explain --agent ci --tool github.delete_repo --surface openapi --http-method DELETE --json
    """
    # the gate, store and trace load here, not at start-up: `check` never needs them (bench/cli.py)
    from policy.gate.dryrun import close_dry_run, open_dry_run, state_label
    from policy.store.statedir import StateDirExposed

    loaded = load_loaded(config_path)
    call = parse_call_options(**opts)
    try:
        gate = open_dry_run(loaded)
    except (StateDirExposed, ConfigError) as exc:
        raise ConfigProblem(str(exc)) from None
    try:
        preview = gate.preview(call)
        state = state_label(gate)
    finally:
        close_dry_run(gate)
    ps = gate.policy_set
    d = preview.decision
    matching = [p.name for p in ps.for_agent(call.agent)]
    if as_json:
        click.echo(json.dumps({
            "agent": call.agent, "tool": call.full_name, "decision": d.action.value, "rule": d.rule,
            "policy": d.policy, "reason": d.reason, "errors": list(d.errors),
            "considered": list(d.considered), "policies_for_agent": matching,
            "evaluation_order": [p.name for p in ps.policies], "call_hash": call.call_hash,
            "preview": preview.as_json(), "state": state, **where_used(),
        }, indent=2))  # fmt: skip
        return
    verdict = paint(preview.kind.value)
    click.echo(f"verdict:    {verdict} (decided by {preview.decided_by}): what the live gate would do now")
    click.echo(f"decision:   {paint(d.action.value)}")
    click.echo(f"rule:       {d.rule}")
    click.echo(f"reason:     {d.reason}")
    for e in d.errors:
        click.echo(f"error:      {e}")
    for line in _preview_lines(preview):
        click.echo(line)
    click.echo(f"state:      {state}")
    click.echo(f"call:       {call.agent} -> {call.full_name} {json.dumps(dict(call.arguments))}")
    order = []
    for p in ps.policies:
        mark = (
            "considered"
            if p.name in d.considered
            else ("skipped: agent does not match" if p.name not in matching else "not reached")
        )
        order.append(f"  {p.name} (agent {p.agent!r}, {_KIND[p.specificity]}): {mark}")
    click.echo("policies in evaluation order:")
    click.echo("\n".join(order) or "  (none)")


def _preview_lines(preview: Preview) -> list[str]:
    """What decides the call besides the policy (with ids and expiry), and the preview's notes."""
    lines = []
    if preview.verdict.reason != preview.decision.reason:
        lines.append(f"because:    {preview.verdict.reason}")
    lift = preview.lifted_by
    if lift is not None:
        until = f", until {_when(lift.expires_at)}" if lift.expires_at is not None else ""
        lines.append(f"lifted by:  {lift.kind} {', '.join(lift.ids)}{until}: {lift.detail}")
    lines += [f"note:       {n}" for n in preview.notes]
    return lines


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _print_results(results: list[CaseResult]) -> None:
    width = max((len(r.name) for r in results), default=10)
    for r in results:
        mark = paint("PASS" if r.ok else "FAIL")
        click.echo(f"{mark}  {r.name:<{width}}  expected {r.expected:<40}  got {r.got}")
    failed = sum(not r.ok for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed")


@click.command("test")
@config_option
@click.argument("cases_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def test_cmd(config_path: str | None, cases_files: tuple[str, ...], as_json: bool) -> None:
    """Run policy unit tests: each case is a call plus the expected decision and rule.

    A cases file has an optional `config:` (inline YAML) or `config_file:`, and `cases:`, each with
    `name`, `call: {agent, tool, args, surface, http, annotations}` and `expect: {decision, rule, verdict}` — or,
    for a config that must be refused, its own `config:` and `expect: {error: TEXT, line: N}`. Calls are judged
    as the live gate judges them on an empty state: the built-in state-dir guard answers first
    (`rule: guard/state-dir`), and a human_approval's verdict is `pending`. Exits 1 when any case fails.

    \b
    Example:
      agent-mesh test policies/cases.yaml --config agent-mesh.yaml
    """
    from policy.gate.dryrun import case_judge
    from policy.mesh.load import load_config

    results: list[CaseResult] = []
    for path in cases_files:
        try:
            suite = load_cases(path)
        except ConfigError as exc:
            raise ConfigProblem(str(exc)) from None
        results += run_cases(suite, case_judge, config_path, load_config)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        _print_results(results)
    if not all(r.ok for r in results):
        sys.exit(1)


@click.group("config")
def config_group() -> None:
    """Show configuration.

    \b
    Example:
      agent-mesh config show --default > agent-mesh.yaml
    """


@config_group.command("show")
@config_option
@click.option("--default", "show_default", is_flag=True, help="Print the built-in default config.")
def config_show(config_path: str | None, show_default: bool) -> None:
    """Print the built-in default config, or the effective config as loaded (YAML-compatible JSON).

    \b
    Example:
      agent-mesh config show --default
      agent-mesh config show --config agent-mesh.yaml
    """
    if show_default:
        click.echo(default_config_text(), nl=False)
        return
    ps, _ = load_policy_set(config_path)
    click.echo(json.dumps(ps.config.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2))


core_commands = [check, explain, test_cmd, config_group]
