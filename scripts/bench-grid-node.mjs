// The study panel's grid study (64 data draws x 4 seeds of the page's defaults, 256 points,
// 1000 steps: 256 pairs) with the page's study module (www/pkg-study, built by `make build`)
// in Node, sharded over worker_threads exactly as the page shards it over its workers: the
// work itself, without a browser, for comparison with `node scripts/bench-browser.mjs --study`.
//
//   node scripts/bench-grid-node.mjs [--workers=N] [--draws=K] [--dir=WWW]
//
// Prints when each shard finished (its own clock, from the common start), the total
// (statistics included), and the study's verdict line.

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
// The common start on the wall clock (ms since the epoch, as timeOrigin + now()).
const wall = () => performance.timeOrigin + performance.now();
const { draws, seeds, workers, index, start } = isMainThread
  ? { draws: Number(arg("draws", 64)), seeds: 4, workers: Number(arg("workers", 2)), index: 0, start: wall() }
  : workerData;
const study = new m.GridStudy(QUERY, "", draws, seeds, NaN, 10, index, workers);

if (!isMainThread) {
  while (study.advance(1000) < 1) {}
  // Its own finishing time: the main thread reads messages only once its shard is done.
  parentPort.postMessage({ runs: study.partRuns(), ms: wall() - start });
} else {
  const s = (ms) => `${(ms / 1000).toFixed(2)} s`;
  const parts = [];
  for (let i = 1; i < workers; i++) {
    const w = new Worker(new URL(import.meta.url), { workerData: { draws, seeds, workers, index: i, start } });
    parts.push(new Promise((resolve) => w.on("message", ({ runs, ms }) => resolve({ i, runs, ms, w }))));
  }
  while (study.advance(1000) < 1 && !study.isWaiting()) {}
  console.log(`shard 0: ${s(wall() - start)}`);
  for (const p of await Promise.all(parts)) {
    console.log(`shard ${p.i}: ${s(p.ms)}`);
    study.addPart(p.i, p.runs);
    p.w.terminate();
  }
  while (study.advance(1000) < 1) {}
  console.log(`total (statistics included): ${s(wall() - start)}; ${2 * draws * seeds} runs on ${workers} worker(s)`);
  const result = JSON.parse(study.resultJson());
  console.log(result.stats.evaluations[0].verdict);
}
