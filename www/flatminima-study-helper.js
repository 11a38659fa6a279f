// Another core for the study panel's grid study. The element's worker starts this worker
// with the study (`start`), then deals it units one at a time as it frees up: `train-here`
// to train and measure one, `trained` with the weights the GPU trained to measure them,
// `drop` for one whose copy another worker finished first. It works on them with the study
// module (www/pkg-study, the same GridStudy as the element's worker) and sends each finished
// unit's runs as plain numbers, which the element's worker collects in unit order (the same
// bytes as one worker's study: tests/web.rs). Cancel ends it with terminate().
// Messages: see StudyHelperRequest and StudyHelperMessage in protocol.js.

import init, { GridStudy } from "./pkg-study/flatminima.js";

/** Works this long between two looks at its messages (ms): a dealt unit or a drop waits no longer. */
const SLICE_MS = 50;
/** Progress messages at most this often (ms). */
const PROGRESS_EVERY_MS = 100;

/** @param {import("./protocol.js").StudyHelperMessage} m @param {Transferable[]} [moved] */
function send(m, moved = []) {
  postMessage(m, moved);
}

/** @typedef {Exclude<import("./protocol.js").StudyHelperRequest, {type: "start"}>} Dealing */

/** Dealings not yet given to the study (they may come before it exists). */
/** @type {Dealing[]} */
const dealt = [];
/** Wakes the loop while it has nothing to work on. */
/** @type {(value?: unknown) => void} */
let dealtIn = () => {};

/** @param {MessageEvent<import("./protocol.js").StudyHelperRequest>} e */
onmessage = (e) => {
  const m = e.data;
  if (m.type === "start") {
    run(m).catch((error) => {
      const panic = /** @type {any} */ (globalThis).__flatminimaStudyPanic;
      send({ type: "error", message: String(panic || (error instanceof Error ? error.message : error)) });
    });
  } else {
    dealt.push(m);
    dealtIn();
  }
};

/** Lets the messages that came in meanwhile run (a message channel: no timer clamping). */
function yieldToMessages() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = resolve;
    channel.port2.postMessage(0);
  });
}

/** @param {Extract<import("./protocol.js").StudyHelperRequest, {type: "start"}>} m */
async function run(m) {
  await init();
  const study = new GridStudy(m.query, m.axes, m.dataSeeds, m.seeds, m.untilTrainLoss ?? NaN, m.checkEvery, true);
  let told = -Infinity;
  for (;;) {
    for (const d of dealt.splice(0)) {
      if (d.type === "drop") study.dropUnit(d.unit);
      else study.deal(d.unit, d.type === "trained" ? d.weights : null);
    }
    if (study.holds() === 0) {
      // Nothing to work on: sleep until a unit is dealt.
      await new Promise((resolve) => (dealtIn = resolve));
      continue;
    }
    const progress = study.advance(SLICE_MS);
    const longest = study.counts()[2];
    const numbers = /** @type {Float64Array} */ (study.takeRuns());
    const now = performance.now();
    if (numbers.length > 0) {
      told = now;
      send({ type: "runs", numbers, longest }, [numbers.buffer]);
    } else if (now - told >= PROGRESS_EVERY_MS) {
      told = now;
      send({ type: "progress", progress, longest });
    }
    await yieldToMessages();
  }
}
