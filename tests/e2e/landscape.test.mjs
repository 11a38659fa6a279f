// End-to-end tests of the loss-landscape and sharpness views on index.html:
// they fill in while training runs, end up showing the final solutions,
// report sharpness in metrics(), switch planes from the control and the URL,
// rotate in 3D, and name bad attributes.
//
//   make build && node --test tests/e2e/landscape.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { useServerAndBrowser, newWatchedPage, waitForSandbox, metrics, poll, canvasSnapshots, sandboxText } from "./harness.mjs";

const env = useServerAndBrowser();
const el = "flatminima-sandbox";
const landscape = (page) => page.evaluate((sel) => document.querySelector(sel).landscape(), el);

async function open(query) {
  const { page, problems } = await newWatchedPage(env.browser.context);
  await page.setViewportSize({ width: 1280, height: 2200 });
  await page.goto(env.server.url + "index.html" + query, { waitUntil: "load" });
  await waitForSandbox(page);
  return { page, problems };
}

/** The landscape canvases by class: contour, 3D, slice (both sides), interpolation, lambda, spectrum. */
async function landscapeCanvases(page) {
  const snaps = await canvasSnapshots(page);
  const by = (cls) => snaps.filter((c) => c.cls.split(" ").includes(cls));
  return { contour: by("fm-contour"), cube: by("fm-surface3d"), slice: by("fm-slice"), interp: by("fm-interp")[0],
           lambda: by("fm-lambda")[0], spectrum: by("fm-spectrum")[0] };
}

test("(l1) the landscape and sharpness views follow training to the end", { timeout: 60_000 }, async () => {
  const { page, problems } = await open("?steps=400");
  // Autoplay trains to 400 steps; then the views catch up with the final solutions.
  const done = await poll(async () => {
    const m = await metrics(page);
    const l = await landscape(page);
    return m.finished && l && l.complete && l.progress === 1 && l.steps[0] === 400 && l.steps[1] === 400 &&
      m.left.sharpness && m.left.sharpness.step === 400 && m.right.sharpness && m.right.sharpness.spectrum_step === 400 && { m, l };
  }, { ms: 40_000, what: "the landscape and the sharpness of step 400" });
  const { m, l } = done;
  assert.equal(l.kind, "random");
  for (const side of ["left", "right"]) {
    const s = m[side].sharpness;
    for (const key of ["lambda_max", "trace", "eps_sharpness", "rho_sharpness", "adaptive_sharpness", "average_sharpness"]) {
      assert.ok(Number.isFinite(s[key]), `${side}.sharpness.${key} = ${s[key]}`);
    }
    assert.ok(s.lambda_max > 0, `${side} lambda_max ${s.lambda_max}`);
    // Power iteration's lambda_max against the dense spectrum's largest eigenvalue (same points).
    assert.ok(Math.abs(s.lambda_max - s.spectrum_max) <= 0.05 * Math.abs(s.spectrum_max) + 1e-6,
      `${side}: power iteration ${s.lambda_max} vs dense ${s.spectrum_max}`);
    // The default SGD with heavy-ball momentum 0.9: (2 + 2 beta) / lr from the core, with its source.
    assert.ok(Math.abs(s.edge_of_stability - 3.8 / m[side].lr) <= 1e-9 * s.edge_of_stability, `${side} edge ${s.edge_of_stability}`);
    assert.match(s.edge_of_stability_label, /Cohen et al\. 2021/);
    assert.ok(Number.isFinite(l[side].train.at_solution) && Number.isFinite(l[side].ood.mean_rise));
  }
  const c = await landscapeCanvases(page);
  for (const snap of [...c.contour, ...c.cube, ...c.slice, c.interp, c.lambda, c.spectrum]) {
    assert.ok(!snap.blank && snap.distinct > 3, `${snap.label} is blank: ${JSON.stringify(snap)}`);
  }
  assert.equal(c.contour.length, 2);
  // The status line and table follow at the next redraw (a few times a second).
  const text = await poll(async () => { const t = await sandboxText(page); return /showing step 400 \/ 400/.test(t) && t; },
    { ms: 5_000, what: "the status line to say the landscape shows step 400" });
  assert.match(text, /λ_max/);
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
});

test("(l1b) the views fill in while training at the default speed, not only once it stops", { timeout: 30_000 }, async () => {
  const { page, problems } = await open("?dataset=spirals&steps=100000");
  await poll(async () => {
    const c = await landscapeCanvases(page);
    return [...c.contour, c.lambda].every((s) => !s.blank && s.distinct > 3);
  }, { ms: 10_000, what: "both contour views and the lambda_max chart to show something while training" });
  const m = await metrics(page);
  assert.ok(!m.finished && m.left.step > 0, "still training");
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
});

test("(l2) directions from the URL and the control; 3D rotation; bad values named", { timeout: 60_000 }, async () => {
  const { page, problems } = await open("?steps=200&directions=hessian&surface=ood");
  const l1 = await poll(async () => { const l = await landscape(page); return l && l.complete && l.steps[0] === 200 && l; },
    { ms: 30_000, what: "the Hessian landscape of step 200" });
  assert.equal(l1.kind, "hessian");
  assert.ok(l1.left.eigenvalues[0] >= l1.left.eigenvalues[1], JSON.stringify(l1.left.eigenvalues));
  const select = page.locator(el).locator('select[name="directions"]');
  assert.equal(await select.inputValue(), "hessian");
  assert.equal(await page.locator(el).locator('select[name="surface"]').inputValue(), "ood");

  // The control switches to the PCA plane (cancelling what was under way) and the URL follows.
  await select.selectOption("pca");
  const l2 = await poll(async () => { const l = await landscape(page); return l && l.kind === "pca" && l.complete && l; },
    { ms: 30_000, what: "the PCA landscape" });
  assert.ok(l2.left.explained_variance[0] > 0 && l2.left.explained_variance[0] <= 1, JSON.stringify(l2.left));
  await poll(async () => new URL(page.url()).searchParams.get("directions") === "pca", { ms: 5_000, what: "directions=pca in the URL" });

  // Arrow keys on a 3D view rotate it.
  const before = (await landscapeCanvases(page)).cube.map((s) => s.hash);
  await page.locator(el).locator("canvas.fm-surface3d").first().focus();
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowRight");
  await poll(async () => {
    const after = (await landscapeCanvases(page)).cube.map((s) => s.hash);
    return after[0] !== before[0] && after[1] !== before[1];
  }, { ms: 5_000, what: "both 3D views to turn" });

  // A bad attribute value is named, and the view goes on with the default.
  await page.evaluate((sel) => document.querySelector(sel).setAttribute("directions", "sideways"), el);
  await poll(async () => /directions: must be random, hessian, pca, got "sideways"/.test(await sandboxText(page)),
    { ms: 5_000, what: "a message naming directions" });
  const l3 = await poll(async () => { const l = await landscape(page); return l && l.kind === "random" && l; },
    { ms: 30_000, what: "the random landscape after the fallback" });
  assert.equal(l3.kind, "random");
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
});

test("(l3) landscape=off hides the views and does no landscape work", { timeout: 30_000 }, async () => {
  const { page, problems } = await open("?steps=100&landscape=off");
  await poll(async () => (await metrics(page)).finished, { ms: 20_000, what: "the run to finish" });
  await page.waitForTimeout(500);
  assert.equal(await landscape(page), null, "a landscape was computed while the view is off");
  const hidden = await page.evaluate((sel) => document.querySelector(sel).shadowRoot.querySelector(".fm-landscape").hidden, el);
  assert.equal(hidden, true);
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
});

test("(l4) an element off screen leaves its landscape until it is scrolled into view", { timeout: 40_000 }, async () => {
  const { page, problems } = await open("?steps=50&landscape=off");
  await page.setViewportSize({ width: 1000, height: 700 });
  // A second sandbox far below the fold, as in a long blog post.
  await page.evaluate(() => {
    const spacer = document.createElement("div");
    spacer.style.height = "6000px";
    const far = document.createElement("flatminima-sandbox");
    far.id = "far";
    far.setAttribute("steps", "50");
    document.body.append(spacer, far);
  });
  const far = (fn) => page.evaluate((f) => { const el = document.querySelector("#far"); return new Function("el", f)(el); }, fn);
  await poll(async () => (await far("return el.metrics()")) !== null, { ms: 10_000, what: "the far sandbox to load" });
  await far("el.step(50); return null");
  await page.waitForTimeout(1_500);
  assert.equal(await far("return el.landscape()"), null, "the off-screen element computed a landscape nobody can see");
  await far("el.scrollIntoView(); return null");
  const l = await poll(async () => { const x = await far("return el.landscape()"); return x && x.complete && x; },
    { ms: 20_000, what: "the landscape once the element is on screen" });
  assert.deepEqual(l.steps, [50, 50]);
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
});
