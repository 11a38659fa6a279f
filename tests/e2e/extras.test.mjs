// A side's other solutions in the page (src/web/sandbox/extras.rs): the weight
// average's metrics (the same numbers the run record's `average` has) and
// sharpness in the tables and its boundary in the panel; Dinh's rescaling (the
// function unchanged to rounding, lambda_max moved, the weights rescaled as
// defined, refused for tanh); an ensemble trained in the worker whose member 0
// is the side itself, shown in the table and the panel.

import { test } from "node:test";
import assert from "node:assert/strict";
import { useServerAndBrowser, newWatchedPage, waitForSandbox, poll } from "./harness.mjs";

const env = useServerAndBrowser();

async function openPage(query) {
  const ctx = await newWatchedPage(env.browser.context);
  await ctx.page.goto(env.server.url + query, { waitUntil: "load" });
  await waitForSandbox(ctx.page);
  // The page autoplays: back to step 0, paused.
  await ctx.page.evaluate(() => {
    const e = document.querySelector("flatminima-sandbox");
    e.pause();
    return e.reset();
  });
  return ctx;
}

const el = "flatminima-sandbox";
const text = (page, sel) => page.evaluate(([h, s]) => document.querySelector(h).shadowRoot.querySelector(s).textContent, [el, sel]);

test("weight average: its metrics, sharpness and boundary are shown", { timeout: 60_000 }, async () => {
  const { page, problems } = await openPage("?average=swa&average-start=20&steps=200&points=128");
  await page.evaluate(() => document.querySelector("flatminima-sandbox").step(100));
  const m = await poll(async () => {
    const m = await page.evaluate(() => document.querySelector("flatminima-sandbox").metrics());
    const a = m.left.average;
    return a && a.step === 100 && Number.isFinite(a.train_loss) && a.sharpness && Number.isFinite(a.sharpness.lambda_max) && m.right.average?.step === 100 ? m : null;
  }, { ms: 20_000, what: "the averages' metrics and sharpness at step 100" });
  assert.equal(m.left.average.kind, "SWA");
  assert.equal(m.left.average.n_averaged, 81, "steps 20..100 entered the average");
  // The run record's average (its own evaluation, sideAverageMetrics) has the same numbers.
  const record = JSON.parse(await page.evaluate(() => document.querySelector("flatminima-sandbox").exportRun()));
  for (const side of ["left", "right"]) {
    for (const k of ["train_loss", "train_acc", "id_acc", "ood_acc", "ood_loss"]) {
      assert.equal(m[side].average[k], record[side].average.metrics[k], `${side} ${k}`);
    }
  }
  assert.notEqual(m.left.average.train_loss, m.left.train_loss, "the average is another solution than the weights now");
  const head = await text(page, ".fm-metrics-table thead");
  assert.match(head, /Left: SWA average \(81 weights\)/);
  assert.match(await text(page, ".fm-sharp-table thead"), /Right: SWA average/);
  const cells = await page.evaluate((h) => [...document.querySelector(h).shadowRoot.querySelectorAll(".fm-metrics-table tbody tr")].map((r) => r.cells.length), el);
  assert.ok(cells.every((n) => n === 5), `every row has the two averages' columns: ${cells}`);
  // The left panel shows the average, chosen by keyboard.
  const show = page.locator(`${el} select[name="show-0"]`);
  await show.focus();
  await show.selectOption("average");
  await poll(async () => /SWA average:/.test(await text(page, '.fm-panel[data-side="left"] .fm-quick')), { what: "the panel's line names the average" });
  assert.match(await text(page, '.fm-panel[data-side="left"] .fm-quick'), new RegExp(`OOD ${(100 * m.left.average.ood_acc).toFixed(1)}%`));
  assert.deepEqual(problems, []);
  await page.close();
});

test("Dinh's rescaling: same function, different lambda_max; ReLU only", { timeout: 60_000 }, async () => {
  const { page, problems } = await openPage("?activation=relu&steps=300&points=128");
  const before = await page.evaluate(async () => {
    const e = document.querySelector("flatminima-sandbox");
    await e.step(150);
    return JSON.parse(await e.exportRun()).left.final_params;
  });
  // Through the button, by keyboard: layer 1 x 4.
  await page.locator(`${el} input[name="rescale-alpha"]`).fill("4");
  await page.locator(`${el} .fm-rescale-run`).press("Enter");
  const out = await poll(async () => {
    const t = await text(page, ".fm-extras-out");
    return /λ_max .* → /.test(t) ? t : null;
  }, { ms: 20_000, what: "the rescaling's sentence" });
  const after = await page.evaluate(async () => JSON.parse(await document.querySelector("flatminima-sandbox").exportRun()).left.final_params);
  // Layer 0 of the 2-16-16-2 net: 16 x 2 weights and 16 biases (x 4); layer 1's 16 x 16 weights (/ 4); its biases stay.
  for (let k = 0; k < 48; k++) assert.ok(Math.abs(after[k] - 4 * before[k]) <= 1e-15 * Math.abs(4 * before[k]), `param ${k}`);
  for (let k = 48; k < 48 + 256; k++) assert.ok(Math.abs(after[k] - before[k] / 4) <= 1e-15 * Math.abs(before[k]), `param ${k}`);
  for (let k = 48 + 256; k < after.length; k++) assert.equal(after[k], before[k], `param ${k}`);
  // The API's answer: the function is the same, lambda_max is not.
  const r = await page.evaluate(() => document.querySelector("flatminima-sandbox").rescale({ side: 0, layer: 0, alpha: 0.25 }));
  assert.ok(r.max_logit_change < 1e-9, `logits moved by ${r.max_logit_change}`);
  for (const k of ["train_acc", "id_acc", "ood_acc"]) assert.equal(r.after[k], r.before[k], k);
  assert.ok(Math.abs(r.after.train_loss - r.before.train_loss) < 1e-9);
  assert.ok(Math.abs(Math.log(r.after.lambda_max / r.before.lambda_max)) > Math.log(1.5), `lambda_max ${r.before.lambda_max} -> ${r.after.lambda_max}`);
  // The sentence is written from the first rescaling's numbers.
  assert.match(out, /layer 1 × 4, layer 2 ÷ 4/);
  assert.match(out, /\(the same\)/);
  assert.deepEqual(problems, []);
  await page.close();

  const tanh = await openPage("?activation=tanh");
  const button = tanh.page.locator(`${el} .fm-rescale-run`);
  await poll(async () => button.isDisabled(), { what: "the button disabled for tanh" });
  assert.match(await button.getAttribute("title"), /Only for ReLU/);
  const refused = await tanh.page.evaluate(() => document.querySelector("flatminima-sandbox").rescale({ side: 0 }).then(() => "", (e) => e.message));
  assert.match(refused, /only for ReLU/);
  assert.deepEqual(tanh.problems, []);
  await tanh.page.close();
});

test("ensemble: trained in the worker, member 0 is the side, shown in the table and the panel", { timeout: 90_000 }, async () => {
  const { page, problems } = await openPage("?steps=60&points=64");
  await page.locator(`${el} select[name="extra-side"]`).selectOption("1");
  await page.locator(`${el} input[name="ensemble-k"]`).fill("3");
  await page.locator(`${el} .fm-ensemble-run`).press("Enter");
  const out = await poll(async () => {
    const t = await text(page, ".fm-extras-out");
    return /ensemble of 3 members/.test(t) ? t : null;
  }, { ms: 60_000, what: "the ensemble's sentence" });
  const m = await page.evaluate(async () => {
    const e = document.querySelector("flatminima-sandbox");
    await e.step(60);
    return e.metrics();
  });
  const en = m.right.ensemble;
  assert.equal(en.members, 3);
  assert.equal(en.steps, 60);
  assert.equal(en.member_ood_acc[0], m.right.ood_acc, "member 0 is the right side itself");
  assert.ok([en.train_acc, en.id_acc, en.ood_acc].every((v) => v >= 0 && v <= 1));
  assert.match(out, new RegExp(`OOD accuracy ${(100 * en.ood_acc).toFixed(1)}%`));
  assert.match(await text(page, ".fm-metrics-table thead"), /Right: ensemble of 3/);
  assert.equal(await page.locator(`${el} select[name="show-1"]`).inputValue(), "ensemble");
  assert.match(await text(page, '.fm-panel[data-side="right"] .fm-quick'), /ensemble of 3:/);
  const bad = await page.evaluate(() => document.querySelector("flatminima-sandbox").ensemble({ side: 0, k: 999 }).then(() => "", (e) => e.message));
  assert.match(bad, /members/);
  assert.deepEqual(problems, []);
  await page.close();
});
