"""The operator's day with the `agent-mesh` CLI: check a config, register the mesh, find a call, export the trace.

The story, each step checked:

1. `agent-mesh check` on a config with a misspelt server name and a rule an earlier one always answers
   first: every finding is printed as `file:line: …`, the typo with a "did you mean 'notes'?"; a misspelt key
   is an error (exit 2) with its own "did you mean".
2. `agent-mesh use CONFIG` registers the mesh; from another folder, with no --config, `mcpwrap exec` governs
   `echo` by it and `agent-mesh use` says where the config came from.
3. `agent-mesh traces search WORD` finds a call by a word of its arguments.
4. `agent-mesh traces export --format csv` writes a header and one row per call.
5. With `--json`, errors are JSON too (`{"error": {"code": …, "message": …}}`), for scripts.

Offline, HOME and XDG dirs in a temp folder (the registration lands there, not in your own home):

    .venv/bin/python recipes/operator_tools.py
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
LINTED = """version: 1
state_dir: {state}
servers:
  notes: {{description: a notes server}}
policies:
  - name: claude
    agent: claude
    rules:
      - {{name: notes, tools: ["notes.*"], action: allow}}
      - {{name: no-deletes, tools: ["notes.delete_note"], action: deny, reason: notes are kept}}
      - {{name: typo, tools: ["ntoes.read_note"], action: deny}}
"""
MISSPELT_KEY = """version: 1
state_dir: {state}
polices: []
"""
MESH = """version: 1
state_dir: {state}
servers:
  echo: {{description: the echo command}}
policies:
  - name: everyone
    agent: "*"
    rules:
      - name: no-secrets
        tools: ["echo"]
        when: {{args.argv: {{contains: secret}}}}
        action: deny
        reason: no secrets
      - {{name: echo, tools: ["echo"], action: allow}}
"""


def run(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    print(f"$ {' '.join(a if ' ' not in a else repr(a) for a in argv[1:] if a != '-m')}  -> exit {done.returncode}")
    return done


def check(env: dict[str, str], folder: Path, problems: list[str]) -> None:
    mesh = str(BIN / "agent-mesh")
    (folder / "linted.yaml").write_text(LINTED.format(state=folder / "state"))
    done = run(env, folder, mesh, "check", "--config", "linted.yaml")
    findings = [line for line in done.stdout.splitlines() if line.startswith("linted.yaml:") and "warning" in line]
    for line in findings:
        print(f"  {line[:150]}")
    lines = sorted(line.split(":")[1] for line in findings)
    if done.returncode != 0 or lines != ["10", "11"]:
        problems.append(f"check did not print both findings at their lines: {findings}")
    if not any("did you mean 'notes'?" in line and "[W002" in line for line in findings):
        problems.append("the misspelt server name had no 'did you mean'")
    if not any("can never decide" in line and "[W003" in line for line in findings):
        problems.append("the shadowed rule was not reported")
    (folder / "misspelt.yaml").write_text(MISSPELT_KEY.format(state=folder / "state"))
    done = run(env, folder, mesh, "check", "--config", "misspelt.yaml")
    print(f"  {done.stderr.splitlines()[0] if done.stderr else ''}")
    if done.returncode != 2 or "misspelt.yaml:3: polices: unknown key (did you mean 'policies'?)" not in done.stderr:
        problems.append(f"the misspelt key was not an error with its line and a 'did you mean': {done.stderr}")


def use_and_call(env: dict[str, str], folder: Path, elsewhere: Path, problems: list[str]) -> None:
    mesh = str(BIN / "agent-mesh")
    (folder / "mesh.yaml").write_text(MESH.format(state=folder / "state"))
    if run(env, folder, mesh, "use", "mesh.yaml").returncode != 0:
        problems.append("`agent-mesh use mesh.yaml` did not register the mesh")
    active = json.loads(run(env, elsewhere, mesh, "use", "--json").stdout)
    print(f"  from {elsewhere.name}/: config {active['config']} ({active['source']})")
    if (active["config"], active["source"]) != (str(folder / "mesh.yaml"), "registered"):
        problems.append(f"another folder does not see the registered mesh: {active}")
    wrap = [sys.executable, "-m", "mcpwrap", "exec", "--agent", "ci", "--"]
    said = run(env, elsewhere, *wrap, "echo", "hello", "pelican")
    refused = run(env, elsewhere, *wrap, "echo", "my", "secret", "walrus")
    print(f"  echo said {said.stdout.strip()!r}; the secret one: {refused.stderr.strip()[:90]}")
    if said.returncode != 0 or said.stdout.strip() != "hello pelican":
        problems.append(f"the registered mesh did not allow `echo hello pelican`: {said.stderr}")
    if refused.returncode != 126 or "no secrets" not in refused.stderr:
        problems.append(f"the registered mesh's rule did not refuse the secret: {refused.stderr}")


def traces(env: dict[str, str], elsewhere: Path, problems: list[str]) -> None:
    mesh = str(BIN / "agent-mesh")
    found = run(env, elsewhere, mesh, "traces", "search", "walrus", "--json")
    hits = [json.loads(line) for line in found.stdout.splitlines() if line.strip()]
    for hit in hits:
        print(f"  found: {hit['tool']} {json.dumps(hit['args']['argv'])} {hit['verdict']} by {hit['decided_by']}")
    if [(h["args"]["argv"], h["decided_by"]) for h in hits] != [(["echo", "my", "secret", "walrus"],
                                                                 "policy:everyone/no-secrets")]:  # fmt: skip
        problems.append(f"`traces search walrus` did not find exactly the refused call: {hits}")
    exported = run(env, elsewhere, mesh, "traces", "export", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    header = exported.stdout.splitlines()[0] if exported.stdout else ""
    print(f"  csv header: {header[:100]}…")
    for row in rows:
        print(f"  csv row: {row['kind']},{row['tool']},{row['verdict']},{row['decided_by']},{row['args'][:50]}")
    calls = [row for row in rows if row["kind"] == "call"]
    if exported.returncode != 0 or not header.startswith("kind,") or len(calls) != 2:
        problems.append(f"the csv export is not a header and one row per call: {exported.stdout[:300]}")
    elif [row["verdict"] for row in calls] != ["allow", "deny"]:
        problems.append(f"the csv rows are not the two calls in order: {calls}")


def json_errors(env: dict[str, str], elsewhere: Path, problems: list[str]) -> None:
    mesh = str(BIN / "agent-mesh")
    for argv in (["traces", "search", "AND (", "--json"], ["traces", "query", "--since", "bogus", "--json"],
                 ["check", "--config", "../misspelt.yaml", "--json"]):  # fmt: skip
        done = run(env, elsewhere, mesh, *argv)
        try:
            error = json.loads(done.stdout)["error"]
        except (ValueError, KeyError, TypeError):
            problems.append(f"`{' '.join(argv)}` did not print a JSON error: {done.stdout!r} {done.stderr!r}")
            continue
        print(f"  {json.dumps(error)[:140]}")
        if done.returncode == 0 or not error.get("code") or not error.get("message"):
            problems.append(f"`{' '.join(argv)}`: a JSON error needs a code, a message and a failing exit: {error}")


def main() -> int:
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="operator-tools-") as tmp:
        folder = Path(tmp)
        home, elsewhere = folder / "home", folder / "elsewhere"
        elsewhere.mkdir()
        env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share"),
               "XDG_CONFIG_HOME": str(home / ".config"), "XDG_STATE_HOME": str(home / ".local" / "state")}  # fmt: skip
        env.pop("AGENT_MESH_CONFIG", None)
        print("1. check:")
        check(env, folder, problems)
        print("2. use, then a command from another folder:")
        use_and_call(env, folder, elsewhere, problems)
        print("3-4. traces search and export:")
        traces(env, elsewhere, problems)
        print("5. errors with --json:")
        json_errors(env, elsewhere, problems)
    for problem in problems:
        print(f"FAILED: {problem}")
    print("operator_tools: OK" if not problems else "operator_tools: FAILED")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
