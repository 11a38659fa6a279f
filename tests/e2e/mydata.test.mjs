// Your own data: a student places training points by clicking a decision panel
// (class chosen first), and the runs train on exactly those points (the run
// record's training set is them); OOD test points placed the same way become the
// run's OOD set (scored on, kept through a shift change); the points go out as
// CSV (a split column) and come back in a fresh element; a bad CSV line is named;
// clearing goes back to the data set.

import { test } from "node:test";
import assert from "node:assert/strict";
import { useServerAndBrowser, newWatchedPage, waitForSandbox } from "./harness.mjs";

const env = useServerAndBrowser();

async function openPage() {
  const ctx = await newWatchedPage(env.browser.context);
  await ctx.page.goto(env.server.url, { waitUntil: "load" });
  await waitForSandbox(ctx.page);
  await ctx.page.evaluate(() => document.querySelector("flatminima-sandbox").pause());
  return ctx;
}

/** The training set the runs use now, from their run record. */
const trainingSet = (page) => page.evaluate(async () => JSON.parse(await document.querySelector("flatminima-sandbox").exportRun()).data.train);

test("your own data: clicks place points of the chosen class, the runs train on them, CSV round trip", { timeout: 60_000 }, async () => {
  const { page, problems } = await openPage();
  const host = page.locator("flatminima-sandbox");
  await host.locator("summary", { hasText: "Your own data" }).click();
  await host.locator(".fm-mydata-add").click();
  assert.equal(await host.locator(".fm-mydata-add").getAttribute("aria-pressed"), "true");
  const canvas = host.locator('.fm-panel[data-side="left"] canvas.fm-boundary');
  const box = await canvas.boundingBox();
  // Three points of class 1 (the first choice) on the left, two of class 2 on the right of the plot.
  const clicks = [[0.3, 0.3, "0"], [0.35, 0.6, "0"], [0.3, 0.45, "0"], [0.7, 0.4, "1"], [0.65, 0.6, "1"]];
  for (const [i, [fx, fy, label]] of clicks.entries()) {
    await host.locator('select[name="mydata-class"]').selectOption({ value: label });
    await canvas.click({ position: { x: fx * box.width, y: fy * box.height } });
    await page.waitForFunction((n) => document.querySelector("flatminima-sandbox").myPoints().length === n, i + 1, { timeout: 10_000 });
  }
  const mine = await page.evaluate(() => document.querySelector("flatminima-sandbox").myPoints());
  assert.equal(mine.length, 5, `points placed: ${JSON.stringify(mine)}`);
  assert.deepEqual(mine.map((p) => p[2]), [0, 0, 0, 1, 1], "each with the class chosen when it was placed");
  assert.ok(mine[0][0] < 0 && mine[3][0] > 0, "left of the plot is negative x, right positive");
  assert.ok(mine[0][1] > mine[1][1], "higher on the screen is larger y");
  const train = await trainingSet(page);
  assert.deepEqual(train.points, mine.map((p) => [p[0], p[1]]), "the runs train on exactly these points");
  assert.deepEqual(train.labels, [0, 0, 0, 1, 1]);
  const m = await page.evaluate(() => document.querySelector("flatminima-sandbox").step(50));
  assert.ok(m.left.step === 50 && Number.isFinite(m.left.train_loss));

  // Two OOD test points (class 2 top left, class 1 bottom right: both on the "wrong" side of what was learned).
  await host.locator('select[name="mydata-split"]').selectOption("ood");
  for (const [i, [fx, fy, label]] of [[0.2, 0.2, "1"], [0.8, 0.8, "0"]].entries()) {
    await host.locator('select[name="mydata-class"]').selectOption({ value: label });
    await canvas.click({ position: { x: fx * box.width, y: fy * box.height } });
    await page.waitForFunction((n) => document.querySelector("flatminima-sandbox").myPoints().length === n, 6 + i, { timeout: 10_000 });
  }
  const all = await page.evaluate(() => document.querySelector("flatminima-sandbox").myPoints());
  assert.deepEqual(all.slice(0, 5), mine, "the training points stay");
  assert.deepEqual(all.slice(5).map((p) => [p[2], p[3]]), [[1, "ood"], [0, "ood"]]);
  const record = JSON.parse(await page.evaluate(() => document.querySelector("flatminima-sandbox").exportRun()));
  assert.deepEqual(record.data.train.points, train.points, "the training set is unchanged");
  assert.deepEqual(record.data.ood_test.points, all.slice(5).map((p) => [p[0], p[1]]), "the OOD set is the student's two points");
  assert.deepEqual(record.data.ood_test.labels, [1, 0]);
  assert.deepEqual(record.config.ood_points.labels, [1, 0], "the record's config carries them");
  const scored = await page.evaluate(() => document.querySelector("flatminima-sandbox").step(20));
  assert.ok([0, 0.5, 1].includes(scored.left.ood_acc), `OOD accuracy over two points: ${scored.left.ood_acc}`);
  // A new shift severity does not replace them.
  await page.evaluate(() => { const e = document.querySelector("flatminima-sandbox"); e.setAttribute("severity", "0.9"); return e.settled(); });
  assert.deepEqual(JSON.parse(await page.evaluate(() => document.querySelector("flatminima-sandbox").exportRun())).data.ood_test.points, record.data.ood_test.points);

  const csv = await page.evaluate(() => document.querySelector("flatminima-sandbox").pointsCsv());
  assert.match(csv, /^x,y,class,split\n/);
  assert.equal(csv.trim().split("\n").filter((l) => l.endsWith(",ood")).length, 2, csv);
  const ctx2 = await openPage();
  const back = await ctx2.page.evaluate(async (text) => {
    const el = document.querySelector("flatminima-sandbox");
    const rows = text.trim().split("\n").slice(1).map((l) => l.split(",")).map(([x, y, c, split]) => [Number(x), Number(y), Number(c), split]);
    return el.setPoints(rows);
  }, csv);
  assert.deepEqual(back, all, "the CSV brings back the same points, training and OOD");
  assert.deepEqual((await trainingSet(ctx2.page)).points, train.points);
  const record2 = JSON.parse(await ctx2.page.evaluate(() => document.querySelector("flatminima-sandbox").exportRun()));
  assert.deepEqual(record2.data.ood_test, record.data.ood_test);
  // The exported run record, imported into a third element, keeps the OOD points too.
  const ctx3 = await openPage();
  const imported = await ctx3.page.evaluate(async (text) => {
    const el = document.querySelector("flatminima-sandbox");
    await el.importRun(text);
    return JSON.parse(await el.exportRun()).data.ood_test;
  }, JSON.stringify(record2));
  assert.deepEqual(imported, record.data.ood_test);
  assert.deepEqual(ctx3.problems, []);
  await ctx3.page.close();

  // Through the file input: a bad line is named and the points in use stay.
  await ctx2.page.locator("flatminima-sandbox summary", { hasText: "Your own data" }).click();
  await ctx2.page.locator('flatminima-sandbox input[name="mydata-load"]').setInputFiles({ name: "bad.csv", mimeType: "text/csv", buffer: Buffer.from("x,y,class\n0.1,0.2,0\n0.3,oops,1\n") });
  await ctx2.page.waitForFunction(() => /line 3/.test(document.querySelector("flatminima-sandbox").shadowRoot.querySelector(".fm-mydata-out").textContent));
  assert.equal((await ctx2.page.evaluate(() => document.querySelector("flatminima-sandbox").myPoints())).length, 7);
  // A CSV file with the split column loads through the file input.
  await ctx2.page.locator('flatminima-sandbox input[name="mydata-load"]').setInputFiles({ name: "mine.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
  await ctx2.page.waitForFunction(() => /Loaded from mine.csv: 5 training points and 2 OOD test points/.test(document.querySelector("flatminima-sandbox").shadowRoot.querySelector(".fm-mydata-out").textContent));

  // Back to the data set's own points.
  await ctx2.page.evaluate(() => document.querySelector("flatminima-sandbox").setPoints([]));
  assert.ok((await trainingSet(ctx2.page)).points.length > 5, "the data set's points again");
  for (const ctx of [{ page, problems }, ctx2]) {
    assert.deepEqual(ctx.problems, [], "console errors or page errors");
    await ctx.page.close();
  }
});
