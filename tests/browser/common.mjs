// What the Chromium drivers in tests/browser/ share (chat.mjs, resume.mjs): launching Debian's
// Chromium through playwright-core, a chat page whose status changes are recorded, numbered
// steps with their timings, and the cue/GO exchange with the Rust test (tests/browser/driver.rs).
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

export const WAIT = 15_000;

// The Rust side kills the group too; this keeps a wedged run from outliving it.
setTimeout(() => { console.error("driver: overall time limit (50 s)"); process.exit(1); }, 50_000).unref();

// Flags from shared/TOOLING.md section 3: no sandbox (root in a container), no GPU, no
// background traffic; the tests' certificates are self-signed (wscgi's own TLS, nginx, Caddy).
export const launch = () => chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--ignore-certificate-errors"],
});

// The chat page for `name` in a fresh context of `browser` (the page reads its name from
// localStorage); every change of #status's data-state is recorded in window.__states, and
// uncaught exceptions go to `errors`. Resolves once the page is connected.
export async function openChat(browser, pageUrl, name, errors) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 720, height: 480 } });
  await ctx.addInitScript((n) => {
    localStorage.setItem("wscgi-chat-name", n);
    window.__states = [];
    new MutationObserver(() => {
      const s = document.getElementById("status")?.dataset.state;
      if (s && window.__states.at(-1) !== s) window.__states.push(s);
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
  }, name);
  const page = await ctx.newPage();
  page.on("pageerror", (e) => errors.push(`[${name}] ${e.message}`));
  await page.goto(pageUrl, { timeout: WAIT });
  await page.waitForSelector('#status[data-state="open"]', { timeout: WAIT });
  return page;
}

export async function step(what, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok: ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    throw new Error(`${what}: ${e.message.split("\n")[0]}`);
  }
}

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

// Prints `cue` and waits (30 s at most) for the Rust test to answer GO once it has acted.
export async function cue(line) {
  console.log(line);
  const go = await Promise.race([
    stdinLines.next(),
    new Promise((_, fail) => setTimeout(() => fail(new Error("no GO within 30 s")), 30_000)),
  ]);
  if (go.done || go.value.trim() !== "GO") throw new Error(`expected GO, got ${JSON.stringify(go.value)}`);
}
