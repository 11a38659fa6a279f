// The page stays responsive while training at full speed: animation frames
// keep coming and clicks are handled promptly (training is time-sliced).
// Figures are printed as "# ..." lines; the bounds are loose on purpose (a
// 2-core machine, software rendering): they catch a page that blocks its main
// thread for a whole training run, not a slow frame.

import { test } from "node:test";
import assert from "node:assert/strict";
import { loadavg } from "node:os";
import {
  useServerAndBrowser, newWatchedPage, waitForSandbox, metrics, metricsProblems, control,
} from "./harness.mjs";

// Bounds (ms). A frame gap of 200 ms is a visible stutter; a page that blocks
// its main thread for a training run shows gaps of seconds. The aim is ~200 ms
// gaps at worst, but timing here depends on the machine's load: measured on 2
// cores shared with parallel builds (load average 8-10), the p95 gap was
// 233-250 ms and the longest 250 ms, at 8-12 frames/s. The bounds below leave
// room for that and still catch a blocked page; the "# ..." line reports the figures.
const P95_FRAME_GAP_MS = 300;
const MAX_FRAME_GAP_MS = 600;
const MIN_FRAMES_PER_S = 4;
const MAX_CLICK_DELAY_MS = 300;

const env = useServerAndBrowser();

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, median: q(0.5), p95: q(0.95), max: s[s.length - 1] };
};
const r1 = (x) => Math.round(x * 10) / 10;

test("(h) responsive at maximum speed: frames keep coming, clicks are handled", { timeout: 40_000 }, async () => {
  const { page, problems } = await newWatchedPage(env.browser.context);
  await page.goto(env.server.url + "index.html?steps=10000000", { waitUntil: "load" });
  await waitForSandbox(page);

  // The speed control at its maximum (a range, a number field or a select).
  const speed = control(page, "speed");
  const speedByLabel = page.locator("flatminima-sandbox").getByLabel(/speed/i).first();
  const speedControl = (await speed.count()) ? speed : speedByLabel;
  assert.ok((await speedControl.count()) > 0, "no speed control (name=\"speed\", data-setting=\"speed\" or labelled \"speed\") on index.html");
  const maxSpeed = await speedControl.evaluate((node) => {
    const input = node.matches("input, select") ? node : node.querySelector("input, select");
    if (input.tagName === "SELECT") input.selectedIndex = input.options.length - 1;
    else input.value = input.max || "1000000";
    input.dispatchEvent(new Event("input", { bubbles: true, composed: true }));
    input.dispatchEvent(new Event("change", { bubbles: true, composed: true }));
    return input.value;
  });

  // Probes: animation-frame timestamps and a click target outside the element.
  await page.evaluate(() => {
    window.__frames = [];
    window.__clicks = [];
    const loop = (t) => { window.__frames.push(t); if (!window.__stopFrames) requestAnimationFrame(loop); };
    requestAnimationFrame(loop);
    const b = document.createElement("button");
    b.id = "e2e-probe";
    b.textContent = "probe";
    b.style.cssText = "position:fixed;left:0;top:0;z-index:99999";
    b.addEventListener("click", (e) => window.__clicks.push(performance.now() - e.timeStamp));
    document.body.append(b);
  });

  await page.evaluate(() => document.querySelector("flatminima-sandbox").play());
  const m0 = await metrics(page);
  const t0 = Date.now();
  // Real mouse clicks (input events through the browser), without Playwright's
  // actionability waits, so each click measures only the page's own delay.
  const box = await page.locator("#e2e-probe").boundingBox();
  let sent = 0;
  while (Date.now() - t0 < 3_000) {
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    sent++;
    await page.waitForTimeout(100);
  }
  const m1 = await metrics(page);
  const seconds = (Date.now() - t0) / 1000;
  const { frames, clicks } = await page.evaluate(() => { window.__stopFrames = true; return { frames: window.__frames, clicks: window.__clicks }; });
  await page.evaluate(() => document.querySelector("flatminima-sandbox").pause());

  const gaps = frames.slice(1).map((t, i) => t - frames[i]).slice(2); // skip the first frames after injection
  const g = stats(gaps);
  const c = stats(clicks);
  const stepsPerS = (m1.left.step - m0.left.step) / seconds;
  console.log(`# speed=${maxSpeed}: ${Math.round(stepsPerS)} steps/s per side (${Math.round(stepsPerS * 32)} examples/s), ` +
    `${r1(g.n / seconds)} frames/s, frame gap median ${r1(g.median)} ms, p95 ${r1(g.p95)} ms, max ${r1(g.max)} ms; ` +
    `click delay median ${r1(c.median)} ms, max ${r1(c.max)} ms (${c.n} of ${sent} clicks handled); load average ${loadavg()[0].toFixed(1)}`);

  assert.ok(m1.left.step - m0.left.step > 100, `not training at full speed: ${m0.left.step} -> ${m1.left.step} steps in ${seconds} s`);
  assert.ok(g.n >= MIN_FRAMES_PER_S * seconds, `only ${g.n} animation frames in ${seconds} s`);
  assert.ok(g.p95 < P95_FRAME_GAP_MS, `95th percentile frame gap ${r1(g.p95)} ms >= ${P95_FRAME_GAP_MS} ms`);
  assert.ok(g.max < MAX_FRAME_GAP_MS, `longest frame gap ${r1(g.max)} ms >= ${MAX_FRAME_GAP_MS} ms`);
  assert.ok(c.n >= 5 && c.n >= sent - 1, `only ${c.n} of ${sent} clicks were handled`);
  assert.ok(c.max < MAX_CLICK_DELAY_MS, `a click waited ${r1(c.max)} ms for its handler`);

  // The page's own controls answer too: pause takes effect at once.
  await page.evaluate(() => document.querySelector("flatminima-sandbox").play());
  await page.waitForTimeout(300);
  const pause = page.locator("flatminima-sandbox").getByRole("button", { name: /^\W*pause\b/i }).first();
  const clickedAt = Date.now();
  await pause.click({ timeout: 2_000 });
  // The worker applies the pause with its next message: settled() waits for that.
  await page.evaluate(() => document.querySelector("flatminima-sandbox").settled());
  const clickMs = Date.now() - clickedAt;
  const p1 = await metrics(page);
  await page.waitForTimeout(300);
  const p2 = await metrics(page);
  assert.equal(p2.left.step, p1.left.step, "still training after clicking pause at full speed");
  console.log(`# pause button click round trip at full speed: ${clickMs} ms`);
  assert.deepEqual(await metricsProblems(page), []);
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
});
