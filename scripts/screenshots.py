"""Regenerate the docs' screenshots: `agent-mesh serve` with one held call, photographed by the headless
Debian chromium the e2e tests drive (playwright-core under Node, installed by `make targets`).

    .venv/bin/python scripts/screenshots.py            # every shot, into docs/img/
    .venv/bin/python scripts/screenshots.py --only page --out DIR

Shot `page`: docs/img/approval-card.png, docs/img/page.png and docs/img/trace-detail.png (a call's row opened).
Shot `mitmweb`: docs/img/mitmweb-held-call.png (`serve --web`, a REST call held, its comment open).

Everything runs on loopback in a temporary folder: a config whose rule holds `git push`, serve on free
ports, `mcpwrap exec -- git push origin main` in a throwaway repository (held, never approved: it is stopped
once the pictures are taken), and a browser that opens the one-time login link.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.serve_support import AGENT_TOKEN, MCPWRAP, running_serve  # noqa: E402
from tests.support.net import free_port  # noqa: E402
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
const [coreDir, chromiumPath, url, cardPath, pagePath, timeout, detailPath] = process.argv.slice(1);
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
    if (detailPath) {  // the allowed `git show` call's row, opened: its detail panel
      await page.locator("#traces tr[data-seq]", { hasText: "git.show" }).first().click();
      const detail = page.locator("#trace-detail .trace-detail").first();
      await detail.waitFor({ state: "visible", timeout: Number(timeout) });
      await detail.screenshot({ path: detailPath });
    }
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
    card, page, detail = out / "approval-card.png", out / "page.png", out / "trace-detail.png"
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
                shoot = [*map(str, argv), str(int(STEP_SECONDS * 1000)), str(detail)]
                subprocess.run(shoot, check=True, timeout=STEP_SECONDS * 3)
    return [card, page, detail]


MITMWEB_CONFIG = """
version: 1
state_dir: {state}
agents: {{claude: {{token: {agent_token}}}}}
servers:
  notes: {{base_url: "http://notes.example.invalid/api"}}
approval: {{hold_seconds: 120}}
policies:
  - name: claude
    agent: claude
    rules:
      - {{name: writes-ask, tools: ["notes.POST *"], action: human_approval, reason: a human reads every note first}}
"""

# mitmweb (serve --web) with one held flow: select it, open its comment, photograph the window.
MITMWEB_SHOOT = r"""
const [coreDir, chromiumPath, url, shotPath, timeout] = process.argv.slice(1);
const { chromium } = require(coreDir);
(async () => {
  const browser = await chromium.launch({
    executablePath: chromiumPath, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
  try {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 480 } })).newPage();
    await page.goto(url, { waitUntil: "load" });
    const row = page.locator("tr.intercepted").first();
    await row.waitFor({ state: "visible", timeout: Number(timeout) });
    await row.click();
    await page.locator(".flow-detail nav a", { hasText: "Comment" }).first().click();
    await page.locator(".flow-detail", { hasText: "held for approval" }).first().waitFor({ timeout: Number(timeout) });
    await page.screenshot({ path: shotPath });
  } finally {
    await browser.close();
  }
})().catch((err) => { process.stderr.write(String(err && err.stack ? err.stack : err) + "\n"); process.exit(1); });
"""


def mitmweb_held(out: Path) -> list[Path]:
    """mitmweb inside `agent-mesh serve --web`, showing a held REST call as intercepted, with its comment."""
    import httpx

    targets = Targets()
    core, node, chromium = targets.npm_package("playwright-core"), targets.node20, targets.chromium
    shot = out / "mitmweb-held-call.png"
    with tempfile.TemporaryDirectory(prefix="agent-mesh-shots-") as tmp:
        web = ["--web", "--listen-web", f"127.0.0.1:{free_port()}"]
        with running_serve(Path(tmp), MITMWEB_CONFIG, extra=web) as serve:
            url = serve.proc.wait_for_line(r"mitmweb\s+(http://\S+)", timeout=STEP_SECONDS).group(1)

            def agent() -> None:  # held, never approved: it ends with serve
                proxy = f"http://claude:{AGENT_TOKEN}@127.0.0.1:{serve.proxy_port}"
                with contextlib.suppress(httpx.HTTPError), httpx.Client(proxy=proxy, trust_env=False) as client:
                    client.post("http://notes.example.invalid/api/notes", json={"text": "release notes"}, timeout=60)

            thread = threading.Thread(target=agent, daemon=True)
            thread.start()
            argv = [node, "-e", MITMWEB_SHOOT, str(core), str(chromium), url, str(shot)]
            subprocess.run([*map(str, argv), str(int(STEP_SECONDS * 1000))], check=True, timeout=STEP_SECONDS * 3)
    return [shot]


# Each shot writes its PNGs into the folder it is given and returns their paths; a new picture is a new entry.
SHOTS: dict[str, Callable[[Path], list[Path]]] = {"page": serve_page, "mitmweb": mitmweb_held}


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
