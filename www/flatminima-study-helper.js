// Another core for the study panel's grid study. The element's worker starts this
// worker with shard `index` of `count` of a study's (cell, data draw) units; it trains
// and measures them with the study module (www/pkg-study, the same GridStudy as the
// element's worker) and answers with their runs as plain numbers, which the element's
// worker merges with its own shard (the same bytes as one worker's study: tests/web.rs).
// On the GPU backend the element's worker trains every shard's units on the GPU and
// hands this shard's in (`trained`, or `train-here` for a unit the GPU did not train);
// the helper measures them as they come. Cancel ends it with terminate().
// Messages: see StudyHelperRequest and StudyHelperMessage in protocol.js.

import init, { GridStudy } from "./pkg-study/flatminima.js";

/** Progress messages at most this often (ms). */
const PROGRESS_EVERY_MS = 100;

/** @param {import("./protocol.js").StudyHelperMessage} m */
function send(m) {
  postMessage(m);
}

/** @typedef {Exclude<import("./protocol.js").StudyHelperRequest, {type: "start"}>} HandedUnit */

/** Units handed in and not yet given to the study (they may come before it exists). */
/** @type {HandedUnit[]} */
const handed = [];
/** Resolves the wait for a handed unit, while the study waits for one. */
/** @type {(value?: unknown) => void} */
let handedIn = () => {};

/** @param {MessageEvent<import("./protocol.js").StudyHelperRequest>} e */
onmessage = (e) => {
  const m = e.data;
  if (m.type === "start") {
    run(m).catch((error) => {
      const panic = /** @type {any} */ (globalThis).__flatminimaStudyPanic;
      send({ type: "error", message: String(panic || (error instanceof Error ? error.message : error)) });
    });
  } else {
    handed.push(m);
    handedIn();
  }
};

/** @param {Extract<import("./protocol.js").StudyHelperRequest, {type: "start"}>} m */
async function run(m) {
  await init();
  const study = new GridStudy(m.query, m.axes, m.dataSeeds, m.seeds, m.untilTrainLoss ?? NaN, m.checkEvery, m.index, m.count);
  if (m.trainedElsewhere) study.trainElsewhere();
  let told = -Infinity;
  for (;;) {
    for (const h of handed.splice(0)) {
      if (h.type === "trained") study.setTrained(h.unit, h.weights);
      else study.trainHere(h.unit);
    }
    const progress = study.advance(PROGRESS_EVERY_MS);
    const [runs, total, longest] = study.counts();
    if (progress >= 1) {
      const numbers = /** @type {Float64Array} */ (study.partRuns());
      postMessage(/** @type {import("./protocol.js").StudyHelperMessage} */ ({ type: "done", index: m.index, numbers, runs, total, longest }), [numbers.buffer]);
      study.free();
      return;
    }
    const waiting = study.wantedUnit() >= 0 && handed.length === 0;
    const now = performance.now();
    // Waiting: say how far this shard is (the element's worker paces the GPU by it), then sleep.
    if (waiting || now - told >= PROGRESS_EVERY_MS) {
      told = now;
      send({ type: "progress", progress, runs, total, longest });
    }
    if (waiting) await new Promise((resolve) => (handedIn = resolve));
  }
}
