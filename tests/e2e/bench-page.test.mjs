// Smoke test of www/bench.html (what `node scripts/bench-browser.mjs` drives):
// it loads, its wasm exports exist, and one tiny run gives sane numbers. No
// timing is asserted (figures belong to the benchmark, not to tests).

import { test } from "node:test";
import assert from "node:assert/strict";
import { useServerAndBrowser, newWatchedPage, withTimeout } from "./harness.mjs";

const env = useServerAndBrowser();

test("bench.html: runBench() measures SGD, SAM and both boundaries", { timeout: 40_000 }, async () => {
  const { page, problems } = await newWatchedPage(env.browser.context);
  await page.goto(env.server.url + "bench.html", { waitUntil: "load" });
  await page.waitForFunction(() => typeof window.runBench === "function", null, { timeout: 15_000 });
  const r = await withTimeout(page.evaluate(() => window.runBench({ samples: 1, sampleMs: 50, warmup: 50, frames: 3 })), 30_000, "runBench");
  for (const side of ["sgd", "sam"]) {
    assert.ok(Number.isFinite(r[side].examples_per_s_median) && r[side].examples_per_s_median > 0, `${side}: ${JSON.stringify(r[side])}`);
  }
  assert.match(r.sgd.label, /^SGD/);
  assert.match(r.sam.label, /^SAM\(rho=[\d.]+\)\+SGD/);
  assert.ok(Number.isFinite(r.sam_sgd_cost_ratio), `ratio: ${r.sam_sgd_cost_ratio}`);
  assert.ok(r.boundary.ms_median > 0 && r.boundary.grid === 128);
  // A bad setting is an error, not a silent default.
  const err = await page.evaluate(async () => {
    const { benchTrain } = await import("./pkg-bench/flatminima.js");
    try { benchTrain(JSON.stringify({ lr: "fast" }), "left", 0, 1); return null; } catch (e) { return String(e && e.message || e); }
  });
  assert.match(err || "", /lr/);
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
});

test("bench.html: twoWorkers() trains each side in one worker and in two", { timeout: 40_000 }, async () => {
  const { page, problems } = await newWatchedPage(env.browser.context);
  await page.goto(env.server.url + "bench.html", { waitUntil: "load" });
  await page.waitForFunction(() => typeof window.twoWorkers === "function", null, { timeout: 15_000 });
  const r = await withTimeout(page.evaluate(() => window.twoWorkers({ ms: 100, configs: [{ name: "reference", settings: {}, steps: 50 }] })), 30_000, "twoWorkers");
  const [c] = r.configs;
  for (const how of ["one_worker", "two_workers"]) {
    for (const side of ["left", "right"]) assert.ok(c[how][side] > 0, `${how} ${side}: ${JSON.stringify(c)}`);
  }
  // One worker steps both sides in turns: the same count each.
  assert.equal(c.one_worker.left, c.one_worker.right);
  assert.ok(Number.isFinite(c.pair_speedup) && c.pair_speedup > 0);
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
});
