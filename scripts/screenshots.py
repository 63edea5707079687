"""Regenerate the docs' screenshots: `agent-mesh serve` with one held call, photographed by the headless
Debian chromium the e2e tests drive (playwright-core under Node, installed by `make targets`).

    .venv/bin/python scripts/screenshots.py            # every shot, into docs/img/
    .venv/bin/python scripts/screenshots.py --only page --out DIR

Shot `page`: docs/img/approval-card.png and docs/img/page.png.

Everything runs on loopback in a temporary folder: a config whose rule holds `git push`, serve on free
ports, `mcpwrap exec -- git push origin main` in a throwaway repository (held, never approved: it is stopped
once the pictures are taken), and a browser that opens the one-time login link.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.serve_support import MCPWRAP, running_serve  # noqa: E402
from tests.support.proc import Proc  # noqa: E402
from tests.support.targets import Targets  # noqa: E402

CONFIG = """
version: 1
state_dir: {state}
agents: {{claude: {{token: {agent_token}}}}}
approval: {{hold_seconds: 120}}
policies:
  - name: claude
    agent: claude
    rules:
      - {{name: reads, tools: ["git.show", "git.log", "git.status"], action: allow}}
      - {{name: no-force-push, tools: ["git.*"], when: {{args.force: true}}, action: deny}}
      - {{name: pushes-wait, tools: ["git.push"], action: human_approval,
          reason: a human looks at every push}}
"""
STEP_SECONDS = 30.0

# One playwright-core session: log in, wait for the held call's card, photograph the card and the page.
SHOOT = r"""
const [coreDir, chromiumPath, url, cardPath, pagePath, timeout] = process.argv.slice(1);
const { chromium } = require(coreDir);
(async () => {
  const browser = await chromium.launch({
    executablePath: chromiumPath, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
  try {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await page.goto(url, { waitUntil: "load" });
    const card = page.locator("#inbox .approval").first();
    await card.waitFor({ state: "visible", timeout: Number(timeout) });
    await page.locator("#traces tbody tr").first().waitFor({ state: "attached", timeout: Number(timeout) });
    // The page swaps in fresh fragments as it updates live: a card replaced mid-shot is shot again.
    for (let attempt = 1; ; attempt++) {
      try {
        await card.screenshot({ path: cardPath, timeout: 5000 });
        break;
      } catch (err) {
        if (attempt === 5) throw err;
      }
    }
    await page.screenshot({ path: pagePath, fullPage: true });
  } finally {
    await browser.close();
  }
})().catch((err) => { process.stderr.write(String(err && err.stack ? err.stack : err) + "\n"); process.exit(1); });
"""


def git_repo(path: Path) -> Path:
    """A repository with one commit and a remote, so `git push origin main` is a real push to judge."""
    env = {"GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.invalid"}
    env |= {"GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@example.invalid", "PATH": "/usr/bin:/bin"}
    path.mkdir()
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "commit", "-q", "--allow-empty", "-m", "first"],
        ["git", "remote", "add", "origin", "https://git.example.invalid/site.git"],
    ):
        subprocess.run(argv, cwd=path, env=env, check=True, timeout=STEP_SECONDS)
    return path


def serve_page(out: Path) -> list[Path]:
    """The approval card of a held call and the whole page of `agent-mesh serve`."""
    targets = Targets()
    core, node, chromium = targets.npm_package("playwright-core"), targets.node20, targets.chromium
    card, page = out / "approval-card.png", out / "page.png"
    with tempfile.TemporaryDirectory(prefix="agent-mesh-shots-") as tmp:
        tmp_path = Path(tmp)
        repo = git_repo(tmp_path / "site")
        with running_serve(tmp_path, CONFIG) as serve:
            exec_ = [MCPWRAP, "exec", "--config", serve.config, "--agent", "claude", "--"]
            subprocess.run([*exec_, "git", "show", "-s", "HEAD"], cwd=repo, check=True, capture_output=True, timeout=60)
            push = [*exec_, "git", "push", "origin", "main"]
            with Proc(push, name="held-push", cwd=repo) as held:
                held.wait_for_line(r"waits for a human", timeout=STEP_SECONDS)
                argv = [node, "-e", SHOOT, str(core), str(chromium), serve.login_url, str(card), str(page)]
                subprocess.run([*map(str, argv), str(int(STEP_SECONDS * 1000))], check=True, timeout=STEP_SECONDS * 3)
    return [card, page]


# Each shot writes its PNGs into the folder it is given and returns their paths; a new picture is a new entry.
SHOTS: dict[str, Callable[[Path], list[Path]]] = {"page": serve_page}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder for the PNGs (docs/img)")
    parser.add_argument("--only", choices=sorted(SHOTS), action="append", help="take only these shots (repeatable)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or SHOTS:
        for path in SHOTS[name](args.out):
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
