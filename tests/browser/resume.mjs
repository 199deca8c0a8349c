// Drives the chat demo (examples/chat/public) in real headless Chromium through a network blink, for
// tests/browser_resume.rs.
//
//   node tests/browser/resume.mjs PAGE_URL SHOTS_DIR COUNT
//
// A opens the page (which connects through the test's TCP proxy) and joins. The driver prints
// "CUT" and waits for "GO" on stdin: meanwhile the Rust side cuts A's connection at the proxy
// (no close frame), publishes COUNT lines "while away N" to the chat channel while A's session
// is parked, and heals the network. A's page must reconnect by itself, resume its session, and
// show every one of those lines exactly once, in order, with no second "* A joined", no
// "* A left" and no reset; then a line A sends comes back once. Screenshots go to
// SHOTS_DIR/resume-*.png. Exit 0 and a last line "PASS" when all held. Every wait is bounded.
import { WAIT, cue, launch, openChat, step } from "./common.mjs";

const [pageUrl, shots, count] = process.argv.slice(2);
if (!pageUrl || !shots || !count) {
  console.error("usage: node resume.mjs PAGE_URL SHOTS_DIR COUNT");
  process.exit(2);
}
const browser = await launch();
const pageErrors = [];
let page;

// The texts of the page's log lines, in order.
const lines = () => page.$$eval("#log li", (lis) => lis.map((li) => li.textContent));

async function expectLine(text) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll("#log li")].some((li) => li.textContent === t),
    text, { timeout: WAIT });
}

async function say(text) {
  await page.fill("#msg", text);
  await page.press("#msg", "Enter");
}

try {
  await step("A opens the page and joins", async () => {
    page = await openChat(browser, pageUrl, "A", pageErrors);
    await expectLine("* A joined");
    await say("before the blink");
    await expectLine("A: before the blink");
  });

  const before = await page.evaluate(() => window.__states.length);
  await cue("CUT");

  const missed = Array.from({ length: Number(count) }, (_, i) => `while away ${i + 1}`);
  await step("A's page notices the drop, reconnects and resumes by itself", async () => {
    await page.waitForFunction((n) => window.__states.slice(n).includes("reconnecting") &&
      document.getElementById("status").dataset.state === "open", before, { timeout: WAIT });
  });
  await step(`A's page shows the ${count} lines published while it was away, each once`, async () => {
    await expectLine(missed.at(-1));
    const shown = await lines();
    const got = shown.filter((l) => l.startsWith("while away "));
    if (JSON.stringify(got) !== JSON.stringify(missed)) {
      throw new Error(`got ${JSON.stringify(got)}`);
    }
    const joined = shown.filter((l) => l === "* A joined").length;
    const extra = shown.filter((l) => l === "* A left" || l.startsWith("* reconnected"));
    if (joined !== 1 || extra.length) {
      throw new Error(`one session expected: ${JSON.stringify(shown)}`);
    }
    await page.screenshot({ path: `${shots}/resume-after-blink.png` });
  });
  await step("a line A sends after the blink comes back once", async () => {
    await say("after the blink");
    await expectLine("A: after the blink");
    const shown = await lines();
    if (shown.filter((l) => l === "A: after the blink").length !== 1) {
      throw new Error(JSON.stringify(shown));
    }
  });
  if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join("; ")}`);
  console.log(`states of A: ${(await page.evaluate(() => window.__states)).join(" > ")}`);
  console.log("PASS");
} catch (e) {
  console.error(`FAIL: ${e.message}`);
  if (page) {
    const shown = await lines().catch(() => []);
    const state = await page.getAttribute("#status", "data-state").catch(() => "?");
    console.error(`status=${state} log:\n  ${shown.join("\n  ")}`);
    await page.screenshot({ path: `${shots}/resume-failure.png` }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  await browser.close();
  process.exit();
}
