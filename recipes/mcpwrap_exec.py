"""Govern a CLI: `mcpwrap exec -- git …` judges each command line as tool `git.SUBCOMMAND`.

`git status` runs as itself (git's own output and exit status); `git push --force` is refused with exit
status 126 and the reason on stderr, whatever global options come first (`git -C repo -c x=y push`).
Offline, self-checking (needs git):

    .venv/bin/python recipes/mcpwrap_exec.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

CONFIG = """
version: 1
state_dir: {state}
policies:
  - name: agent
    agent: "*"
    rules:
      - {{tools: ["git.push"], when: {{args.argv: {{contains: "--force"}}}}, action: deny, reason: no force pushes}}
      - {{tools: ["git.status", "git.init", "git.push"], action: allow}}
"""


def governed(config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mcpwrap", "exec", "--config", str(config), "--", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def main() -> int:
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "agent-mesh.yaml"
        config.write_text(CONFIG.format(state=Path(tmp) / "state"))
        repo = Path(tmp) / "repo"
        for argv in (["git", "init", "-q", str(repo)], ["git", "-C", str(repo), "status", "--short"]):
            done = governed(config, *argv)
            print(f"$ {' '.join(argv)} -> exit {done.returncode}")
            if done.returncode != 0:
                problems.append(f"{argv} should have run: {done.stderr}")
        push = ["git", "-C", str(repo), "-c", "push.default=simple", "push", "--force"]
        done = governed(config, *push)
        print(f"$ {' '.join(push)} -> exit {done.returncode}: {done.stderr.strip()}")
        if done.returncode != 126 or "no force pushes" not in done.stderr:
            problems.append("the force push was not refused with 126 and its reason")
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
