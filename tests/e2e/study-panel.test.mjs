// End-to-end test of the study panel (issue 11 item 7), as a student uses it:
// choose an axis, data draws and seeds, press Study, watch the progress, read
// the scatter (Kendall tau in its title), the paired-difference histogram and
// the verdict sentence; switch to matched loss and see the title change; a
// study of SAM with an absurd radius says that SAM underfits; Cancel stops one.
// Long main-thread tasks during a study are printed (a diagnostic, not asserted).
//
//   make build && node --test tests/e2e/study-panel.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { useServerAndBrowser, newWatchedPage, waitForSandbox, poll, withTimeout } from "./harness.mjs";

const env = useServerAndBrowser();
const el = "flatminima-sandbox";
const q = (sel) => `${el} ${sel}`; // playwright's CSS pierces the open shadow root

/** Opens index.html with `query`, waits for the sandbox, and starts counting long main-thread tasks. */
async function open(query) {
  const ctx = await newWatchedPage(env.browser.context);
  await ctx.page.addInitScript(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); })
      .observe({ type: "longtask", buffered: true });
  });
  await ctx.page.goto(env.server.url + "index.html" + query, { waitUntil: "load" });
  await waitForSandbox(ctx.page);
  await ctx.page.evaluate((sel) => document.querySelector(sel).pause(), el);
  return ctx;
}

/** Fills the panel: axis 0 (setting and values), draws, seeds, and the stop rule. */
async function fill(page, { axis, values, draws, seeds, target = null }) {
  if (axis) {
    await page.locator(q('select[name="grid-axis-0"]')).selectOption(axis);
    await page.locator(q('input[name="grid-values-0"]')).fill(values);
  }
  await page.locator(q('input[name="grid-draws"]')).fill(String(draws));
  await page.locator(q('input[name="grid-seeds"]')).fill(String(seeds));
  await page.locator(q('select[name="grid-stop"]')).selectOption(target === null ? "steps" : "loss");
  if (target !== null) await page.locator(q('input[name="grid-target"]')).fill(String(target));
}

const text = (page, sel) => page.locator(q(sel)).textContent();

/** Presses Study and waits for the results; returns the progress values seen and the long tasks meanwhile. */
async function runStudy(page, what) {
  await page.evaluate(() => { window.__longTasks.length = 0; });
  const t0 = Date.now();
  await page.locator(q(".fm-grid-run")).click();
  const seen = [];
  await poll(async () => {
    const p = await page.evaluate((sel) => {
      const bar = document.querySelector(sel).shadowRoot.querySelector(".fm-grid-progress");
      return bar.hidden ? null : bar.value;
    }, el);
    if (p !== null) seen.push(p);
    const results = await page.locator(q(".fm-grid-results")).isVisible();
    const status = await text(page, ".fm-grid-status");
    if (/^Study (stopped|not started)/.test(status)) throw new Error(`${what}: ${status}`);
    return results && p === null && status.includes("networks:");
  }, { ms: 120_000, every: 50, what });
  const longTasks = await page.evaluate(() => window.__longTasks.slice());
  console.log(`study panel: ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s; main-thread long tasks (> 50 ms) during it: ` +
    `${longTasks.length}${longTasks.length ? ` (longest ${Math.max(...longTasks).toFixed(0)} ms)` : ""}`);
  return { seen };
}

test("a student's study: grid, progress, scatter with tau, histogram, verdict, matched loss", { timeout: 150_000 }, async () => {
  const { page, problems } = await open("?steps=150&points=100");
  const { seen } = await runStudy(page, "the default form: 4 draws x 2 seeds, 150 steps");
  assert.ok(seen.length > 0, "the progress bar was never shown");
  assert.ok(seen.some((p) => p > 0 && p < 1), `no intermediate progress seen: ${seen.slice(0, 10)}`);
  // (The first run used the default form: no axis. Now with one.)
  await fill(page, { axis: "lr", values: "0.05,0.2", draws: 2, seeds: 2 });
  await runStudy(page, "2 lr x 2 draws x 2 seeds, 150 steps");
  const status = await text(page, ".fm-grid-status");
  assert.match(status, /16 networks: 2 cells × 2 data draws × 2 seeds × 2 sides, 150 steps each, in [\d.]+ s on the CPU \(\d workers?\)\.$/);

  const title = await text(page, ".fm-grid-scatter-title");
  assert.match(title, /^Kendall τ\(λ_max, OOD accuracy\) = [+−]?\d\.\d\d( \[95% CI [+−]?\d\.\d\d, [+−]?\d\.\d\d\]| \(no interval\)) · all runs · 16 runs$/);
  const marks = await page.evaluate((sel) => {
    const svg = document.querySelector(sel).shadowRoot.querySelector(".fm-grid-scatter-svg");
    return { circles: svg.querySelectorAll("circle").length, triangles: svg.querySelectorAll("path").length };
  }, el);
  assert.deepEqual(marks, { circles: 8, triangles: 8 }, "one marker per run, circles left, triangles right");
  assert.match(await text(page, ".fm-grid-hist-title"), /OOD accuracy per pair \(points\): mean [+−]?\d+\.\d\d \[95% CI [+−]?\d+\.\d\d, [+−]?\d+\.\d\d\] over 2 data draws/);
  const bars = await page.evaluate((sel) => document.querySelector(sel).shadowRoot.querySelectorAll(".fm-grid-hist-svg rect").length, el);
  assert.ok(bars >= 3, `the histogram has ${bars} rects (frame, band, bars)`);
  const verdict = await text(page, ".fm-grid-verdict");
  assert.match(verdict, /OOD accuracy/);
  assert.match(verdict, /[+−]\d+\.\d\d points \[95% CI/, `the verdict states measured numbers: ${verdict}`);
  assert.match(verdict, /τ = [+−]?\d\.\d\d/);

  // Colour by the axis: the legend names its values; the shapes still carry the side.
  await page.locator(q('select[name="grid-colour"]')).selectOption("lr");
  assert.match(await text(page, ".fm-grid-legend"), /lr=0\.05.*lr=0\.2/);
  // Matched loss (fixed steps: within train-loss bins): the title changes, and back.
  await page.locator(q('input[name="grid-matched"]')).check();
  const binned = await text(page, ".fm-grid-scatter-title");
  assert.notEqual(binned, title);
  assert.match(binned, /within train-loss bins/);
  await page.locator(q('select[name="grid-measure"]')).selectOption("adaptive_sharpness");
  assert.match(await text(page, ".fm-grid-scatter-title"), /^Kendall τ\(adaptive sharpness, OOD accuracy\)/);

  // The matched-loss stopping rule: the toggle keeps only the runs that reached the target.
  await fill(page, { axis: "lr", values: "0.05,0.2", draws: 2, seeds: 2, target: 0.3 });
  await runStudy(page, "matched-loss rule");
  assert.match(await text(page, ".fm-grid-status"), /until train loss 0\.3 \(at most 150 steps\)/);
  const matched = await text(page, ".fm-grid-scatter-title");
  assert.match(matched, /runs that reached train loss 0\.3/);
  await page.locator(q('input[name="grid-matched"]')).uncheck();
  assert.match(await text(page, ".fm-grid-scatter-title"), /· all runs · 16 runs$/);

  // Bad input: a message naming it, nothing frozen.
  await fill(page, { axis: "lr", values: "0.05,abc", draws: 2, seeds: 1 });
  await page.locator(q(".fm-grid-run")).click();
  await poll(async () => /lr=abc/.test(await text(page, ".fm-grid-status")), { ms: 10_000, what: "a message naming lr=abc" });
  assert.equal(await page.locator(q(".fm-grid-run")).isDisabled(), false);
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
});

test("SAM with an absurd radius: the verdict says SAM underfits; Cancel stops a study", { timeout: 120_000 }, async () => {
  const { page, problems } = await open("?steps=200&points=100&rho=1.5");
  await fill(page, { draws: 3, seeds: 2 });
  await runStudy(page, "rho 1.5, 3 draws x 2 seeds, 200 steps");
  const verdict = await text(page, ".fm-grid-verdict");
  assert.match(verdict, /SAM\S* underfits/, verdict);

  // A long study, cancelled: the promise of study() rejects as AbortError and the panel says so.
  await fill(page, { draws: 64, seeds: 4 });
  const aborted = page.evaluate((sel) => document.querySelector(sel).study({ dataSeeds: 64, seeds: 4 }).then(() => "finished", (e) => e.name), el);
  await poll(async () => (await page.locator(q(".fm-grid-cancel")).isVisible()), { what: "the Cancel button" });
  await page.locator(q(".fm-grid-cancel")).click();
  assert.equal(await withTimeout(aborted, 10_000, "the cancelled study to reject"), "AbortError");
  await poll(async () => /cancelled/.test(await text(page, ".fm-grid-status")), { what: "the panel to say cancelled" });
  // study()'s own checks.
  const bad = await page.evaluate((sel) => document.querySelector(sel).study({ dataSeeds: 0 }).then(() => null, (e) => `${e.name}: ${e.message}`), el);
  assert.match(bad, /^RangeError: dataSeeds/);
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
});

test("a grid study dealt over three workers (or as many as it has units) gives the one-worker study's runs and statistics", { timeout: 120_000 }, async () => {
  const { page, problems } = await open("?steps=100&points=64&batch-size=16");
  const ask = (options) => withTimeout(page.evaluate(([sel, options]) =>
    document.querySelector(sel).study(options), [el, options]), 60_000, `the study on ${options.workers} workers`);
  const study = (workers) => ask({ axes: "lr=0.05,0.3", dataSeeds: 3, seeds: 2, workers });
  const one = await study(1);
  const three = await study(3);
  assert.equal(one.workers, 1);
  assert.equal(three.workers, 3, "the element's worker and two helpers");
  assert.equal(three.runs.length, 2 * 3 * 2 * 2, "cells x draws x seeds x sides");
  // Every unit delivered once, and the helpers (two units dealt to each at the start) delivered some.
  assert.deepEqual([one.units_by_worker, one.unit_copies], [[6], 0]);
  assert.equal(three.units_by_worker.length, 3);
  assert.equal(three.units_by_worker.reduce((a, b) => a + b), 6, JSON.stringify(three.units_by_worker));
  assert.ok(three.units_by_worker[1] + three.units_by_worker[2] >= 2, JSON.stringify(three.units_by_worker));
  // Everything but the timings and who did what is the same, bit for bit.
  const strip = ({ ms, longest_piece_ms, helper_longest_piece_ms, workers, units_by_worker, unit_copies, ...rest }) => JSON.stringify(rest);
  assert.equal(strip(three), strip(one));
  // Two (cell, draw) units on eight workers asked for: two workers, the same study as one's.
  const capped = await ask({ dataSeeds: 2, seeds: 2, workers: 8 });
  assert.equal(capped.workers, 2, "no more workers than units");
  assert.equal(strip(capped), strip(await ask({ dataSeeds: 2, seeds: 2, workers: 1 })));
  const bad = await page.evaluate((sel) => document.querySelector(sel).study({ dataSeeds: 2, workers: 0 }).then(() => null, (e) => `${e.name}: ${e.message}`), el);
  assert.match(bad, /^RangeError: workers: expected a whole number from 1 to 8/);
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
});

test("a study pressed on a playing page: the pair keeps training and the landscape keeps refining while it runs", { timeout: 120_000 }, async () => {
  // Not paused: the element's worker trains the pair, draws and refines the landscape, and
  // trains its share of the study's units. The study works flat out there, so the views keep
  // to their share of the worker's time (VIEWS_SHARE_FLAT_OUT): slower, never stopped.
  const { page, problems } = await newWatchedPage(env.browser.context);
  await page.goto(env.server.url + "index.html?steps=1500&backend=cpu", { waitUntil: "load" });
  await waitForSandbox(page);
  const seen = await withTimeout(page.evaluate(async (sel) => {
    const sandbox = document.querySelector(sel);
    // A first small study loads the study module, so that the one watched below works from its
    // first tick (while the module loads, no study runs and the views are free).
    await sandbox.study({ dataSeeds: 1, seeds: 1 });
    const landscapes = new Set();
    const steps = [];
    const look = () => {
      const l = sandbox.landscape();
      if (l) landscapes.add(JSON.stringify([l.progress, l.left?.step, l.right?.step]));
      steps.push(sandbox.metrics()?.step ?? 0);
    };
    const timer = setInterval(look, 100);
    look();
    const result = await sandbox.study({ dataSeeds: 8, seeds: 2 });
    clearInterval(timer);
    return { landscapes: landscapes.size, polls: steps.length, steps, runs: result.runs.length, units: result.units_by_worker };
  }, el), 90_000, "the study on a playing page");
  console.log(`study on a playing page: ${seen.landscapes} landscape states in ${seen.polls} looks, pair steps ${seen.steps[0]} -> ${seen.steps.at(-1)} while it ran; units delivered ${seen.units.join(" + ")}`);
  assert.equal(seen.runs, 8 * 2 * 2);
  assert.ok(seen.steps.at(-1) > seen.steps[0], `the pair did not train during the study: ${seen.steps[0]} -> ${seen.steps.at(-1)}`);
  // The landscape changes at most once per redraw (150 ms), so at most about 2 looks in 3; with
  // its share of the time it changed at 14-16 of 25 looks here, starved at 1-2 of 25.
  assert.ok(seen.landscapes >= Math.max(3, 0.2 * seen.polls), `the landscape hardly changed while the study ran: ${seen.landscapes} states in ${seen.polls} looks`);
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
});
