// Drives two pages of an example in headless Chromium (Debian's, never a downloaded
// browser) through playwright-core, across an in-place restart of `pyrivet serve`.
//
// Usage: node scenarios.mjs SCENARIO BASE_URL CHROMIUM_PATH
// Talks to the Python test over stdio: prints `{"step": "restart"}` when the server
// should restart, waits for a line on stdin saying it has, and ends with one line
// `{"ok": true, ...}` (or `{"ok": false, "error": ...}`).
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const [scenario, base, executablePath] = process.argv.slice(2);
const WAIT = 15_000;
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

/** Ask the test to restart the server; resolves once it says it has. */
async function restartServer() {
  say({ step: "restart" });
  const { value, done } = await lines.next();
  if (done || value.trim() !== "restarted") throw new Error(`expected "restarted", got ${value}`);
}

const room = `room-${process.pid}-${Date.now()}`;

async function chat(browser) {
  const url = (name) =>
    `${base}/gateway/chat/request/?rvt-method=getOrCreate&rvt-key=${room}&name=${name}`;
  const ada = await browser.newPage();
  const bob = await browser.newPage();
  await ada.goto(url("ada"));
  await bob.goto(url("bob"));
  for (const page of [ada, bob]) await page.locator("#status", { hasText: /^connected$/ }).waitFor();

  // Ada types: Bob sees the typing indicator (an event), then the message.
  await ada.locator("#draft").pressSequentially("hello bob");
  await bob.locator("#typing", { hasText: "ada is typing" }).waitFor();
  await ada.locator("#draft").press("Enter");
  await bob.locator("#messages li", { hasText: "hello bob" }).waitFor();
  // Sending ends the typing: the indicator clears.
  await bob.locator("#typing", { hasText: "typing" }).waitFor({ state: "detached" });

  await restartServer();

  // Both pages reconnect by themselves: Bob's answer reaches Ada over the new server.
  for (const page of [ada, bob]) await page.locator("#status", { hasText: /^connected$/ }).waitFor();
  await bob.locator("#draft").fill("hi ada, after the restart");
  await bob.locator("#draft").press("Enter");
  await ada.locator("#messages li", { hasText: "after the restart" }).waitFor();

  // The history survived the restart: a fresh page gets both messages from the actor.
  await bob.reload();
  await bob.locator("#messages li", { hasText: "after the restart" }).waitFor();
  const seen = async (page) => page.locator("#messages li .text").allTextContents();
  return { ada: await seen(ada), bob: await seen(bob) };
}

async function document(browser) {
  const url = `${base}/gateway/document/request/?rvt-method=getOrCreate&rvt-key=${room}`;
  const one = await browser.newPage();
  const two = await browser.newPage();
  await one.goto(url);
  await two.goto(url);
  for (const page of [one, two]) await page.locator("#status", { hasText: /^synced$/ }).waitFor();

  await one.locator("#editor").pressSequentially("Hello");
  await two.locator("#editor").evaluate((el, want) => new Promise((resolve) => {
    const check = () => (el.value === want ? resolve() : setTimeout(check, 20));
    check();
  }), "Hello");

  await restartServer();

  for (const page of [one, two]) await page.locator("#status", { hasText: /^synced$/ }).waitFor();
  // Edits from both sides after the restart merge into one text on both pages.
  await two.locator("#editor").press("End");
  await two.locator("#editor").pressSequentially(" world");
  const text = async (page) => page.locator("#editor").inputValue();
  const both = async () => [await text(one), await text(two)];
  const deadline = Date.now() + WAIT;
  while ((await text(one)) !== "Hello world" && Date.now() < deadline) await one.waitForTimeout(20);

  // A fresh page loads the document from the actor's persisted state.
  const three = await browser.newPage();
  await three.goto(url);
  await three.locator("#status", { hasText: /^synced$/ }).waitFor();
  return { texts: [...(await both()), await text(three)] };
}

/** What the pages logged as errors: reported with a failure. */
const pageErrors = [];

/** A page in its own browser context (as if in another browser), with bounded waits. */
async function newPage(browser) {
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  page.on("console", (m) => m.type() === "error" && pageErrors.push(m.text()));
  return page;
}

const scenarios = { chat, document };
// --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
try {
  say({ ok: true, scenario, ...(await scenarios[scenario]({ newPage: () => newPage(browser) })) });
} catch (error) {
  say({ ok: false, error: String(error?.stack ?? error), pageErrors });
} finally {
  await browser.close();
  stdin.close();
}
