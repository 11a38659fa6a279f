// A second core for the study panel's grid study. The element's worker starts this
// worker with shard 1 of 2 of a study's (cell, data draw) units; it trains and measures
// them with the study module (www/pkg-study, the same GridStudy as the element's worker)
// and answers with their runs as plain numbers, which the element's worker merges with its own
// shard (the same bytes as one worker's study: tests/web.rs). Nothing else runs here,
// so the study works without pauses; Cancel ends it with terminate().
// Messages: see StudyHelperRequest and StudyHelperMessage in protocol.js.

import init, { GridStudy } from "./pkg-study/flatminima.js";

/** Progress messages at most this often (ms). */
const PROGRESS_EVERY_MS = 100;

/** @param {import("./protocol.js").StudyHelperMessage} m */
function send(m) {
  postMessage(m);
}

/** @param {MessageEvent<import("./protocol.js").StudyHelperRequest>} e */
onmessage = async (e) => {
  const m = e.data;
  try {
    await init();
    const study = new GridStudy(m.query, m.axes, m.dataSeeds, m.seeds, m.untilTrainLoss ?? NaN, m.checkEvery, m.index, m.count);
    let told = -Infinity;
    for (;;) {
      const progress = study.advance(PROGRESS_EVERY_MS);
      const [runs, total, longest] = study.counts();
      if (progress >= 1) {
        const numbers = /** @type {Float64Array} */ (study.partRuns());
        postMessage(/** @type {import("./protocol.js").StudyHelperMessage} */ ({ type: "done", index: m.index, numbers, runs, total, longest }), [numbers.buffer]);
        study.free();
        return;
      }
      const now = performance.now();
      if (now - told >= PROGRESS_EVERY_MS) {
        told = now;
        send({ type: "progress", progress, runs, total, longest });
      }
    }
  } catch (error) {
    const panic = /** @type {any} */ (globalThis).__flatminimaStudyPanic;
    send({ type: "error", message: String(panic || (error instanceof Error ? error.message : error)) });
  }
};
