// Drives the chat demo (examples/chat/public/index.html) in real headless Chromium for tests/browser.rs.
//
//   node tests/browser/chat.mjs PAGE_URL SHOTS_DIR TAG [PATH=STATUS,...]
//
// Two users, A and B, in separate browser contexts (separate localStorage, so separate names):
// A sees B join; B's message reaches A; closing B's page shows "* B left" to A. Then the driver
// prints "RESTART" on stdout and waits for "GO" on stdin while tests/browser.rs restarts wscgi;
// A's page must notice the drop, reconnect by itself, and a message must round-trip again.
// PATH=STATUS pairs: plain GETs next to the page and the status each must get (e.g. the
// proxies must not serve the backend script: /chat.php=404).
// Screenshots go to SHOTS_DIR/TAG-*.png. Exit 0 and a last line "PASS" when all held; on
// failure the reason and every page's log on stderr, exit 1. Every wait is bounded (15 s).
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const [pageUrl, shots, tag, gets = ""] = process.argv.slice(2);
if (!pageUrl || !shots || !tag) {
  console.error("usage: node chat.mjs PAGE_URL SHOTS_DIR TAG [PATH=STATUS,...]");
  process.exit(2);
}
const WAIT = 15_000;
// The Rust side kills the group too; this keeps a wedged run from outliving it.
setTimeout(() => { console.error("driver: overall time limit (50 s)"); process.exit(1); }, 50_000).unref();

// Flags from shared/TOOLING.md section 3: no sandbox (root in a container), no GPU, no
// background traffic; the tests' certificates are self-signed.
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--ignore-certificate-errors"],
});
const pages = {};
const pageErrors = [];  // uncaught exceptions in the chat page fail the run
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

// A page for `name` in a fresh context: the chat page reads its name from localStorage, and
// every change of #status's data-state is recorded in window.__states.
async function open(name) {
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
  page.on("pageerror", (e) => pageErrors.push(`[${name}] ${e.message}`));
  await page.goto(pageUrl, { timeout: WAIT });
  await waitOpen(page);
  pages[name] = page;
  return page;
}

const waitOpen = (page) => page.waitForSelector('#status[data-state="open"]', { timeout: WAIT });

// Waits until `page`'s log has an item of `cls` ("system" or "msg") whose text is `text`.
async function expectLine(page, cls, text) {
  await page.waitForFunction(
    ([c, t]) => [...document.querySelectorAll(`#log li.${c}`)].some((li) => li.textContent === t),
    [cls, text], { timeout: WAIT });
}

async function say(page, text) {
  await page.fill("#msg", text);
  await page.press("#msg", "Enter");
}

const shot = (page, what) => page.screenshot({ path: `${shots}/${tag}-${what}.png` });

async function step(what, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok: ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    throw new Error(`${what}: ${e.message.split("\n")[0]}`);
  }
}

try {
  let a, b;
  await step("A opens the page and joins", async () => {
    a = await open("A");
    await expectLine(a, "system", "* A joined");
  });
  for (const pair of gets.split(",").filter(Boolean)) {
    const [path, want] = pair.split("=");
    await step(`GET ${path} is ${want}`, async () => {
      const res = await a.context().request.get(new URL(path, pageUrl).href, { timeout: WAIT });
      if (res.status() !== Number(want)) throw new Error(`got ${res.status()}`);
    });
  }
  await step("A sees B join", async () => {
    b = await open("B");
    await expectLine(a, "system", "* B joined");
    await expectLine(b, "system", "* B joined");
  });
  await step("B's message reaches A (and B)", async () => {
    await say(b, "hello from B");
    await expectLine(a, "msg", "B: hello from B");
    await expectLine(b, "msg", "B: hello from B");
    if (await b.inputValue("#msg") !== "") throw new Error("#msg not cleared after sending");
    await shot(a, "A");
    await shot(b, "B");
  });
  await step("closing B's page shows '* B left' to A", async () => {
    await b.close();
    delete pages.B;
    await expectLine(a, "system", "* B left");
  });

  const before = await a.evaluate(() => window.__states.length);
  console.log("RESTART");
  const go = await Promise.race([
    stdinLines.next(),
    new Promise((_, fail) => setTimeout(() => fail(new Error("no GO within 30 s")), 30_000)),
  ]);
  if (go.done || go.value.trim() !== "GO") throw new Error(`expected GO, got ${JSON.stringify(go.value)}`);

  await step("A notices the restart and reconnects by itself", async () => {
    await a.waitForFunction((n) => window.__states.slice(n).includes("closed") &&
      document.getElementById("status").dataset.state === "open", before, { timeout: WAIT });
  });
  await step("after the restart a message round-trips", async () => {
    const b2 = await open("B");
    await expectLine(a, "system", "* B joined");
    await say(a, "hello again");
    await expectLine(b2, "msg", "A: hello again");
    await expectLine(a, "msg", "A: hello again");
    await shot(a, "A-after-restart");
  });
  if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join("; ")}`);
  console.log(`states of A: ${(await a.evaluate(() => window.__states)).join(" > ")}`);
  console.log("PASS");
} catch (e) {
  console.error(`FAIL: ${e.message}`);
  for (const [name, page] of Object.entries(pages)) {
    const log = await page.$$eval("#log li", (lis) => lis.map((li) => `${li.className}: ${li.textContent}`)).catch(() => []);
    const state = await page.getAttribute("#status", "data-state").catch(() => "?");
    console.error(`[${name}] status=${state} log:\n  ${log.join("\n  ")}`);
    await shot(page, `${name}-failure`).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  await browser.close();
  process.exit();
}
