// The GPU backend in the element, in headless Chromium. With
// --enable-unsafe-webgpu, WebGPU's adapter is SwiftShader (a CPU emulation):
// backend="gpu" runs the boundaries, surfaces and studies through it, and they
// must agree with the CPU path; backend="auto" passes the software adapter over;
// backend="cpu" never loads the GPU module. Without the flag there is no adapter,
// and the element falls back and says so. No timing is asserted.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  useServerAndBrowser, newWatchedPage, waitForSandbox, metrics, metricsProblems, poll, withTimeout, settle,
} from "./harness.mjs";

/** A page with one element per entry of `elements` (attribute maps), all on screen. */
async function open(env, elements) {
  const { page, problems } = await newWatchedPage(env.browser.context);
  const gpuModule = [];
  page.on("request", (r) => { if (r.url().includes("/pkg-gpu/")) gpuModule.push(r.url()); });
  await page.goto(env.server.url + "index.html?landscape=off", { waitUntil: "load" });
  await page.evaluate((elements) => {
    document.body.replaceChildren(...elements.map((attrs, i) => {
      const el = document.createElement("flatminima-sandbox");
      el.id = `s${i}`;
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
      return el;
    }));
  }, elements);
  for (let i = 0; i < elements.length; i++) await waitForSandbox(page, { selector: `#s${i}` });
  return { page, problems, gpuModule };
}

/** The backend badge's text and the element's messages. */
function backendText(page, selector) {
  return page.evaluate((sel) => {
    const root = document.querySelector(sel).shadowRoot;
    return { badge: root.querySelector(".fm-backend").textContent, title: root.querySelector(".fm-backend").title,
      messages: root.querySelector(".fm-messages").textContent };
  }, selector);
}

/** Both sides' landscape summaries once complete at the current steps (paused; scrolled into view). */
async function completeLandscape(page, selector, ms = 60_000) {
  await page.evaluate((sel) => document.querySelector(sel).scrollIntoView(), selector);
  return poll(() => page.evaluate((sel) => {
    const el = document.querySelector(sel);
    const l = el.landscape();
    const m = el.metrics();
    return l && l.complete && l.progress === 1 && l.steps[0] === m.left.step ? l : null;
  }, selector), { ms, every: 250, what: `a complete landscape in ${selector}` });
}

describe("with WebGPU (SwiftShader)", () => {
  const env = useServerAndBrowser({ extraFlags: ["--enable-unsafe-webgpu"] });

  test("backend=gpu: boundaries, surfaces and a 256-replica study match the CPU path", { timeout: 150_000 }, async () => {
    const settings = { dataset: "moons", points: "200", seed: "5", steps: "5000", landscape: "off" };
    const { page, problems, gpuModule } = await open(env, [{ ...settings, backend: "gpu" }, { ...settings, backend: "cpu" }]);
    await poll(async () => (await metrics(page, "#s0")).backend === "gpu", { ms: 30_000, what: "the GPU backend to open" });
    assert.equal((await metrics(page, "#s1")).backend, "cpu", "backend=cpu stays on the CPU");
    assert.ok(gpuModule.length > 0, "the GPU module was fetched");
    const gpu = await backendText(page, "#s0");
    assert.equal(gpu.badge, "GPU");
    assert.match(gpu.title, /WebGPU/);
    assert.deepEqual(await metricsProblems(page, "#s0"), []);

    // Same steps on both, then the decision boundaries: the GPU's (f32) vs the CPU's.
    await page.evaluate(() => Promise.all([...document.querySelectorAll("flatminima-sandbox")].map((el) => el.step(300))));
    const fieldsAgree = await poll(() => page.evaluate(() => {
      const pixels = (el) => {
        const c = el.shadowRoot.querySelector(".fm-boundary");
        // The element's canvases show the worker's pictures (bitmaprenderer): read them through a copy.
        const copy = document.createElement("canvas");
        copy.width = c.width;
        copy.height = c.height;
        const ctx = copy.getContext("2d");
        ctx.drawImage(c, 0, 0);
        return ctx.getImageData(0, 0, c.width, c.height).data;
      };
      const [a, b] = [...document.querySelectorAll("flatminima-sandbox")].map(pixels);
      if (a.length !== b.length) return null;
      let differ = 0;
      for (let i = 0; i < a.length; i += 4) if (Math.abs(a[i] - b[i]) > 3 || Math.abs(a[i + 1] - b[i + 1]) > 3) differ++;
      // The GPU answer arrives a frame or so later; until then the old field is on screen.
      return differ / (a.length / 4) < 0.002 ? { differ, of: a.length / 4 } : null;
    }), { ms: 20_000, every: 200, what: "the GPU boundary to match the CPU one" });
    assert.ok(fieldsAgree.of > 10_000, JSON.stringify(fieldsAgree));

    // Landscapes at step 300: the GPU computed the surfaces of #s0, the CPU those of #s1.
    await page.evaluate(() => { for (const el of document.querySelectorAll("flatminima-sandbox")) el.setAttribute("landscape", "on"); });
    const [onGpu, onCpu] = [await completeLandscape(page, "#s0"), await completeLandscape(page, "#s1")];
    for (const side of ["left", "right"]) {
      for (const split of ["train", "ood"]) {
        const [g, c] = [onGpu[side][split], onCpu[side][split]];
        for (const key of ["at_solution", "mean_rise"]) {
          assert.ok(Number.isFinite(g[key]), `${side}.${split}.${key}: ${g[key]}`);
          assert.ok(Math.abs(g[key] - c[key]) <= 1e-4 * Math.max(1, Math.abs(c[key])), `${side}.${split}.${key}: gpu ${g[key]} vs cpu ${c[key]}`);
        }
      }
    }

    // A study of 256 replicas per side (512 networks), short enough for SwiftShader.
    const study = await withTimeout(page.evaluate(() => document.querySelector("#s0").study({ replicas: 256, steps: 10 })), 90_000, "the GPU study");
    assert.equal(study.backend, "gpu", JSON.stringify(study.note));
    assert.equal(study.replicas, 256);
    assert.equal(study.left.replicas.length + study.right.replicas.length, 512);
    for (const r of [...study.left.replicas, ...study.right.replicas]) assert.ok(Number.isFinite(r.ood_acc) && Number.isFinite(r.train_loss));
    assert.match(study.right.label, /^SAM/);
    assert.equal(study.paired.pairs, 256);
    // The same study, a few seeds, on the CPU element: the same replicas, f64 vs f32.
    const small = (el) => page.evaluate((sel) => document.querySelector(sel).study({ replicas: 4, steps: 15 }), el);
    const [g, c] = [await small("#s0"), await withTimeout(small("#s1"), 30_000, "the CPU study")];
    assert.equal(c.backend, "cpu");
    for (const side of ["left", "right"]) {
      g[side].replicas.forEach((r, i) => {
        assert.ok(Math.abs(r.train_loss - c[side].replicas[i].train_loss) < 1e-3, `${side} ${i}: ${r.train_loss} vs ${c[side].replicas[i].train_loss}`);
      });
    }
    assert.match(await page.evaluate(() => document.querySelector("#s0").shadowRoot.querySelector(".fm-study-result").textContent), /4 seeds × 15 steps on the GPU/);

    // Bad counts are named, and the element keeps working.
    const bad = await page.evaluate(() => document.querySelector("#s0").study({ replicas: 0 }).then(() => null, (e) => e.message));
    assert.match(bad, /replicas/);
    await page.close();
    assert.deepEqual(problems, [], "console errors or page errors");
  });

  test("backend=gpu: a grid study trains on the replica kernels, measures on the CPU's workers, and matches the CPU element", { timeout: 150_000 }, async () => {
    const settings = { points: "64", hidden: "8,8", steps: "30", "batch-size": "16" };
    const { page, problems } = await open(env, [{ backend: "gpu", ...settings }, { backend: "cpu", ...settings }]);
    await poll(async () => (await metrics(page, "#s0")).backend === "gpu", { ms: 30_000, what: "backend=gpu" });
    const grid = (sel, workers) =>
      page.evaluate(([sel, workers]) => document.querySelector(sel).study({ axes: "optimizer=sgd,adam", dataSeeds: 2, seeds: 2, workers }), [sel, workers]);
    // Two workers: the element's worker trains the SGD cell's units 0 and 1 on the GPU (one
    // batch) and deals them with their weights to whichever worker is free, which measures
    // them; Adam's units 2 and 3 are dealt to train on the CPU (the kernels have no Adam).
    const g = await withTimeout(grid("#s0", 2), 90_000, "the GPU grid study");
    const c = await withTimeout(grid("#s1", 1), 60_000, "the CPU grid study");
    assert.equal(g.workers, 2);
    assert.equal(g.units_by_worker.reduce((a, b) => a + b), 4, JSON.stringify(g.units_by_worker));
    // The same study measured by one worker: the same runs and statistics, bit for bit.
    const one = await withTimeout(grid("#s0", 1), 90_000, "the GPU grid study on one worker");
    assert.equal(one.workers, 1);
    assert.deepEqual(one.training, g.training);
    assert.deepEqual([one.runs, one.stats], [g.runs, g.stats], "two workers measure what one does");
    // The SGD/SAM cell's 2 units on the GPU; Adam's on the CPU, with the reason.
    assert.deepEqual([g.training.gpu_units, g.training.cpu_units], [2, 2], JSON.stringify(g.training));
    assert.match(g.training.notices.join(" "), /Adam/);
    assert.equal(c.training, undefined, "the CPU element trains every run itself");
    // The panel says where the runs were trained, and why some were not on the GPU.
    const said = await poll(async () => {
      const t = await page.evaluate(() => document.querySelector("#s0").shadowRoot.querySelector(".fm-grid-warnings").textContent);
      return /2 of 4 units .* trained on the GPU/.test(t) && /Some units were trained on the CPU: .*Adam/.test(t) && t;
    }, { ms: 10_000, what: "the panel's note on the GPU training" });
    assert.ok(said);
    const status = await page.evaluate(() => document.querySelector("#s0").shadowRoot.querySelector(".fm-grid-status").textContent);
    assert.match(status, /s trained on the GPU and measured on the CPU \(1 worker\)\.$/, "the panel shows the last study, on one worker");
    assert.equal(g.runs.length, c.runs.length);
    g.runs.forEach((r, i) => {
      const q = c.runs[i];
      assert.deepEqual([r.cell, r.draw, r.seed_index, r.side, r.steps], [q.cell, q.draw, q.seed_index, q.side, q.steps]);
      if (g.cells[r.cell].settings.some(([, v]) => v === "adam")) {
        assert.deepEqual(r, q, `run ${i}: the CPU fallback is the CPU's run`);
      } else {
        assert.ok(Math.abs(r.train_loss - q.train_loss) <= 1e-3 * Math.abs(q.train_loss) + 1e-6, `run ${i}: train loss ${r.train_loss} vs ${q.train_loss}`);
        assert.ok(Math.abs(r.lambda_max - q.lambda_max) <= 2e-2 * Math.abs(q.lambda_max) + 1e-6, `run ${i}: lambda_max ${r.lambda_max} vs ${q.lambda_max}`);
      }
    });
    await page.close();
    assert.deepEqual(problems, [], "console errors or page errors");
  });

  test("backend=gpu: a grid study of several batches keeps the GPU a batch ahead, and finishes on the CPU when the GPU goes away", { timeout: 150_000 }, async () => {
    // The landscape off: its live views of a 32x32 net would take most of the element's
    // worker's time. One training step and a 32x32 net on 256 points: the measures (Lanczos, the diagonal,
    // sharpness) take far longer than a GPU batch, so the GPU runs ahead until the pacing
    // (about a batch beyond the measures) holds it back, and the measures wake it again.
    const settings = { points: "256", hidden: "32,32", steps: "1", "batch-size": "16", landscape: "off" };
    const { page, problems } = await open(env, [{ backend: "gpu", ...settings }, { backend: "cpu", ...settings }]);
    await poll(async () => (await metrics(page, "#s0")).backend === "gpu", { ms: 30_000, what: "backend=gpu" });
    const options = { dataSeeds: 64, seeds: 1, workers: 2 }; // 64 units, four batches
    const paced = await withTimeout(page.evaluate((o) => document.querySelector("#s0").study(o), options), 120_000, "a GPU study of four batches");
    assert.deepEqual([paced.training.gpu_units, paced.training.cpu_units, paced.runs.length], [64, 0, 128], JSON.stringify(paced.training));
    // The same study; once the first runs are measured (two batches trained, the third held
    // back by the pacing), the backend turns to the CPU: the units left are dealt to train on
    // the CPU, at once.
    const switched = await withTimeout(page.evaluate(async (o) => {
      const el = document.querySelector("#s0");
      const done = el.study(o);
      const progress = el.shadowRoot.querySelector(".fm-grid-progress");
      while (!(progress.value > 0)) await new Promise((r) => setTimeout(r, 20));
      el.setAttribute("backend", "cpu");
      return done;
    }, options), 120_000, "the study whose GPU went away");
    const t = switched.training;
    assert.equal(t.gpu_units + t.cpu_units, 64, JSON.stringify(t));
    assert.ok(t.gpu_units >= 16 && t.cpu_units >= 1, `some units on each: ${JSON.stringify(t)}`);
    assert.match(t.notices.join(" "), /the GPU backend is no longer active/);
    // The CPU-trained runs are the CPU element's, bit for bit (the GPU's equal them up to f32 rounding).
    const c = await withTimeout(page.evaluate((o) => document.querySelector("#s1").study(o), options), 90_000, "the CPU study");
    const same = switched.runs.filter((r, i) => JSON.stringify(r) === JSON.stringify(c.runs[i])).length;
    assert.ok(same >= 2 * t.cpu_units, `${same} runs equal the CPU's, ${t.cpu_units} units on the CPU`);
    await page.close();
    assert.deepEqual(problems, [], "console errors or page errors");
  });

  test("backend=auto passes a software adapter over, and says why", { timeout: 60_000 }, async () => {
    const { page, problems, gpuModule } = await open(env, [{}]);
    const text = await poll(async () => {
      const t = await backendText(page, "#s0");
      return t.title.includes("software") ? t : null;
    }, { ms: 30_000, what: "auto to decide" });
    assert.equal((await metrics(page, "#s0")).backend, "cpu");
    assert.match(text.badge, /^CPU/);
    assert.equal(text.messages, "", "auto's choice is not an error");
    assert.deepEqual(gpuModule, [], "the adapter says it is a fallback: the GPU module is not even fetched");
    // Switching to gpu afterwards uses it.
    await page.evaluate(() => document.querySelector("#s0").setAttribute("backend", "gpu"));
    await poll(async () => (await metrics(page, "#s0")).backend === "gpu", { ms: 30_000, what: "backend=gpu" });
    // The replica kernels have no Adam: that study falls back to the CPU and says why; the GPU stays on.
    const adam = await withTimeout(page.evaluate(() => {
      const el = document.querySelector("#s0");
      el.setAttribute("optimizer", "adam");
      return el.study({ replicas: 4, steps: 10 });
    }), 30_000, "an Adam study");
    assert.equal(adam.backend, "cpu");
    assert.match(adam.note, /GPU could not train it .*; the CPU did/);
    assert.match(adam.left.label, /Adam/);
    assert.equal((await metrics(page, "#s0")).backend, "gpu");
    await page.evaluate(() => document.querySelector("#s0").setAttribute("backend", "cpu"));
    assert.equal((await settle(page, "#s0")).backend, "cpu");
    await page.close();
    assert.deepEqual(problems, []);
  });
});

describe("without WebGPU", () => {
  const env = useServerAndBrowser();

  test("backend=gpu falls back to the CPU with a notice, and the page works", { timeout: 60_000 }, async () => {
    const { page, problems, gpuModule } = await open(env, [{ backend: "gpu", steps: "200" }]);
    const text = await poll(async () => {
      const t = await backendText(page, "#s0");
      return t.messages ? t : null;
    }, { ms: 30_000, what: "the fallback notice" });
    assert.match(text.messages, /backend.*GPU backend was requested but .*(adapter|WebGPU).*using the CPU/);
    assert.equal(text.badge, "CPU (no GPU)");
    assert.deepEqual(gpuModule, [], "no adapter: the GPU module is never downloaded");
    await page.evaluate(() => document.querySelector("#s0").play());
    await poll(async () => (await metrics(page, "#s0")).finished, { ms: 20_000, what: "training to finish" });
    const m = await metrics(page, "#s0");
    assert.equal(m.backend, "cpu");
    assert.ok(m.left.train_acc > 0.8, JSON.stringify(m.left));
    const study = await withTimeout(page.evaluate(() => document.querySelector("#s0").study({ replicas: 8, steps: 50 })), 30_000, "the CPU study");
    assert.equal(study.backend, "cpu");
    assert.equal(study.left.replicas.length, 8);

    // A study replaced by a newer one rejects as an AbortError; the Study button's
    // study, replaced the same way, is not shown as a failure: the row has the newer outcome.
    const replaced = await withTimeout(page.evaluate(async () => {
      const el = document.querySelector("#s0");
      const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
      const errors = [];
      const first = el.study({ replicas: 64, steps: 1000 }).catch((e) => errors.push(e.name));
      await frame();
      const second = await el.study({ replicas: 2, steps: 10 });
      await first;
      el.shadowRoot.querySelector(".fm-study-run").click();
      await frame();
      await el.study({ replicas: 3, steps: 10 });
      for (let i = 0; i < 3; i++) await frame();
      return { errors, replicas: second.replicas, row: el.shadowRoot.querySelector(".fm-study-result").textContent };
    }), 30_000, "a replaced study");
    assert.deepEqual(replaced.errors, ["AbortError"]);
    assert.equal(replaced.replicas, 2);
    assert.match(replaced.row, /3 seeds × 10 steps on the CPU/);
    assert.doesNotMatch(replaced.row, /failed/);

    // Too many parameters in all for a page: named, with the count that would fit.
    const tooBig = await page.evaluate(() => {
      const el = document.querySelector("#s0");
      el.setAttribute("hidden", "64,64,64,64,64,64");
      return el.study({ replicas: 4096, steps: 10 }).then(() => null, (e) => e.message);
    });
    assert.match(tooBig, /replicas.*4096 replicas of a 21122-parameter network.*use at most 198 replicas/);
    await page.close();
    assert.deepEqual(problems, []);
  });
});
