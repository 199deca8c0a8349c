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
import { WAIT, cue, launch, openChat, step } from "./common.mjs";

const [pageUrl, shots, tag, gets = ""] = process.argv.slice(2);
if (!pageUrl || !shots || !tag) {
  console.error("usage: node chat.mjs PAGE_URL SHOTS_DIR TAG [PATH=STATUS,...]");
  process.exit(2);
}
const browser = await launch();
const pages = {};
const pageErrors = [];  // uncaught exceptions in the chat page fail the run

async function open(name) {
  pages[name] = await openChat(browser, pageUrl, name, pageErrors);
  return pages[name];
}


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
  await cue("RESTART");

  await step("A notices the restart and reconnects by itself", async () => {
    await a.waitForFunction((n) => window.__states.slice(n).includes("reconnecting") &&
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
