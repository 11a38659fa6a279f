// End-to-end tests of www/index.html, the student page: play, restart on a
// new optimiser, divergence, invalid attributes, the shift severity slider,
// URL state, and no console errors anywhere.
//
//   make build && node --test tests/e2e/page.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  useServerAndBrowser, newWatchedPage, waitForSandbox, metrics, metricsProblems, sandboxText,
  canvasSnapshots, panelIndices, poll, controlValue, setControl, button, newLines,
} from "./harness.mjs";

const env = useServerAndBrowser();

/** Opens index.html (plus a query) and waits for the sandbox to report metrics. */
async function open(query = "") {
  const { page, problems } = await newWatchedPage(env.browser.context);
  await page.goto(env.server.url + "index.html" + query, { waitUntil: "load" });
  await waitForSandbox(page);
  return { page, problems };
}

/** Fails on any console error or page error seen by `page`, then closes it. */
async function finish({ page, problems }) {
  await page.waitForTimeout(100); // let late errors from the last frame arrive
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
}

const el = "flatminima-sandbox";
const call = (page, method, ...args) =>
  page.evaluate(([sel, m, a]) => { const r = document.querySelector(sel)[m](...a); return r === undefined ? null : r; }, [el, method, args]);

test("(a) play: both panels draw and keep changing, steps increase, losses change", { timeout: 30_000 }, async () => {
  const ctx = await open();
  const { page } = ctx;
  await call(page, "pause");
  const m0 = await metrics(page);
  assert.equal(m0.backend, "cpu", "no WebGPU in this browser: metrics().backend must say cpu");
  const before = await canvasSnapshots(page);
  const panels = panelIndices(before);
  assert.equal(panels.length, 2, `expected two decision-boundary panels, found canvases ${JSON.stringify(before)}`);

  await button(page, /^\W*play\b/i).click();
  const m1 = await poll(async () => { const m = await metrics(page); return m.left.step >= m0.left.step + 20 && m.right.step >= m0.right.step + 20 && m; },
    { ms: 10_000, what: "both sides to take 20 steps after pressing play" });
  await page.waitForTimeout(300);
  const s1 = await canvasSnapshots(page);
  await poll(async () => { const m = await metrics(page); return m.left.step > m1.left.step + 50 && m; },
    { ms: 10_000, what: "training to go on" });
  await page.waitForTimeout(600);
  const m2 = await metrics(page);
  const s2 = await canvasSnapshots(page);

  for (const [k, side] of [[0, "left"], [1, "right"]]) {
    const i = panels[k];
    assert.ok(!s2[i].blank && s2[i].distinct > 4, `${side} panel is blank: ${JSON.stringify(s2[i])}`);
    assert.notEqual(s1[i].hash, s2[i].hash, `${side} panel did not change while training (${m1.left.step} -> ${m2.left.step} steps)`);
    assert.ok(m2[side].step > m1[side].step && m1[side].step > m0[side].step, `${side} steps did not increase: ${m0[side].step}, ${m1[side].step}, ${m2[side].step}`);
    assert.notEqual(m2[side].train_loss, m0[side].train_loss, `${side} train loss did not change`);
    assert.notEqual(m2[side].ood_loss, m0[side].ood_loss, `${side} OOD loss did not change`);
    assert.equal(m2[side].diverged, false);
  }
  assert.notEqual(s2[panels[0]].hash, s2[panels[1]].hash, "the SGD and SAM panels are pixel-identical");
  assert.notEqual(m2.left.train_loss, m2.right.train_loss, "SGD and SAM give the same loss");
  assert.deepEqual(await metricsProblems(page), []);

  // Pause stops training.
  await button(page, /^\W*pause\b/i).click();
  await page.waitForTimeout(100);
  const p1 = await metrics(page);
  await page.waitForTimeout(400);
  const p2 = await metrics(page);
  assert.equal(p2.left.step, p1.left.step, "still training after pause");
  await finish(ctx);
});

test("(b) a new optimiser restarts the run: step back to 0, label changes", { timeout: 30_000 }, async () => {
  const ctx = await open();
  const { page } = ctx;
  await call(page, "pause");
  await call(page, "reset");
  assert.equal((await metrics(page)).left.step, 0, "reset() goes back to step 0");
  await call(page, "step", 200);
  const m0 = await metrics(page);
  assert.equal(m0.left.step, 200, "step(200) after reset() should reach step 200");
  assert.equal(m0.right.step, 200);

  // Through the control, as a student would.
  await setControl(page, "optimizer", "adam");
  const m1 = await poll(async () => { const m = await metrics(page); return m.left.label !== m0.left.label && m; },
    { ms: 5_000, what: "the left label to change after choosing Adam" });
  assert.match(m1.left.label, /adam/i);
  assert.match(m1.right.label, /adam/i, "the base optimiser applies to both sides");
  assert.ok(m1.left.step <= 5 && m1.right.step <= 5, `the run did not restart: steps ${m1.left.step}, ${m1.right.step}`);

  // Through the attribute, as an embedding page would.
  await call(page, "step", 100);
  await page.evaluate((sel) => document.querySelector(sel).setAttribute("left", "sam"), el);
  const m2 = await poll(async () => { const m = await metrics(page); return m.left.label !== m1.left.label && m; },
    { ms: 5_000, what: "the left label to change after left=\"sam\"" });
  assert.match(m2.left.label, /sam/i);
  assert.ok(m2.left.step <= 5, `the run did not restart after an attribute change: step ${m2.left.step}`);
  await finish(ctx);
});

test("(c) lr=50 diverges: message on that side, diverged flag, no NaN in metrics", { timeout: 30_000 }, async () => {
  const ctx = await open("?lr=50");
  const { page } = ctx;
  await call(page, "play");
  const m = await poll(async () => { const x = await metrics(page); return x.left.diverged && x; },
    { ms: 10_000, what: "metrics().left.diverged with lr=50" });
  assert.equal(m.left.diverged, true);
  assert.deepEqual(await metricsProblems(page), [], "metrics() after divergence");

  const text = await poll(async () => { const t = await sandboxText(page); return /Diverged at step \d+/.test(t) && t; },
    { ms: 5_000, what: "a visible \"Diverged at step N\" message" });
  const shown = [...text.matchAll(/Diverged at step (\d+)/g)].map((x) => Number(x[1]));
  const diverged = ["left", "right"].filter((s) => m[s].diverged);
  assert.ok(shown.length >= diverged.length, `${diverged.length} side(s) diverged but ${shown.length} message(s) shown`);
  if (typeof m.left.diverged_step === "number") assert.ok(shown.includes(m.left.diverged_step), `message steps ${shown} vs left.diverged_step ${m.left.diverged_step}`);

  // The left side's message sits over the left panel (horizontally).
  const geometry = await page.evaluate((sel) => {
    const boxes = [];
    const walk = (root) => {
      for (const node of root.querySelectorAll("*")) {
        if (node.shadowRoot) walk(node.shadowRoot);
        const own = [...node.childNodes].filter((c) => c.nodeType === 3).map((c) => c.textContent).join("");
        if (/Diverged at step/.test(own)) { const r = node.getBoundingClientRect(); if (r.width > 0 && r.height > 0) boxes.push({ x: r.left, w: r.width }); }
      }
    };
    const host = document.querySelector(sel);
    if (host.shadowRoot) walk(host.shadowRoot);
    walk(host);
    return boxes;
  }, el);
  const snaps = await canvasSnapshots(page);
  const panelBoxes = await page.evaluate(([sel, idx]) => {
    const found = [];
    const collect = (root) => { for (const n of root.querySelectorAll("*")) { if (n.tagName === "CANVAS") found.push(n); if (n.shadowRoot) collect(n.shadowRoot); } };
    const host = document.querySelector(sel);
    if (host.shadowRoot) collect(host.shadowRoot);
    collect(host);
    return idx.map((i) => { const r = found[i].getBoundingClientRect(); return { x: r.left, w: r.width }; });
  }, [el, panelIndices(snaps)]);
  const [leftPanel, rightPanel] = panelBoxes.sort((a, b) => a.x - b.x);
  const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w;
  assert.ok(geometry.some((g) => overlaps(g, leftPanel)), `no divergence message over the left panel: messages ${JSON.stringify(geometry)}, panels ${JSON.stringify(panelBoxes)}`);
  // Read again: the right side (SAM at lr 50) may diverge after `m` was taken, before the geometry.
  const now = await metrics(page);
  if (!now.right.diverged) assert.ok(!geometry.some((g) => overlaps(g, rightPanel) && !overlaps(g, leftPanel)), "a divergence message over the right panel, which did not diverge");

  // A diverged side stops; the page does not freeze.
  const a = await metrics(page);
  await page.waitForTimeout(300);
  const b = await metrics(page);
  assert.equal(b.left.step, a.left.step, "a diverged side keeps stepping");
  await call(page, "pause");
  await finish(ctx);
});

test("(d) invalid attributes: a readable message naming the setting, default used", { timeout: 30_000 }, async () => {
  const ctx = await open();
  const { page } = ctx;
  await call(page, "pause");
  const t0 = await sandboxText(page);
  await page.evaluate((sel) => document.querySelector(sel).setAttribute("rho", "abc"), el);
  const t1 = await poll(async () => { const t = await sandboxText(page); return newLines(t0, t).some((l) => /\brho\b/i.test(l)) && t; },
    { ms: 5_000, what: "a new message naming rho after rho=\"abc\"" });
  const rhoLines = newLines(t0, t1).filter((l) => /\brho\b/i.test(l));
  assert.ok(rhoLines.length > 0);
  let m = await metrics(page);
  assert.deepEqual(await metricsProblems(page), []);
  assert.match(m.right.label, /rho=0\.2\b/, `rho should fall back to its default 0.2: ${m.right.label}`);

  await page.evaluate((sel) => document.querySelector(sel).setAttribute("dataset", "moonz"), el);
  const t2 = await poll(async () => { const t = await sandboxText(page); return newLines(t0, t).some((l) => /\bdataset\b/i.test(l)) && t; },
    { ms: 5_000, what: "a new message naming dataset after dataset=\"moonz\"" });
  assert.ok(newLines(t0, t2).some((l) => /\bdataset\b/i.test(l) && /moonz/.test(l)), `the dataset message should quote the bad value: ${newLines(t0, t2)}`);
  const before = (await metrics(page)).left.step;
  await call(page, "step", 50);
  m = await metrics(page);
  assert.deepEqual(await metricsProblems(page), []);
  assert.equal(m.left.step, before + 50, "the sandbox still trains with the defaults");
  assert.ok(m.left.train_loss > 0 && m.left.train_acc > 0);
  const snaps = await canvasSnapshots(page);
  for (const i of panelIndices(snaps)) assert.ok(!snaps[i].blank, "a panel went blank after an invalid attribute");

  // Valid values clear the messages.
  await page.evaluate((sel) => { const e = document.querySelector(sel); e.setAttribute("rho", "0.05"); e.setAttribute("dataset", "circles"); }, el);
  await poll(async () => { const t = await sandboxText(page); return !newLines(t0, t).some((l) => /moonz|abc/.test(l)); },
    { ms: 5_000, what: "the messages to go away once the values are valid" });
  m = await metrics(page);
  assert.match(m.right.label, /rho=0\.05\b/);
  await finish(ctx);
});

test("(e) the severity slider moves the OOD points and changes OOD accuracy", { timeout: 30_000 }, async () => {
  const ctx = await open("?shift=rotate");
  const { page } = ctx;
  await call(page, "pause");
  await call(page, "reset");
  // The OOD points must be on: a toggle named like "show OOD" if the page has one.
  for (const cb of await page.locator(el).getByRole("checkbox", { name: /ood/i }).all()) await cb.check();

  await setControl(page, "severity", "0");
  await page.waitForTimeout(300);
  const panels = panelIndices(await canvasSnapshots(page));
  const a = await canvasSnapshots(page);
  await setControl(page, "severity", "1");
  await poll(async () => { const s = await canvasSnapshots(page); return s[panels[0]].hash !== a[panels[0]].hash; },
    { ms: 5_000, what: "the left panel to change when severity goes 0 -> 1" });
  const b = await canvasSnapshots(page);
  assert.notEqual(b[panels[1]].hash, a[panels[1]].hash, "the right panel did not change when severity went 0 -> 1");
  assert.equal(await controlValue(page, "severity"), "1");

  // After training, OOD accuracy depends on the severity; ID accuracy does not.
  await setControl(page, "severity", "0");
  await poll(async () => (await controlValue(page, "severity")) === "0", { ms: 2_000, what: "severity back to 0" });
  await call(page, "step", 400);
  const m0 = await metrics(page);
  await setControl(page, "severity", "1");
  const m1 = await poll(async () => { const m = await metrics(page); return m.left.ood_acc !== m0.left.ood_acc && m; },
    { ms: 5_000, what: `OOD accuracy to change with severity (at severity 0: ${m0.left.ood_acc})` });
  console.log(`# severity 0 -> 1 after ${m0.left.step} steps: OOD acc left ${m0.left.ood_acc} -> ${m1.left.ood_acc}, right ${m0.right.ood_acc} -> ${m1.right.ood_acc}; ID acc left ${m0.left.id_acc} -> ${m1.left.id_acc}`);
  assert.ok(m1.left.ood_acc < m0.left.ood_acc, "a 1.0 rotation should hurt OOD accuracy");
  assert.deepEqual(await metricsProblems(page), []);
  await finish(ctx);
});

test("(f) URL state: the query sets controls and element; controls update the query", { timeout: 30_000 }, async () => {
  const ctx = await open("?dataset=spirals&rho=0.05");
  const { page } = ctx;
  assert.equal(await controlValue(page, "dataset"), "spirals");
  assert.equal(Number(await controlValue(page, "rho")), 0.05);
  const attrs = await page.evaluate((sel) => { const e = document.querySelector(sel); return { dataset: e.getAttribute("dataset"), rho: e.getAttribute("rho") }; }, el);
  assert.deepEqual(attrs, { dataset: "spirals", rho: "0.05" }, "the element's attributes follow the URL");
  const m = await metrics(page);
  assert.match(m.right.label, /rho=0\.05\b/, "the run uses rho from the URL");

  await setControl(page, "dataset", "circles");
  await poll(async () => new URLSearchParams(await page.evaluate(() => location.search)).get("dataset") === "circles",
    { ms: 5_000, what: "location.search to get dataset=circles" });
  await setControl(page, "rho", "0.3");
  const search = await poll(async () => { const s = await page.evaluate(() => location.search); return new URLSearchParams(s).get("rho") === "0.3" && s; },
    { ms: 5_000, what: "location.search to get rho=0.3" });
  assert.equal(new URLSearchParams(search).get("dataset"), "circles", "changing rho dropped dataset from the URL");
  assert.equal(await page.evaluate((sel) => document.querySelector(sel).getAttribute("dataset"), el), "circles");

  // The URL alone restores the state.
  await page.reload({ waitUntil: "load" });
  await waitForSandbox(page);
  assert.equal(await controlValue(page, "dataset"), "circles");
  assert.equal(Number(await controlValue(page, "rho")), 0.3);
  assert.match((await metrics(page)).right.label, /rho=0\.3\b/);
  await finish(ctx);
});

test("(g) a full session without console errors: every control, play, step, reset", { timeout: 40_000 }, async () => {
  const ctx = await open();
  const { page } = ctx;
  // Every setting named in the contract has a control on the student page.
  const settings = ["dataset", "noise", "points", "classes", "shift", "severity", "hidden", "activation", "optimizer",
    "left", "right", "rho", "lr", "momentum", "weight-decay", "schedule", "batch-size", "steps", "seed", "label-smoothing"];
  const missing = await page.evaluate(([sel, names]) => {
    const host = document.querySelector(sel);
    const roots = [host, ...(host.shadowRoot ? [host.shadowRoot] : [])];
    const has = (n) => roots.some((r) => r.querySelector(`select[name="${n}"], input[name="${n}"], textarea[name="${n}"], [data-setting="${n}"]`));
    return names.filter((n) => !has(n));
  }, [el, settings]);
  assert.deepEqual(missing, [], "settings without a control on index.html");

  // A short run, then every choice of every select (paused: each change rebuilds
  // the run and redraws), then training again on what the sweep left.
  await page.waitForTimeout(500);
  await call(page, "pause");
  const choices = { dataset: ["moons", "circles", "xor", "spirals", "blobs", "spurious"], activation: ["relu", "gelu", "sigmoid", "tanh"],
    shift: ["spurious_flip", "translate", "scale", "noise", "class_prior", "none", "rotate"], optimizer: ["adam", "adamw", "rmsprop", "sgd"],
    left: ["sam", "asam", "plain"], right: ["asam", "plain", "sam"], "left-optimizer": ["adam", ""], "right-optimizer": ["rmsprop", ""],
    schedule: ["cosine", "step", "warmup", "constant"], speed: ["1", "100", "1000", "max", "10"] };
  const plain = { noise: "0.3", points: "120", hidden: "8,8,8", "label-smoothing": "0.1", rho: "0.05", lr: "0.03", momentum: "0.5",
    "weight-decay": "0.001", "batch-size": "16", steps: "500", seed: "7" };
  // Set in the page (value + input + change on the real control, one animation
  // frame apart): the same path as a user, without a round trip per change.
  const changed = await page.evaluate(async ([sel, lists, singles]) => {
    const host = document.querySelector(sel);
    const root = host.shadowRoot || host;
    const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
    let n = 0;
    const set = async (name, value) => {
      const input = root.querySelector(`[name="${name}"]`);
      if (!input) throw new Error(`no control named ${name}`);
      input.value = value;
      input.dispatchEvent(new Event("input", { bubbles: true, composed: true }));
      input.dispatchEvent(new Event("change", { bubbles: true, composed: true }));
      n++;
      await frame();
    };
    for (const [name, values] of Object.entries(lists)) for (const v of values) await set(name, v);
    host.step(3);
    for (const [name, v] of Object.entries(singles)) await set(name, v);
    const ood = root.querySelector('[name="show-ood"]');
    ood.click(); await frame(); ood.click(); await frame();
    return n;
  }, [el, choices, plain]);
  assert.ok(changed >= 50, `only ${changed} control changes`);
  await setControl(page, "classes", "3");
  await setControl(page, "dataset", "blobs");
  await button(page, /^\W*play\b/i).click();
  await page.waitForTimeout(500);
  await button(page, /^\W*step\b/i).click();
  await button(page, /^\W*reset\b/i).click();
  await page.waitForTimeout(300);
  const m = await metrics(page);
  assert.deepEqual(await metricsProblems(page), []);
  assert.equal(m.left.diverged, false);
  await call(page, "pause");
  await finish(ctx);
});
