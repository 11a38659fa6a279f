// The rescaling and averaging lessons (www/lessons/rescaling.html, averaging.html):
// each takes a prediction by keyboard, trains, applies what the lesson is about
// through the element (Dinh's rescaling of SAM's solution; an ensemble of SGD
// networks beside the SWA average) and writes a check that quotes the numbers
// measured in this run: lambda_max before and after the rescaling with the
// unchanged accuracies; the OOD accuracy of the last weights, of the SWA average
// and of the ensemble. A scripted text could not contain them.

import { test } from "node:test";
import assert from "node:assert/strict";
import { useServerAndBrowser, newWatchedPage, poll } from "./harness.mjs";

const env = useServerAndBrowser();
const pct = (x) => `${(100 * x).toFixed(1)}%`;
const num = (x) => x.toPrecision(3);

async function runLesson(page, id, choice) {
  await page.goto(`${env.server.url}lessons/${id}.html`, { waitUntil: "load" });
  const run = page.getByRole("button", { name: /^Run the / });
  await run.waitFor();
  assert.equal(await run.isDisabled(), true, `${id}: the run waits for a prediction`);
  await page.locator(`input[name="prediction"][value="${choice}"]`).focus();
  await page.keyboard.press("Space");
  await page.getByRole("button", { name: "Commit my prediction" }).press("Enter");
  await run.press("Enter");
  await poll(() => page.evaluate(() => document.querySelector(".check-text")?.textContent.length > 0),
    { ms: 150_000, every: 250, what: `${id}: the check text` });
  const check = await page.locator(".check-text").innerText();
  const results = await page.evaluate(() => document.getElementById("lesson").lessonResults);
  return { check, results };
}

test("lesson: Dinh's rescaling quotes lambda_max before and after and the unchanged accuracies", { timeout: 200_000 }, async () => {
  const { page, problems } = await newWatchedPage(env.browser.context);
  const { check, results } = await runLesson(page, "rescaling", "only λmax changes");
  const r = results[0].extra.rescale;
  assert.equal(r.side, "right");
  assert.ok(r.max_logit_change < 1e-9, `the function did not change: ${r.max_logit_change}`);
  for (const k of ["train_acc", "id_acc", "ood_acc"]) assert.equal(r.after[k], r.before[k], k);
  assert.ok(check.includes(num(r.before.lambda_max)) && check.includes(num(r.after.lambda_max)), `lambda_max quoted:\n${check}`);
  assert.ok(check.includes(pct(r.before.ood_acc)), "the OOD accuracy quoted");
  assert.ok(check.includes(num(results[0].metrics.left.sharpness.lambda_max)), "SGD's lambda_max quoted");
  const changed = Math.abs(Math.log(r.after.lambda_max / r.before.lambda_max)) > Math.log(1.1);
  assert.match(check, changed ? /You predicted that/ : /You predicted "only λmax changes"; this run says "nothing changes"/);
  // The sandbox shows the same: the rescaled weights' measurement is the right side's newest.
  const m = await page.evaluate(() => document.querySelector("flatminima-sandbox").metrics());
  assert.equal(m.right.sharpness.lambda_max, r.after.lambda_max);
  assert.deepEqual(problems, [], "console errors or page errors");
  await page.close();
});

test("lesson: weight averaging and ensembles quotes the three solutions' OOD accuracy", { timeout: 200_000 }, async () => {
  const { page, problems } = await newWatchedPage(env.browser.context);
  const { check, results } = await runLesson(page, "averaging", "the ensemble");
  const m = results[0].metrics;
  const en = results[0].extra.ensemble;
  assert.equal(en.members, 5);
  assert.equal(m.left.average.kind, "SWA");
  assert.equal(m.left.average.step, m.left.step, "the average was measured at the last step");
  assert.equal(en.member_ood_acc[0], m.left.ood_acc, "member 0 is the left side itself");
  for (const x of [m.left.ood_acc, m.left.average.ood_acc, en.ood_acc, en.member_mean.ood_acc]) {
    assert.ok(check.includes(pct(x)), `${pct(x)} quoted:\n${check}`);
  }
  assert.ok(check.includes(num(m.left.average.sharpness.lambda_max)), "the average's lambda_max quoted");
  assert.match(check, /You predicted/);
  assert.deepEqual(problems, [], "console errors or page errors");
  await page.close();
});
