// Lessons (www/lessons/): the index lists every lesson of the catalogue; each
// lesson loads, refuses to run before a prediction is committed, runs, and
// shows a check whose numbers are the ones its sandbox measured (the text is
// compared with el.metrics(), so a scripted text would fail). One lesson also
// runs "over many seeds" and at a phone's width has no horizontal scroll. A study
// lesson's check must quote a Kendall tau its grid study reported.

import { test } from "node:test";
import assert from "node:assert/strict";
import { useServerAndBrowser, newWatchedPage, poll } from "./harness.mjs";

const env = useServerAndBrowser();

async function lessonIds(page) {
  await page.goto(env.server.url + "lessons/", { waitUntil: "load" });
  await poll(() => page.evaluate(() => document.querySelectorAll("#lessons a").length > 1), { what: "the lesson list" });
  return page.evaluate(() => [...document.querySelectorAll("#lessons a")].map((a) => a.getAttribute("href").replace(".html", "")));
}

/** Commits the first choice, runs, and returns the check's text and each sandbox's metrics. */
async function runLesson(page, id) {
  await page.goto(`${env.server.url}lessons/${id}.html`, { waitUntil: "load" });
  const run = page.getByRole("button", { name: /^Run the / });
  await run.waitFor();
  assert.equal(await run.isDisabled(), true, `${id}: the run waits for a prediction`);
  // Keyboard only: focus the first choice, select it with Space, submit with Enter.
  await page.locator('input[name="prediction"]').first().focus();
  await page.keyboard.press("Space");
  await page.getByRole("button", { name: "Commit my prediction" }).press("Enter");
  assert.match(await page.locator(".committed").innerText(), /You predicted/);
  assert.equal(await run.isDisabled(), false, `${id}: committing enables the run`);
  await run.click();
  await poll(() => page.evaluate(() => document.querySelector(".check-text")?.textContent.length > 0),
    { ms: 120_000, every: 250, what: `${id}: the check text` });
  const check = await page.locator(".check-text").innerText();
  const metrics = await page.evaluate(() => [...document.querySelectorAll("flatminima-sandbox")].map((el) => el.metrics()));
  // A study lesson's numbers: every Kendall tau (and its interval) the grid study reported.
  const studied = await page.evaluate(() => (document.getElementById("lesson").lessonResults ?? [])
    .flatMap((r) => r.study?.stats?.evaluations ?? []).flatMap((ev) => ev.tau).flatMap((t) => [t.tau, t.lo, t.hi])
    .filter((x) => typeof x === "number").map((x) => x.toPrecision(3)));
  return { check, metrics, studied };
}

/** "57.3%" as the check writes a fraction. */
const pct = (x) => `${(100 * x).toFixed(1)}%`;

test("lessons: the index lists each lesson, and every lesson predicts, runs and checks with its own numbers", { timeout: 300_000 }, async () => {
  const { page, problems } = await newWatchedPage(env.browser.context);
  const ids = await lessonIds(page);
  assert.ok(ids.length >= 6, `lessons listed: ${ids}`);
  for (const id of ids) {
    const { check, metrics, studied } = await runLesson(page, id);
    if (!studied.length) for (const m of metrics) assert.ok(m.step > 0, `${id}: the sandbox trained (step ${m.step})`);
    // The check quotes measured numbers: an OOD or ID accuracy of a sandbox, or its lambda_max.
    const quoted = metrics.flatMap((m) => ["left", "right"].flatMap((s) => [
      pct(m[s].ood_acc), pct(m[s].id_acc), m[s].sharpness?.lambda_max?.toPrecision(3),
    ])).filter(Boolean).concat(studied);
    assert.ok(quoted.some((q) => check.includes(q)), `${id}: the check quotes a measured number; got:\n${check}\nmeasured: ${quoted}`);
    assert.match(check, /You predicted|diverged/, `${id}: the check answers the prediction`);
  }
  assert.deepEqual(problems, [], "console errors or page errors");
  await page.close();
});

test("lessons: over many seeds states an interval and the spread; a phone-sized page does not scroll sideways", { timeout: 180_000 }, async () => {
  const { page, problems } = await newWatchedPage(env.browser.context);
  await page.setViewportSize({ width: 375, height: 800 });
  await runLesson(page, "sgd-vs-sam");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no horizontal scroll at 375 px (overflow ${overflow} px)`);
  await page.getByRole("button", { name: /Run over \d+ seeds/ }).click();
  await poll(() => page.evaluate(() => /interval/.test(document.querySelector(".many-text")?.textContent ?? "")),
    { ms: 120_000, every: 500, what: "the many-seeds summary" });
  const text = await page.locator(".many-text").innerText();
  assert.match(text, /Over \*?\*?\d+ seeds|Over \d+ seeds/, text);
  assert.match(text, /95% interval \[[−+][\d.]+ points?, [−+][\d.]+ points?\]|95% interval \[/, text);
  assert.match(text, /sign test p = [\d.e-]+/, text);
  assert.match(text, /one draw of the data/, "it says the seeds share one data draw");
  assert.deepEqual(problems, [], "console errors or page errors");
  await page.close();
});
