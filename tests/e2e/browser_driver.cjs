// Drives Debian's headless chromium with playwright-core for the Python e2e tests: one JSON command per
// stdin line, one JSON answer per stdout line, so a pytest test interleaves browser steps with agent calls.
//   node browser_driver.cjs <playwright-core dir> <chromium binary>
// Commands: {op: goto|waitFor|waitForText|click|fill|text|count|eval|screenshot|close, ...}
"use strict";

const readline = require("node:readline");
const [coreDir, chromiumPath] = process.argv.slice(2);
const { chromium } = require(coreDir);

async function main() {
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const dialogs = [];
  page.on("dialog", async (dialog) => { dialogs.push(dialog.message()); await dialog.dismiss(); });
  const errors = [];
  page.on("pageerror", (err) => errors.push(String(err)));

  const ops = {
    goto: async (c) => { await page.goto(c.url, { waitUntil: "load" }); return page.url(); },
    waitFor: async (c) => {
      await page.locator(c.selector).first().waitFor({ state: c.state || "visible", timeout: c.timeout });
      return true;
    },
    waitForText: async (c) => {
      await page.locator(c.selector, { hasText: c.text }).first().waitFor({ timeout: c.timeout });
      return true;
    },
    click: async (c) => { await page.locator(c.selector).first().click({ timeout: c.timeout }); return true; },
    fill: async (c) => { await page.locator(c.selector).first().fill(c.value, { timeout: c.timeout }); return true; },
    text: async (c) => page.locator(c.selector).first().innerText({ timeout: c.timeout }),
    count: async (c) => page.locator(c.selector).count(),
    eval: async (c) => page.evaluate(c.expression),
    screenshot: async (c) => { await page.screenshot({ path: c.path, fullPage: true }); return c.path; },
    state: async () => ({ url: page.url(), dialogs, errors }),
  };

  const lines = readline.createInterface({ input: process.stdin });
  process.stdout.write(JSON.stringify({ ok: true, value: "ready" }) + "\n");
  for await (const line of lines) {
    const command = JSON.parse(line);
    if (command.op === "close") { break; }
    let answer;
    try {
      answer = { ok: true, value: await ops[command.op](command) };
    } catch (err) {
      answer = { ok: false, error: String(err && err.message ? err.message : err) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
  await browser.close();
  process.exit(0);
}

main().catch((err) => { process.stderr.write(String(err && err.stack ? err.stack : err) + "\n"); process.exit(1); });
