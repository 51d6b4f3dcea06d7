// Drives the inspector page in headless Chromium (Debian's, never a downloaded browser)
// through playwright-core.
//
// Usage: node inspector.mjs PAGE_URL CHROMIUM_PATH
// PAGE_URL is what `pyrivet serve` printed (`…/ui#token=…`). Prints one line of JSON:
// `{"ok": true, ...}` or `{"ok": false, "error": ..., "pageErrors": [...]}`.
import { chromium } from "playwright-core";

const [pageUrl, executablePath] = process.argv.slice(2);
const WAIT = 15_000;
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const pageErrors = [];

async function scenario(browser) {
  const page = await browser.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (err) => pageErrors.push(String(err)));
  page.on("console", (msg) => {
    if (msg.type() === "error") pageErrors.push(msg.text());
  });
  const external = [];
  page.on("request", (req) => {
    if (!req.url().startsWith(new URL(pageUrl).origin)) external.push(req.url());
  });
  await page.goto(pageUrl);
  await page.locator("#status", { hasText: "signed in" }).waitFor();

  // Find the actor by its key; the other actor drops out of the list.
  await page.locator("#actors li", { hasText: "sleepy" }).waitFor();
  await page.locator("#search").fill("room-1");
  await page.locator("#actors li", { hasText: "sleepy" }).waitFor({ state: "detached" });
  const item = page.locator("#actors li", { hasText: "room-1" });
  await item.click();
  await page.locator("#state-view", { hasText: '"count": 2' }).waitFor();

  // Run an action from the console: its output, then the live state.
  await page.locator("#tab-console").click();
  await page.locator("#console-action").selectOption("increment");
  await page.locator("#console-args").fill("[5]");
  await page.locator("#console-run").click();
  await page.locator("#console-output", { hasText: "7" }).waitFor();
  await page.locator("#tab-state").click();
  await page.locator("#state-view", { hasText: '"count": 7' }).waitFor();

  // The timeline ends with that call; the diff says what it changed.
  await page.locator("#tab-history").click();
  await page.locator("#history-meta", { hasText: "increment [5]" }).waitFor();
  await page.locator("#history-diff", { hasText: "~ count: 2 → 7" }).waitFor();
  const max = Number(await page.locator("#history-slider").getAttribute("max"));

  // Another call, made elsewhere, reaches the open timeline live.
  say({ step: "call" });
  await page.locator("#history-meta", { hasText: "increment [1]" }).waitFor();
  const grown = Number(await page.locator("#history-slider").getAttribute("max"));

  // Slide back before the console's call and rewind there.
  await page.locator("#history-slider").fill(String(max - 1));
  await page.locator("#history-state", { hasText: '"count": 2' }).waitFor();
  const rewoundTo = Number(await page.locator("#rewind").getAttribute("data-seq"));
  await page.locator("#rewind").click();
  await page.locator("#history-meta", { hasText: "rewind" }).waitFor();
  await page.locator("#tab-state").click();
  await page.locator("#state-view", { hasText: '"count": 2' }).waitFor();
  return { max, grown, rewoundTo, external };
}

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
try {
  say({ ok: true, ...(await scenario(browser)) });
} catch (err) {
  say({ ok: false, error: String(err && err.stack ? err.stack : err), pageErrors });
} finally {
  await browser.close();
}
