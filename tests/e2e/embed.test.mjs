// Embedding: a blog page with nothing but one module script and the element
// (tests/e2e/fixtures/embed.html) gets a working sandbox. The fixture is
// served from a nested path (/blog/2026/flat-minima.html) on the same server as
// www/, so the element must find its wasm relative to its own module, not to
// the page. Also: bad attributes on a freshly created element, two elements on
// one page, and a Rust panic becoming a visible error.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  ROOT, useServerAndBrowser, newWatchedPage, waitForSandbox, metrics, metricsProblems, sandboxText,
  canvasSnapshots, panelIndices, poll,
} from "./harness.mjs";

const FIXTURE = readFileSync(path.join(ROOT, "tests", "e2e", "fixtures", "embed.html"), "utf8");
const POST = "blog/2026/flat-minima.html";

const env = useServerAndBrowser();

async function openPost(html = FIXTURE) {
  const ctx = await newWatchedPage(env.browser.context);
  await ctx.page.route(env.server.url + POST, (route) => route.fulfill({ status: 200, contentType: "text/html; charset=utf-8", body: html }));
  await ctx.page.goto(env.server.url + POST, { waitUntil: "load" });
  return ctx;
}

async function finish({ page, problems }) {
  await page.waitForTimeout(100);
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
}

test("embed: one module script + <flatminima-sandbox dataset=\"xor\" autoplay> trains and draws", { timeout: 30_000 }, async () => {
  const ctx = await openPost();
  const { page } = ctx;
  await waitForSandbox(page);
  const m0 = await metrics(page);
  // autoplay: it trains without anyone calling play().
  const m1 = await poll(async () => { const m = await metrics(page); return m.left.step > m0.left.step + 20 && m.right.step > 20 && m; },
    { ms: 10_000, what: "autoplay to train" });
  assert.equal(m1.backend, "cpu");
  assert.deepEqual(await metricsProblems(page), []);
  const s1 = await canvasSnapshots(page);
  const panels = panelIndices(s1);
  assert.equal(panels.length, 2, `two panels expected: ${JSON.stringify(s1)}`);
  await page.waitForTimeout(500);
  const s2 = await canvasSnapshots(page);
  for (const i of panels) {
    assert.ok(!s2[i].blank, `panel ${i} is blank`);
    assert.notEqual(s2[i].hash, s1[i].hash, `panel ${i} does not update while training`);
  }
  const text = await sandboxText(page);
  assert.doesNotMatch(text, /\bdataset\b[^\n]*(unknown|invalid|must|expected)/i, "dataset=\"xor\" was rejected");
  // The element does not take over the page: the post's own text is untouched.
  assert.match(await page.evaluate(() => document.body.innerText), /Flat minima and distribution shift/);
  await page.evaluate(() => document.querySelector("flatminima-sandbox").pause());
  await finish(ctx);
});

test("embed: a created element with bad attributes shows messages naming them and runs on defaults", { timeout: 30_000 }, async () => {
  const ctx = await openPost();
  const { page } = ctx;
  await waitForSandbox(page);
  await page.evaluate(() => {
    const e = document.createElement("flatminima-sandbox");
    e.id = "bad";
    e.setAttribute("dataset", "moonz");
    e.setAttribute("rho", "abc");
    e.setAttribute("lr", "-1");
    e.setAttribute("backend", "warp");
    document.body.append(e);
  });
  await waitForSandbox(page, { selector: "#bad" });
  const text = await poll(async () => { const t = await sandboxText(page, "#bad"); return /\bdataset\b/i.test(t) && /\brho\b/i.test(t) && /\blr\b/i.test(t) && t; },
    { ms: 5_000, what: "messages naming dataset, rho and lr" });
  const lines = text.split("\n");
  assert.ok(lines.some((l) => /\bdataset\b/i.test(l) && /moonz/.test(l)), `no message names dataset and quotes "moonz":\n${text}`);
  assert.ok(lines.some((l) => /\brho\b/i.test(l) && /abc/.test(l)), `no message names rho and quotes "abc":\n${text}`);
  assert.ok(lines.some((l) => /\bbackend\b/i.test(l) && /warp/.test(l)), `no message names backend and quotes "warp":\n${text}`);
  const m = await metrics(page, "#bad");
  assert.deepEqual(await metricsProblems(page, "#bad"), []);
  assert.match(m.right.label, /rho=0\.2\b/, "rho falls back to 0.2");
  assert.equal(m.backend, "cpu", "an unknown backend falls back to auto, which is the CPU here");
  assert.equal(m.left.diverged, false);
  // Both elements live side by side, each with its own run.
  await page.evaluate(() => Promise.all([...document.querySelectorAll("flatminima-sandbox")].map((e) => e.pause())));
  const [a0, b0] = await page.evaluate(() => [...document.querySelectorAll("flatminima-sandbox")].map((e) => e.metrics()));
  await page.evaluate(() => document.querySelector("#bad").step(30));
  const [a1, b1] = await page.evaluate(() => [...document.querySelectorAll("flatminima-sandbox")].map((e) => e.metrics()));
  assert.equal(b1.left.step, b0.left.step + 30, "step(30) on the second element");
  assert.equal(a1.left.step, a0.left.step, "stepping the second element moved the first one");
  await finish(ctx);
});

test("embed: a Rust panic becomes a visible error in the element, not a frozen page", { timeout: 30_000 }, async (t) => {
  const ctx = await openPost();
  const { page, problems } = ctx;
  await waitForSandbox(page);
  // The element's test hook, if it has one: any method named like "panicForTests".
  const hook = await page.evaluate(() => {
    const e = document.querySelector("flatminima-sandbox");
    let proto = e;
    const names = new Set();
    while (proto && proto !== HTMLElement.prototype) { Object.getOwnPropertyNames(proto).forEach((n) => names.add(n)); proto = Object.getPrototypeOf(proto); }
    return [...names].find((n) => /panic/i.test(n)) || null;
  });
  if (!hook) {
    t.skip("the element has no panic test hook");
    console.log("# no panic hook on the element (e.g. element.panicForTests()): panic visibility not tested");
    await page.close();
    return;
  }
  await page.evaluate((name) => { try { document.querySelector("flatminima-sandbox")[name](); } catch { /* the element reports it */ } }, hook);
  const text = await poll(async () => { const t = await sandboxText(page); return /panic/i.test(t) && t; },
    { ms: 5_000, what: "a visible panic message" });
  assert.match(text, /panic/i);
  // The page still runs JavaScript and paints.
  const frames = await page.evaluate(() => new Promise((r) => { let n = 0; const f = () => (++n === 5 ? r(n) : requestAnimationFrame(f)); requestAnimationFrame(f); }));
  assert.equal(frames, 5);
  // The panic itself is expected to reach the console; nothing else may.
  const others = problems.filter((p) => !/panic|unreachable|RuntimeError/i.test(p));
  await page.close();
  assert.deepEqual(others, [], "console errors or page errors besides the panic");
});
