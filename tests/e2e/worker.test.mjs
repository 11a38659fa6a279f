// The page in workers: every <flatminima-sandbox> computes in a Web Worker of
// its own. Three sandboxes on one blog page train side by side; a panic in one
// shows its message in that element while the others train on; elements that
// leave the page take their workers with them (and an element only moved keeps
// its run).

import { test } from "node:test";
import assert from "node:assert/strict";
import { useServerAndBrowser, newWatchedPage, waitForSandbox, metrics, sandboxText, poll } from "./harness.mjs";

const env = useServerAndBrowser();

const POST = "blog/three-sandboxes.html";
const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>
<flatminima-sandbox id="a" dataset="moons" landscape="off" autoplay></flatminima-sandbox>
<flatminima-sandbox id="b" dataset="xor" landscape="off" autoplay></flatminima-sandbox>
<flatminima-sandbox id="c" dataset="circles" landscape="off" autoplay></flatminima-sandbox>
<script type="module" src="/flatminima-sandbox.min.js"></script></body></html>`;

async function openPost() {
  const ctx = await newWatchedPage(env.browser.context);
  // Requests for the wasm module, from the page and its workers (serve.py forbids caching,
  // so every fetch of it is a request).
  const wasmFetches = [];
  ctx.page.context().on("request", (r) => { if (r.url().endsWith("/pkg/flatminima_bg.wasm")) wasmFetches.push(r.url()); });
  await ctx.page.route(env.server.url + POST, (route) => route.fulfill({ status: 200, contentType: "text/html; charset=utf-8", body: PAGE }));
  await ctx.page.goto(env.server.url + POST, { waitUntil: "load" });
  for (const id of ["#a", "#b", "#c"]) await waitForSandbox(ctx.page, { selector: id });
  return { ...ctx, wasmFetches };
}

const steps = async (page) => Object.fromEntries(await Promise.all(["a", "b", "c"].map(async (id) => [id, (await metrics(page, `#${id}`)).left.step])));

test("three sandboxes train in three workers; a panic in one leaves the others running", { timeout: 40_000 }, async () => {
  const { page, problems, wasmFetches } = await openPost();
  assert.equal(page.workers().length, 3, "one worker per element");
  assert.equal(wasmFetches.length, 1, "the three workers share one download of the module");
  const s0 = await steps(page);
  const s1 = await poll(async () => { const s = await steps(page); return s.a > s0.a + 20 && s.b > s0.b + 20 && s.c > s0.c + 20 && s; },
    { ms: 10_000, what: "all three sandboxes to train" });

  await page.evaluate(() => document.querySelector("#b").panicForTests());
  const text = await poll(async () => { const t = await sandboxText(page, "#b"); return /panic/i.test(t) && t; },
    { ms: 5_000, what: "the panic message in the element that panicked" });
  assert.match(text, /deliberate panic/);
  for (const id of ["#a", "#c"]) assert.doesNotMatch(await sandboxText(page, id), /panic|crashed/i, `${id} shows another element's crash`);
  const s2 = await poll(async () => { const s = await steps(page); return s.a > s1.a + 50 && s.c > s1.c + 50 && s; },
    { ms: 10_000, what: "the other two to train on" });
  assert.ok(s2.a > s1.a && s2.c > s1.c);
  // The crashed element's buttons are off; its last metrics stay readable.
  assert.ok(await page.evaluate(() => document.querySelector("#b").shadowRoot.querySelector(".fm-play").disabled));
  await page.evaluate(() => Promise.all(["#a", "#c"].map((id) => document.querySelector(id).pause())));
  await page.close();
  // The panic reaches the console (console_error_panic_hook); nothing else may.
  assert.deepEqual(problems.filter((p) => !/panic|unreachable|RuntimeError/i.test(p)), [], "console errors or page errors besides the panic");
});

test("elements that leave the page end their workers; a moved element keeps its run", { timeout: 40_000 }, async () => {
  const { page, problems } = await openPost();
  await page.evaluate(() => Promise.all([...document.querySelectorAll("flatminima-sandbox")].map((e) => e.pause())));
  // Moving an element (out and back in within one task) keeps its worker and its run.
  const moved = await page.evaluate(async () => {
    const a = document.querySelector("#a");
    const before = (await a.step(7)).left.step;
    document.body.append(a);
    return { before, after: (await a.settled()).left.step };
  });
  assert.equal(moved.after, moved.before, "a moved element lost its run");
  assert.equal(page.workers().length, 3);

  // 20 elements added and removed: no worker left behind.
  await page.evaluate(async () => {
    const added = [];
    for (let i = 0; i < 20; i++) {
      const e = document.createElement("flatminima-sandbox");
      e.setAttribute("landscape", "off");
      e.setAttribute("seed", String(i + 2));
      document.body.append(e);
      added.push(e);
    }
    await Promise.all(added.map((e) => e.settled()));
    for (const e of added) e.remove();
  });
  const left = await poll(async () => page.workers().length === 3 && 3, { ms: 5_000, what: "the removed elements' workers to end" });
  assert.equal(left, 3);
  // A removed element's promises reject instead of hanging; the others still answer.
  const answer = await page.evaluate(async () => {
    const e = document.createElement("flatminima-sandbox");
    document.body.append(e);
    const pending = e.step(100_000);
    await new Promise((r) => setTimeout(r, 50));
    e.remove();
    return pending.then(() => "resolved", (err) => err.name);
  });
  assert.match(answer, /AbortError|resolved/);
  assert.ok((await page.evaluate(() => document.querySelector("#c").step(3))).left.step >= 3);
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
});
