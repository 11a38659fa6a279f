// Export and import: the run record a page exports, imported into a fresh
// element and trained for the same steps, gives the same run bit for bit; a
// record written by the CLI (tests/e2e/fixtures/cli-run.json, `flatminima train
// --set steps=150 --set points=64 --set seed=7 --set dataset=xor --out ...`)
// does too, in wasm (so native and browser agree). Also: the curves as CSV, the
// pictures as one PNG, the equivalent command line, and a file that is not a
// run record refused with a message.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { ROOT, useServerAndBrowser, newWatchedPage, waitForSandbox, sandboxText } from "./harness.mjs";

const env = useServerAndBrowser();
const CLI_RECORD = readFileSync(path.join(ROOT, "tests", "e2e", "fixtures", "cli-run.json"), "utf8");

async function openPage(query = "") {
  const ctx = await newWatchedPage(env.browser.context);
  await ctx.page.goto(env.server.url + query, { waitUntil: "load" });
  await waitForSandbox(ctx.page);
  return ctx;
}

/** Imports `record` into the page's element, trains it to the record's step, exports again. */
function replay(page, record) {
  return page.evaluate(async (text) => {
    const el = document.querySelector("flatminima-sandbox");
    const problems = await el.importRun(text);
    const steps = JSON.parse(text).left.step;
    await el.step(steps);
    return { problems, again: JSON.parse(await el.exportRun()), query: el.settingsQuery() };
  }, record);
}

function sameRun(a, b) {
  for (const side of ["left", "right"]) {
    assert.equal(b[side].step, a[side].step, `${side}: steps`);
    assert.deepEqual(b[side].final_params, a[side].final_params, `${side}: final parameters bit for bit`);
    assert.deepEqual(b[side].history, a[side].history, `${side}: the logged metrics`);
  }
  assert.deepEqual(b.initial_params, a.initial_params);
  assert.deepEqual(b.data.train, a.data.train, "the training points");
}

test("export/import: a page's run record replays bit for bit in a fresh element", { timeout: 60_000 }, async () => {
  const first = await openPage("?dataset=spirals&points=120&rho=0.1");
  const exported = await first.page.evaluate(async () => {
    const el = document.querySelector("flatminima-sandbox");
    await el.pause(); // the page autoplays: hold it, so the exports below show the same run
    await el.step(250);
    const csv = await el.exportCurves();
    const png = await el.picturesPng();
    return { record: await el.exportRun(), csv, png: { type: png.type, size: png.size }, cli: el.cliCommand() };
  });
  const record = JSON.parse(exported.record);
  assert.equal(record.format, "flatminima-run-record");
  assert.match(record.settings, /dataset=spirals/);
  const rows = exported.csv.trim().split("\n");
  assert.match(rows[0], /^side,label,step,lr,train_loss/);
  assert.equal(rows.length - 1, record.left.history.length + record.right.history.length, "a CSV row per logged point and side");
  assert.equal(exported.png.type, "image/png");
  assert.ok(exported.png.size > 10_000, `the pictures PNG has content (${exported.png.size} bytes)`);
  assert.match(exported.cli, /^flatminima compare( --set [a-z-]+=\S+)+$/);
  assert.match(exported.cli, /--set dataset=spirals/);

  const second = await openPage();
  const { problems, again, query } = await replay(second.page, exported.record);
  assert.deepEqual(problems, [], "everything carried over");
  assert.match(query, /dataset=spirals/, "the record's settings became the element's");
  sameRun(record, again);
  for (const ctx of [first, second]) {
    assert.deepEqual(ctx.problems, [], "console errors or page errors");
    await ctx.page.close();
  }
});

test("export/import: a record written by the CLI replays bit for bit in the browser, and the page writes the same record", { timeout: 60_000 }, async () => {
  const cli = JSON.parse(CLI_RECORD);
  const ctx = await openPage();
  const { problems, again } = await replay(ctx.page, CLI_RECORD);
  assert.deepEqual(problems, [], "the CLI's config is expressible as settings");
  sameRun(cli, again);
  // The page assembles its record in the worker (crates/core/src/record.rs is the schema):
  // the same settings trained in the page give the CLI's record, field by field.
  const own = await ctx.page.evaluate(async (settings) => {
    const el = document.querySelector("flatminima-sandbox");
    await el.clearPinned();
    for (const [name, value] of new URLSearchParams(settings)) el.setAttribute(name, value);
    await el.reset();
    await el.step(150);
    return JSON.parse(await el.exportRun());
  }, cli.settings);
  assert.deepEqual({ ...own, generator: "" }, { ...cli, generator: "" }, "the page's run record is the CLI's");
  assert.deepEqual(ctx.problems, [], "console errors or page errors");
  await ctx.page.close();
});

test("export/import: a file that is not a run record is refused by name, and the run goes on", { timeout: 30_000 }, async () => {
  const { page, problems } = await openPage();
  const errors = await page.evaluate(async () => {
    const el = document.querySelector("flatminima-sandbox");
    const out = [];
    for (const text of ["{oops", '{"format":"something-else"}', '{"format":"flatminima-run-record","settings":"lr=0.1"}']) {
      try { await el.importRun(text); out.push("accepted"); } catch (err) { out.push(err.message); }
    }
    await el.step(10);
    return out;
  });
  assert.match(errors[0], /not a run record: the file is not JSON/);
  assert.match(errors[1], /format is "something-else"/);
  assert.match(errors[2], /initial_params or data.train is missing/);
  assert.doesNotMatch(await sandboxText(page), /panicked|RuntimeError/);
  assert.deepEqual(problems, [], "console errors or page errors");
  await page.close();
});
