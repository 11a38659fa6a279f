// The study panel's grid study (64 data draws x 4 seeds of the page's defaults, 256 points,
// 1000 steps: 256 pairs) with the page's study module (www/pkg-study, built by `make build`)
// in Node, its units dealt over worker_threads as the page deals them over its workers (a
// helper holds two, the main thread one at a time): the work itself, without a browser, for
// comparison with `node scripts/bench-browser.mjs --study`.
//
//   node scripts/bench-grid-node.mjs [--workers=N] [--draws=K] [--dir=WWW]
//
// Prints how many units each worker trained, the total (statistics included), and the
// study's verdict line.

import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

const arg = (name, fallback) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
};
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.resolve(arg("dir", path.join(here, "..", "www")), "pkg-study");
const m = await import(pathToFileURL(path.join(dir, "flatminima.js")).href);
m.initSync({ module: readFileSync(path.join(dir, "flatminima_bg.wasm")) });

const QUERY = "points=256&steps=1000";
const { draws, seeds, workers } = isMainThread
  ? { draws: Number(arg("draws", 64)), seeds: 4, workers: Number(arg("workers", 2)) }
  : workerData;
const study = new m.GridStudy(QUERY, "", draws, seeds, NaN, 10, !isMainThread);
const turn = () => new Promise((resolve) => setImmediate(resolve));

if (!isMainThread) {
  // A helper: trains what it is dealt, sends each finished unit's runs.
  parentPort.on("message", (unit) => study.deal(unit, null));
  for (;;) {
    if (study.holds() > 0) study.advance(50);
    const runs = study.takeRuns();
    if (runs.length > 0) parentPort.postMessage(runs);
    await turn();
  }
} else {
  const start = performance.now();
  const units = study.units();
  let next = 0;
  const done = [0];
  const helpers = [];
  for (let i = 1; i < workers; i++) {
    const w = new Worker(new URL(import.meta.url), { workerData: { draws, seeds, workers } });
    const h = { w, holds: 0 };
    w.on("message", (runs) => {
      study.addRuns(runs);
      const n = study.takeCollected().length;
      done[i] = (done[i] ?? 0) + n;
      h.holds -= n;
      deal();
    });
    helpers.push(h);
  }
  function deal() {
    for (const h of helpers) {
      while (h.holds < 2 && next < units) {
        h.w.postMessage(next++);
        h.holds++;
      }
    }
    if (study.holds() === 0 && next < units) study.deal(next++, null);
  }
  deal();
  let progress = 0;
  while (progress < 1) {
    progress = study.advance(50);
    done[0] += study.takeCollected().length;
    deal();
    await turn();
  }
  const s = (ms) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`units trained by each worker (main thread first): ${done.join(", ")}`);
  console.log(`total (statistics included): ${s(performance.now() - start)}; ${2 * draws * seeds} runs on ${workers} worker(s)`);
  console.log(JSON.parse(study.resultJson()).stats.evaluations[0].verdict);
  for (const h of helpers) h.w.terminate();
}
