"""PATH shims: an agent that only knows `git` on its PATH is governed without knowing it.

`mcpwrap shims --dir DIR git` writes DIR/git, which runs `mcpwrap exec -- /usr/bin/git "$@"`; a script
started with DIR first on PATH gets its `git status` run and its `git push --force` refused (126).
Offline, self-checking (needs git):

    .venv/bin/python recipes/mcpwrap_shims.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIG = """
version: 1
state_dir: {state}
policies:
  - name: bot
    agent: bot
    rules:
      - {{tools: ["git.push"], when: {{args.argv: {{contains: "--force"}}}}, action: deny, reason: no force pushes}}
      - {{tools: ["git.*"], action: allow}}
"""
AGENT_SCRIPT = """#!/bin/sh
git init -q .
git status --short
git push --force origin main
echo "push exit status: $?"
"""


def main() -> int:
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "agent-mesh.yaml"
        config.write_text(CONFIG.format(state=Path(tmp) / "state"))
        shims = Path(tmp) / "shims"
        cmd = [sys.executable, "-m", "mcpwrap", "shims", "--dir", str(shims), "--config", str(config), "--agent", "bot"]
        subprocess.run([*cmd, "git"], check=True, timeout=60, capture_output=True)
        print((shims / "git").read_text())
        script = Path(tmp) / "agent.sh"
        script.write_text(AGENT_SCRIPT)
        script.chmod(0o755)
        work = Path(tmp) / "work"
        work.mkdir()
        env = os.environ | {"PATH": f"{shims}{os.pathsep}{os.environ['PATH']}"}
        done = subprocess.run([str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=60, check=False)
        print(done.stdout.strip())
        if "push exit status: 126" not in done.stdout:
            problems.append("the shimmed force push was not refused")
        lines = (Path(tmp) / "state" / "traces.jsonl").read_text().splitlines()
        seen = [(r["agent"], r["tool"], r["verdict"]) for r in map(json.loads, lines)]
        print(f"trace: {seen}")
        if seen != [("bot", "git.init", "allow"), ("bot", "git.status", "allow"), ("bot", "git.push", "deny")]:
            problems.append(f"unexpected trace {seen}")
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
