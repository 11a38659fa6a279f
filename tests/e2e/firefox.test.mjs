// The core flow in Firefox (Debian's firefox-esr, driven through geckodriver by
// selenium-webdriver): the page loads, both sides train in the element's worker,
// pause stops them, and an invalid attribute shows a message naming it.
//
// `make test` installs firefox-esr (apt) and geckodriver (`cargo install geckodriver
// --locked`). Where either is missing the test is skipped with a notice, except
// under CI=true, where that is a failure.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir, homedir } from "node:os";
import path from "node:path";
import { startServer, withTimeout } from "./harness.mjs";

const FIREFOX = process.env.FIREFOX || "/usr/bin/firefox-esr";

function geckodriver() {
  if (process.env.GECKODRIVER) return process.env.GECKODRIVER;
  const cargo = path.join(homedir(), ".cargo", "bin", "geckodriver");
  if (existsSync(cargo)) return cargo;
  try {
    return execFileSync("sh", ["-c", "command -v geckodriver"], { encoding: "utf8" }).trim() || null;
  } catch {
    return null;
  }
}

const missing = [!existsSync(FIREFOX) && FIREFOX, !geckodriver() && "geckodriver"].filter(Boolean);
const skip = missing.length && !process.env.CI ? `not installed: ${missing.join(", ")} (make setup installs them)` : false;
if (skip) console.log(`# firefox e2e skipped: ${skip}`);

let server = null;
let driver = null;
let profile = null;

before(async () => {
  if (skip) return;
  assert.deepEqual(missing, [], `CI must run the Firefox test: ${missing.join(", ")} missing (make setup installs them)`);
  const { Builder } = await import("selenium-webdriver");
  const firefox = await import("selenium-webdriver/firefox.js");
  server = await startServer();
  profile = mkdtempSync(path.join(tmpdir(), "flatminima-firefox-"));
  const options = new firefox.Options().setBinary(FIREFOX).addArguments("-headless", "-profile", profile);
  const service = new firefox.ServiceBuilder(geckodriver());
  driver = await withTimeout(
    new Builder().forBrowser("firefox").setFirefoxOptions(options).setFirefoxService(service).build(),
    60_000, "Firefox to start");
}, { timeout: 90_000 });

after(async () => {
  await driver?.quit().catch(() => {});
  await server?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
}, { timeout: 30_000 });

/** Runs `body` (a function of `el`, the first sandbox) in the page; may return a Promise. */
function inPage(body, ...args) {
  return driver.executeAsyncScript(`
    const done = arguments[arguments.length - 1];
    const el = document.querySelector("flatminima-sandbox");
    Promise.resolve().then(() => (${body})(el, ...Array.from(arguments).slice(0, -1)))
      .then((v) => done({ ok: v === undefined ? null : v }), (e) => done({ error: String(e && e.message || e) }));
  `, ...args).then((r) => {
    if (r.error) throw new Error(r.error);
    return r.ok;
  });
}

async function poll(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("Firefox: the page loads, both sides train in the worker, pause stops them, a bad attribute is named", { skip, timeout: 120_000 }, async () => {
  await driver.manage().setTimeouts({ script: 30_000 });
  await driver.get(server.url + "index.html?lr=abc");
  const m0 = await poll(() => inPage((el) => el && el.metrics && el.metrics()), 30_000, "the sandbox's first metrics");
  assert.equal(m0.left.lr, 0.1, "lr=abc falls back to the default 0.1");
  const text = await inPage((el) => el.shadowRoot.textContent);
  assert.match(text, /lr: must be a number in \(0, 100\], got `abc`/, "the message names lr and quotes abc");

  await inPage((el) => el.play());
  const m1 = await poll(async () => {
    const m = await inPage((el) => el.metrics());
    return m.left.step > m0.left.step + 50 && m.right.step > m0.right.step + 50 && m;
  }, 30_000, "both sides to train");
  for (const side of ["left", "right"]) {
    assert.ok(Number.isFinite(m1[side].train_loss) && m1[side].train_loss !== m0[side].train_loss, `${side} trains`);
  }
  assert.notEqual(m1.left.train_loss, m1.right.train_loss, "SGD and SAM give the same loss");
  // The decision boundary is drawn (the worker's bitmaps reach the page's canvas).
  const distinct = await inPage((el) => {
    const c = el.shadowRoot.querySelector(".fm-boundary");
    const copy = document.createElement("canvas");
    copy.width = c.width;
    copy.height = c.height;
    const ctx = copy.getContext("2d");
    ctx.drawImage(c, 0, 0);
    const data = ctx.getImageData(0, 0, c.width, c.height).data;
    const colours = new Set();
    for (let i = 0; i < data.length; i += 64) colours.add(data[i] | (data[i + 1] << 8) | (data[i + 2] << 16));
    return colours.size;
  });
  assert.ok(distinct > 4, `the left panel shows ${distinct} colours`);

  const p1 = await inPage((el) => el.pause());
  await new Promise((r) => setTimeout(r, 500));
  const p2 = await inPage((el) => el.metrics());
  assert.equal(p2.left.step, p1.left.step, "still training after pause()");
  // No crash shown in the element (a worker error or panic would be).
  assert.equal(await inPage((el) => el.shadowRoot.querySelector(".fm-fatal").hidden), true, "the element shows a fatal error");
});
