// @ts-check
// The worker behind one <flatminima-sandbox>: it owns the element's two runs and
// does all of its computation and drawing (training, metrics, decision fields,
// landscapes, sharpness, studies, and the GPU kernels where WebGPU has an
// adapter), so the page's main thread only handles the DOM and stays responsive.
//
// It draws on OffscreenCanvases of its own, sized like the element's canvases,
// and sends each new picture as an ImageBitmap (transferred, not copied). The
// messages both ways are declared in src/protocol.rs (www/protocol.js names them); the element's side is
// www/flatminima-sandbox.js.
//
// One scheduler (`tick`) interleaves the work in a cycle of three tasks: a
// training slice as long as the speed allows, then GPU answers, study and
// landscape/sharpness pieces, then the pictures and snapshot that are due.
// Every piece is bounded in time, so a message (pause, new settings) waits at
// most one task. Every change of what the runs are (settings, a reset, pinned
// weights or points) carries the element's next `revision`; the Sandbox tags what
// it computes with the revision of its runs, and every snapshot and frame says
// which revision it shows, so a result for replaced runs is told apart and
// dropped. (A GPU answer belongs to the backend choice it was asked under, whose
// in-flight bookkeeping it carries (`gpuBusy`); one for an earlier choice is dropped.)

import init, { Sandbox, metricFields, paletteJson, panicForTests, settingsSpecJson, wasmLiveBytes } from "./pkg/flatminima.js";

/** @typedef {import("./protocol.js").Request} ToWorker */
/** @typedef {import("./protocol.js").Reply} FromWorker */
/** @typedef {import("./protocol.js").ViewState} ViewState */

// plotters-canvas checks that it was given a <canvas> with a 2D context
// (`instanceof`); here its canvases are OffscreenCanvases, whose 2D API is the
// same. Naming the offscreen classes as the DOM's lets those checks pass
// (a worker has no DOM classes of its own to shadow).
const scope = /** @type {any} */ (globalThis);
scope.HTMLCanvasElement ??= OffscreenCanvas;
scope.CanvasRenderingContext2D ??= OffscreenCanvasRenderingContext2D;

/** A display frame (ms): pictures and snapshots are sent at most this often. */
/** ".min" when this is the minified worker (it then starts the minified study helper). */
const MIN = new URL(import.meta.url).pathname.endsWith(".min.js") ? ".min" : "";
const FRAME_MS = 1000 / 60;
/** Redraw intervals (ms): boundaries; curves and the metrics snapshot; landscape views. */
const BOUNDARY_EVERY_MS = 50;
const CURVES_EVERY_MS = 150;
const LANDSCAPE_EVERY_MS = 150;
/**
 * Working flat out (training at speed "max" or steps asked for, or a study's runs here), the
 * boundaries and the curves each take at most this share of the worker's time: where one
 * redraw costs more than the share of its interval allows (a slow machine: both boundaries
 * took 14.6 ms on one), its interval stretches.
 */
const DRAW_SHARE_FLAT_OUT = 0.12;
/** Longest training slice (ms) between two looks at the message queue. */
const TRAIN_SLICE_MS = 8;
/** Landscape and sharpness work per tick (ms): small while training, more while paused. */
const LANDSCAPE_BUDGET_MS = { playing: 3, paused: 12 };
const SHARPNESS_BUDGET_MS = 2;
/**
 * While working flat out (training at speed "max", step(n), or a study's runs
 * here), the landscape and sharpness views (computing and drawing them) get at
 * most this share of the worker's time; training, a study and the boundaries get
 * the rest. A landscape of the current step is stale a few steps later anyway.
 */
const VIEWS_SHARE_FLAT_OUT = 0.2;
/** A big net's metrics are evaluated this long per tick (ms), a piece at a time (`metricsAdvance`). */
const METRICS_SLICE_MS = 3;
/** A study on the CPU trains this long per tick (ms). */
const STUDY_SLICE_MS = 10;
/** A grid study works this long per tick (ms), in pieces of at most a few ms each (see src/web/grid_study.rs). */
const GRID_SLICE_MS = 10;
/** Grid progress messages at most this often (ms). */
const GRID_PROGRESS_EVERY_MS = 100;
/** Landscape grid points per axis, and points per data set it is evaluated on. */
const LANDSCAPE_GRID = 51;
const LANDSCAPE_POINTS = 256;
/** The extras (src/web/sandbox/extras.rs) work this long per tick (ms): more while an ensemble trains or a rescaling is measured. */
const EXTRAS_SLICE_MS = { idle: 2, busy: 10 };
/** Progress messages of the extras at most this often (ms). */
const EXTRAS_PROGRESS_EVERY_MS = 100;
/** Steps one step(n) call trains per tick, at most: the worker keeps answering meanwhile. */
const STEP_SLICE_MS = 20;

/** @type {Sandbox | null} */
let sb = null;
/** @type {any} */
let wasm = null;
let fatal = false;
let revision = -1;
/** @type {ViewState} */
const view = {
  speed: "10", showOod: true, landscape: true, directions: "random", surface: "train",
  visible: false, yaw: 0.6, pitch: 0.45, dpr: 1,
};
let playing = false;
/** Steps owed at a finite speed (steps per display frame), carried between ticks. */
let owed = 0;
let lastTrainAt = 0;
/** @type {{id: number, remaining: number} [] } */
const stepJobs = [];
/**
 * The study of seeds under way (`el.study()`): its request, the study module's SeedStudy (null
 * while that loads), whether the GPU has it (`started`), and a note for its report.
 * @type {{id: number, replicas: number, steps: number, job: any, started: boolean, note?: string} | null}
 */
let study = null;
/**
 * One of the grid study's workers, as the dealer sees it: 0 is this worker's own study, the others
 * study helpers on the other cores. `holds`: the units dealt to it whose runs are not in yet, in
 * the order dealt; `progress`: how far its unit under way is; `longest`: its longest piece (ms);
 * `units`: the units whose runs it delivered first.
 * @typedef {{worker: Worker | null, holds: number[], progress: number, longest: number, units: number}} StudyWorker
 */
/**
 * The grid study under way: its request id, start time, last progress message, the study module's
 * GridStudy (null while that loads; it collects every unit's runs), the workers units are dealt to
 * (`workers[0]` this one), the next unit not dealt yet (CPU path), units ready to deal (GPU path:
 * trained, or to train on the CPU), the GPU weights of units dealt and not in (for a copy), and how
 * many units were dealt to a second worker.
 * With the GPU backend active, the GPU module trains the units in unit order (`gpuTrain`: the next
 * unit to train, whether a batch is under way, how many units went where and why) and the workers
 * measure them as they are dealt.
 * @typedef {{next: number, busy: boolean, gpuUnits: number, cpuUnits: number, notices: string[]}} GpuTrainState
 * @typedef {{unit: number, weights: Float64Array | null}} DealtUnit
 * @typedef {{id: number, started: number, told: number, shown: number, study: any, units: number, workers: StudyWorker[],
 *   next: number, ready: DealtUnit[], weights: Map<number, Float64Array>, copies: number, waiting: boolean,
 *   request: Extract<import("./protocol.js").StudyHelperRequest, {type: "start"}>, gpuTrain: GpuTrainState | null}} GridState
 * @type {GridState | null}
 */
let grid = null;
const last = { boundary: -Infinity, curves: -Infinity, landscape: -Infinity, frame: -Infinity };
/** What one redraw of the boundaries, and of the curves, has cost lately (ms, a moving average). */
const drawCost = { boundary: 0, curves: 0 };
/** Time (ms) spent on the views and on everything, decayed so that the share follows the recent past. */
const spent = { views: 0, all: 0 };
const dirty = { boundary: true, curves: true, landscape: true, settings: true };
let lastProgress = -1;

/** The worker's own canvases, by the element's canvas names, at the element's sizes. */
/** @type {Map<string, OffscreenCanvas>} */
const canvases = new Map();
/** @type {Record<string, [number, number]>} */
let sizes = {};

/** @param {FromWorker} message @param {Transferable[]} [transfer] */
function send(message, transfer = []) {
  postMessage(message, transfer);
}

// ---------------------------------------------------------------------------
// Messages from the element.

/** Messages that came before the module was ready wait here. */
/** @type {ToWorker[]} */
const early = [];

self.onmessage = (/** @type {MessageEvent<ToWorker>} */ e) => {
  if (e.data.type === "module") receiveModule(e.data.module);
  else if (!wasm) early.push(e.data);
  else guard(() => handle(e.data));
};

/** @param {ToWorker} m */
function handle(m) {
  if (fatal) return;
  switch (m.type) {
    case "configure": {
      revision = m.revision;
      lastMetrics.metrics = null;
      if (sb) {
        if (sb.reconfigure(m.query, revision)) {
          cancelStudy();
          cancelGrid("the settings changed, so the study was dropped; press Study again to study the new settings");
        }
      } else {
        sb = Sandbox.fromSettings(m.query, revision);
        configureLandscape();
      }
      dirty.settings = true;
      redrawSoon();
      sendState();
      break;
    }
    case "view": {
      const before = { ...view };
      Object.assign(view, m.view);
      if (before.directions !== view.directions) configureLandscape();
      if (before.showOod !== view.showOod) dirty.boundary = true;
      if (before.yaw !== view.yaw || before.pitch !== view.pitch || before.surface !== view.surface) {
        dirty.landscape = true;
        last.landscape = -Infinity;
      }
      if (!before.visible && view.visible) redrawSoon();
      if (before.speed !== view.speed) owed = 0;
      break;
    }
    case "resize":
      sizes = m.sizes;
      view.dpr = m.dpr;
      redrawSoon();
      break;
    case "play":
      if (sb && !sb.finished()) {
        playing = true;
        owed = 0;
        lastTrainAt = performance.now();
      }
      sendState(false);
      break;
    case "pause":
      playing = false;
      dirty.landscape = true;
      sendState(false);
      break;
    case "reset":
      revision = m.revision;
      if (sb) sb.reset(revision);
      lastMetrics.metrics = null;
      redrawSoon();
      sendState();
      break;
    case "step":
      stepJobs.push({ id: m.id, remaining: m.n });
      break;
    case "settle":
      // Everything sent before this message has been applied: say so with fresh state.
      sendState(false);
      send({ type: "reply", id: m.id, value: null });
      break;
    case "study":
      startStudy(m);
      break;
    case "grid":
      startGrid(m);
      break;
    case "gridCancel":
      cancelGrid("the study was cancelled");
      break;
    case "backend":
      chooseBackend(m.choice);
      break;
    case "export":
      reply(m.id, () => (m.what === "record" ? JSON.stringify(runRecord()) : curvesCsv()));
      break;
    case "import":
      revision = m.revision;
      reply(m.id, () => importRecord(m.record));
      break;
    case "add-point":
      revision = m.revision;
      reply(m.id, () => addPoint(m.side, m.x, m.y, m.label, m.split));
      break;
    case "set-points":
      revision = m.revision;
      reply(m.id, () => usePoints(m.points));
      break;
    case "clear-pinned":
      revision = m.revision;
      myPoints = [];
      sb.clearPinned(revision);
      cancelStudy();
      dirty.settings = true;
      redrawSoon();
      sendState();
      send({ type: "reply", id: m.id, value: null });
      break;
    case "show":
      if (sb) {
        const problem = sb.showSolution(m.side, m.which);
        if (problem) console.warn(`flatminima-sandbox: ${problem}`);
      }
      lastMetrics.metrics = null;
      redrawSoon();
      sendState();
      break;
    case "ensemble":
      startExtra("ensemble", m.id, () => sb.ensembleStart(m.side, m.k), m.side);
      break;
    case "rescale":
      // Training pauses while the weights are replaced (see rescaleStart for the optimiser's state).
      playing = false;
      startExtra("rescale", m.id, () => sb.rescaleStart(m.side, m.layer, m.alpha), m.side);
      break;
    case "panic":
      panicForTests();
      break;
  }
  wake();
}

// ---------------------------------------------------------------------------
// A side's other solutions (src/web/sandbox/extras.rs): the weight average, an
// ensemble trained a piece at a time, Dinh's rescaling measured before and after.

/** The ensemble and the rescaling under way: the request to answer when done. */
/** @type {{ensemble: {id: number, side: number} | null, rescale: {id: number, side: number} | null}} */
const extraRequests = { ensemble: null, rescale: null };
let extrasToldAt = 0;

/** Starts an ensemble or a rescaling; `start` returns "" or the problem. */
function startExtra(/** @type {"ensemble" | "rescale"} */ kind, /** @type {number} */ id, /** @type {() => string} */ start, /** @type {number} */ side) {
  if (!sb) return;
  const problem = start();
  if (problem) {
    send({ type: "reply", id, error: `${kind}: ${problem}`, name: "RangeError" });
    return;
  }
  const before = extraRequests[kind];
  if (before) send({ type: "reply", id: before.id, error: `the ${kind} was replaced by a newer one`, name: "AbortError" });
  extraRequests[kind] = { id, side };
  if (kind === "rescale") redrawSoon();
  sendState();
}

/** One slice of the extras' work; answers the requests that finished. Returns whether work is waiting. */
function extrasWork() {
  if (!sb) return false;
  const long = extraRequests.ensemble || extraRequests.rescale;
  const paused = !playing && !stepJobs.length;
  const bits = sb.extrasAdvance(long ? EXTRAS_SLICE_MS.busy : EXTRAS_SLICE_MS.idle, paused);
  if (bits & 2) {
    dirty.boundary = dirty.curves = true;
    lastMetrics.metrics = null;
  }
  const [ensemble, rescale] = sb.extrasProgress();
  const now = performance.now();
  if (long && now - extrasToldAt >= EXTRAS_PROGRESS_EVERY_MS) {
    extrasToldAt = now;
    send({ type: "extras", ensemble, rescale });
  }
  for (const [kind, progress] of /** @type {const} */ ([["ensemble", ensemble], ["rescale", rescale]])) {
    const request = extraRequests[kind];
    if (!request || progress >= 0) continue;
    extraRequests[kind] = null;
    const m = metrics();
    const value = kind === "ensemble" ? m[request.side ? "right" : "left"].ensemble : (sb.rescaleJson() ? JSON.parse(sb.rescaleJson()) : null);
    // None: new runs (settings, reset, data) dropped it before it finished.
    if (value) send({ type: "reply", id: request.id, value });
    else send({ type: "reply", id: request.id, error: `the runs were restarted, so the ${kind} was dropped`, name: "AbortError" });
    send({ type: "extras", ensemble, rescale });
    redrawSoon();
    sendState();
  }
  return (bits & 1) === 1 || !!long;
}

/** @typedef {import("./protocol.js").MyPoint} MyPoint */

/**
 * The student's own points, `[x, y, class]` each for a training point and
 * `[x, y, class, "ood"]` for an OOD test point (data coordinates), placed by
 * clicking a decision panel or loaded from CSV. No training points: the data
 * set's own; no OOD points: the shifted set.
 * @type {MyPoint[]}
 */
let myPoints = [];

/** Half the width of the square a decision panel shows, in data units (src/web/field.rs `VIEW`). */
const PANEL_VIEW = 3;

/**
 * Adds a point of class `label` to `split` ("train" or "ood") where the student
 * clicked side `side`'s panel (`x`, `y` in the canvas's pixels), then trains
 * on the points placed so far.
 */
function addPoint(/** @type {number} */ side, /** @type {number} */ x, /** @type {number} */ y, /** @type {number} */ label, /** @type {"train" | "ood"} */ split = "train") {
  const [rx, ry, size] = sb.plotRect(side);
  const [u, v] = [(x - rx) / size, (y - ry) / size];
  if (!(size > 0 && u >= 0 && u <= 1 && v >= 0 && v <= 1)) throw new Error("click inside the plot to add a point");
  /** @type {MyPoint} */
  const point = split === "ood" ? [PANEL_VIEW * (2 * u - 1), PANEL_VIEW * (1 - 2 * v), label, "ood"] : [PANEL_VIEW * (2 * u - 1), PANEL_VIEW * (1 - 2 * v), label];
  return usePoints([...myPoints, point]);
}

/** Trains on `points` (the student's own training and OOD points; empty: the data set's own again). */
function usePoints(/** @type {MyPoint[]} */ points) {
  // The last snapshot says how many classes; evaluating the runs again (tens of ms on a big net) would not.
  const classes = (lastMetrics.metrics ?? metrics()).classes;
  const bad = points.findIndex((p) => p.length < 3 || !p.slice(0, 3).every(Number.isFinite) || !Number.isInteger(p[2]) || p[2] < 0 || p[2] >= classes ||
    (p.length > 3 && p[3] !== "train" && p[3] !== "ood"));
  if (bad >= 0) throw new Error(`point ${bad + 1} (${points[bad]}): expected x, y, a class from 0 to ${classes - 1} and optionally "train" or "ood"`);
  myPoints = points.map((p) => (p[3] === "ood" ? [p[0], p[1], p[2], "ood"] : [p[0], p[1], p[2]]));
  const train = myPoints.filter((p) => p[3] !== "ood"), ood = myPoints.filter((p) => p[3] === "ood");
  const xy = (/** @type {MyPoint[]} */ ps) => Float64Array.from(ps.flatMap((p) => [p[0], p[1]]));
  const labels = (/** @type {MyPoint[]} */ ps) => Uint32Array.from(ps.map((p) => p[2]));
  const problems = myPoints.length
    ? sb.loadPinned(sb.settingsQuery(), new Float64Array(0), xy(train), labels(train), xy(ood), labels(ood), revision).split("\n").filter(Boolean)
    : (sb.clearPinned(revision), []);
  cancelStudy();
  dirty.settings = dirty.boundary = true;
  redrawSoon();
  sendState();
  return { points: myPoints, problems };
}

/**
 * The runs as a run record: the JSON of `flatminima train --out` (crates/core/src/record.rs),
 * assembled here from the sandbox's numbers so that the page's wasm module needs
 * no serialiser for it. tests/e2e/export.test.mjs checks it against a record the
 * CLI wrote, field by field.
 */
function runRecord() {
  // A big net's metrics owed at this step (worked in pieces) go into the history first.
  sb.settleLogs();
  const fields = metricFields();
  const point = (/** @type {Float64Array} */ v, /** @type {number} */ at) =>
    Object.fromEntries(fields.map((name, k) => [name, v[at + k]]));
  const points = (/** @type {Float64Array} */ v) => Array.from({ length: v.length / fields.length }, (_, i) => point(v, i * fields.length));
  // JSON has no NaN or infinities: a diverged run's parameters are written as these strings, as the CLI does.
  const numbers = (/** @type {Float64Array} */ v) =>
    Array.from(v, (x) => (Number.isFinite(x) ? x : Number.isNaN(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity"));
  const config = JSON.parse(sb.configJson());
  const initial = Array.from(sb.initialParams());
  config.init = initial;
  const metrics = JSON.parse(sb.metricsJson());
  const side = (/** @type {number} */ i) => {
    const m = metrics[i ? "right" : "left"];
    const final = sb.sideFinalMetrics(i);
    return {
      label: m.label, step: m.step,
      diverged: m.diverged ? { step: m.diverged_step, reason: m.diverged_reason } : null,
      final_metrics: final.length ? point(final, 0) : null,
      final_params: numbers(sb.sideParams(i)),
      history: points(sb.sideHistory(i)),
      // As the CLI writes it: present only for a side that keeps a weight average.
      ...(average(i) ? { average: average(i) } : {}),
    };
  };
  const average = (/** @type {number} */ i) => {
    const a = sb.sideAverage(i);
    if (!a.length) return null;
    const m = sb.sideAverageMetrics(i);
    return { kind: sb.sideAverageKind(i), n_averaged: a[0], metrics: m.length ? point(m, 0) : null, params: Array.from(a.subarray(1)) };
  };
  const split = (/** @type {number} */ i) => {
    const xy = sb.splitPoints(i);
    return { points: Array.from({ length: xy.length / 2 }, (_, k) => [xy[2 * k], xy[2 * k + 1]]), labels: Array.from(sb.splitLabels(i)), classes: metrics.classes };
  };
  return {
    format: "flatminima-run-record", version: 1, generator: "flatminima page",
    config, settings: sb.settingsQuery(), initial_params: initial,
    left: side(0), right: side(1),
    data: { train: split(0), id_test: split(1), ood_test: split(2) },
  };
}

/** Both sides' logged metrics as CSV: a row per side and logged step. */
function curvesCsv() {
  const fields = metricFields();
  const metrics = JSON.parse(sb.metricsJson());
  const rows = [["side", "label", ...fields].join(",")];
  for (const [i, name] of ["left", "right"].entries()) {
    const label = `"${metrics[name].label.replace(/"/g, '""')}"`;
    const v = sb.sideHistory(i);
    for (let at = 0; at < v.length; at += fields.length) rows.push([name, label, ...v.subarray(at, at + fields.length)].join(","));
  }
  return rows.join("\n") + "\n";
}

/** Replies to request `id` with `work()`'s value, or with the error it threw. */
function reply(/** @type {number} */ id, /** @type {() => any} */ work) {
  try {
    send({ type: "reply", id, value: work() });
  } catch (err) {
    send({ type: "reply", id, error: err instanceof Error ? err.message : String(err) });
  }
}

/**
 * Restarts the runs from a run record (`flatminima train --out`, or the page's
 * own export): its settings, its initial weights and its training points, so
 * that training it again gives the record's run bit for bit (JSON numbers
 * round-trip exactly). Returns the settings for the element's attributes and
 * what did not carry over.
 * @param {string} text
 * @returns {import("./protocol.js").Imported}
 */
function importRecord(text) {
  let record;
  try {
    record = JSON.parse(text);
  } catch (err) {
    throw new Error(`not a run record: the file is not JSON (${err instanceof Error ? err.message : err})`);
  }
  if (record?.format !== "flatminima-run-record") throw new Error(`not a run record: format is "${record?.format}", not "flatminima-run-record"`);
  if (typeof record.settings !== "string") throw new Error("this run record has no settings (written by an older flatminima); re-export it");
  const train = record.data?.train;
  if (!Array.isArray(record.initial_params) || !Array.isArray(train?.points) || !Array.isArray(train?.labels)) {
    throw new Error("not a run record: initial_params or data.train is missing");
  }
  // A student's own OOD points are part of the record's config (its `ood_points`).
  const ood = record.config?.ood_points;
  const problems = sb.loadPinned(record.settings, Float64Array.from(record.initial_params),
    Float64Array.from(train.points.flat()), Uint32Array.from(train.labels),
    Float64Array.from(ood?.points?.flat() ?? []), Uint32Array.from(ood?.labels ?? []), revision).split("\n").filter(Boolean);
  // Settings cannot say everything a config can (the CLI may have set more): compare the two.
  const strip = (/** @type {any} */ c) => JSON.stringify({ ...c, init: null, train_points: null, ood_points: null });
  const now = JSON.parse(sb.configJson());
  if (strip(now) !== strip(record.config)) {
    const differ = Object.keys(record.config).filter((k) => JSON.stringify(record.config[k]) !== JSON.stringify(now[k]) && k !== "init" && k !== "train_points" && k !== "ood_points");
    problems.push(`config: the page cannot express all of this record's config (${differ.join(", ")} differ); the rest was imported`);
  }
  cancelStudy();
  dirty.settings = true;
  redrawSoon();
  sendState();
  return { settings: record.settings, problems };
}

// ---------------------------------------------------------------------------
// The scheduler.

let scheduled = false;
let timer = 0;
const channel = new MessageChannel();
channel.port1.onmessage = () => { scheduled = false; guard(tick); };

/** Runs `tick` as soon as the message queue allows (no 4 ms timer clamp). */
function wake() {
  if (timer) { clearTimeout(timer); timer = 0; }
  if (!scheduled && !fatal) {
    scheduled = true;
    channel.port2.postMessage(0);
  }
}

/** Runs `tick` in `ms` unless something wakes it earlier. */
function sleep(ms) {
  if (!scheduled && !timer && !fatal) timer = setTimeout(() => { timer = 0; guard(tick); }, ms);
}

/**
 * The scheduler's cycle, in three turns, each a task of its own so that a
 * message from the element (pause, new settings) waits for one turn at most:
 * train, then work (GPU answers, a study, landscape and sharpness), then draw.
 */
let turn = 0;
/** Some work is waiting (set during a cycle, read at its end). */
let busy = false;

function tick() {
  if (!sb || fatal) return;
  const start = performance.now();
  if (turn === 0) {
    busy = trainTurn(start);
    turn = 1;
    wake();
  } else if (turn === 1) {
    busy = gpuWork() || busy;
    busy = sb.metricsAdvance(METRICS_SLICE_MS) || busy;
    // A study's slices are not the views' time; the rest of this turn is (the big net's metrics,
    // extras and the GPU's answers too), so that training flat out keeps the rest of the time.
    const studyStart = performance.now();
    busy = studyWork() || busy;
    busy = gridWork() || busy;
    const studyMs = performance.now() - studyStart;
    busy = extrasWork() || busy;
    // The views take their turn only while under their share of the time (all of it when idle).
    if (viewsDue()) busy = landscapeWork() || busy;
    else busy = true;
    spent.views += performance.now() - start - studyMs;
    turn = 2;
    wake();
  } else {
    draw(start, viewsDue());
    turn = 0;
    if (flatOut()) wake();
    else if (playing) sleep(FRAME_MS / 2);
    else if (busy || dirty.boundary || dirty.curves || (dirty.landscape && view.landscape && view.visible)) sleep(busy ? 0 : FRAME_MS);
  }
  spent.all = 0.99 * spent.all + (performance.now() - start);
  spent.views *= 0.99;
}

/**
 * Whether this worker works as fast as it can: training at speed "max" or steps asked for, or a
 * study with runs to train or statistics to compute here. The views then keep to their share, so
 * that a study pressed on a playing page is not mostly spent redrawing it.
 */
const flatOut = () => stepJobs.length > 0 || (playing && view.speed === "max") || studyRunsHere() || gridRunsHere();

/**
 * Whether the landscape and sharpness views get a turn: always while idle or
 * training at a finite speed (training is paced then, and a view's piece is
 * short), else while under their share of the time.
 */
function viewsDue() {
  return !flatOut() || spent.views <= VIEWS_SHARE_FLAT_OUT * spent.all;
}

/**
 * The interval between two redraws of `kind`: `ms`, stretched while working flat out so that
 * the redraws keep to their share of the time (DRAW_SHARE_FLAT_OUT).
 * @param {"boundary" | "curves"} kind @param {number} ms
 */
const redrawEvery = (kind, ms) => (flatOut() ? Math.max(ms, drawCost[kind] / DRAW_SHARE_FLAT_OUT) : ms);

/** Records what a redraw of `kind` took. @param {"boundary" | "curves"} kind @param {number} ms */
function noteDrawCost(kind, ms) {
  drawCost[kind] = drawCost[kind] ? 0.8 * drawCost[kind] + 0.2 * ms : ms;
}

/** Training: step(n) calls first, then play at the chosen speed. Returns whether steps are waiting. */
function trainTurn(now) {
  if (!sb) return false;
  if (stepJobs.length) {
    const job = stepJobs[0];
    const done = sb.stepFor(job.remaining, STEP_SLICE_MS);
    job.remaining -= done;
    if (done > 0) dirty.boundary = dirty.curves = true;
    // 0 steps and none part-way (a big batch is stepped in pieces): both sides diverged.
    if (job.remaining <= 0 || (done === 0 && !sb.stepUnderWay())) {
      stepJobs.shift();
      redrawSoon();
      sendState();
      send({ type: "reply", id: job.id, value: metrics() });
    }
    return true;
  }
  if (!playing) return false;
  let max = 0xffffffff;
  if (view.speed !== "max") {
    // A finite speed is steps per display frame, kept up however ticks fall.
    const perFrame = Number(view.speed);
    owed = Math.min(owed + (perFrame * (now - lastTrainAt)) / FRAME_MS, 2 * perFrame);
    max = Math.floor(owed);
  }
  lastTrainAt = now;
  if (max > 0) {
    const done = sb.trainFor(max, TRAIN_SLICE_MS);
    if (view.speed !== "max") owed -= done;
    if (done > 0) dirty.boundary = dirty.curves = true;
  }
  if (sb.finished()) {
    playing = false;
    redrawSoon();
    sendState();
  }
  return playing;
}

/** Draw everything at the next tick (after new settings, a reset, a resize). */
function redrawSoon() {
  dirty.boundary = dirty.curves = dirty.landscape = true;
  last.boundary = last.curves = last.landscape = -Infinity;
  wake();
}

// ---------------------------------------------------------------------------
// Pictures and snapshots.

/** The worker's canvas for `name` at the element's current size, or null while it has none. */
function canvas(name) {
  const size = sizes[name];
  if (!size || size[0] <= 0 || size[1] <= 0) return null;
  let c = canvases.get(name);
  if (!c) {
    c = new OffscreenCanvas(size[0], size[1]);
    // A context from the start: transferToImageBitmap needs one even if nothing was drawn yet.
    c.getContext("2d");
    canvases.set(name, c);
  }
  if (c.width !== size[0] || c.height !== size[1]) {
    c.width = size[0];
    c.height = size[1];
  }
  return c;
}

/**
 * What is due at `now`: pictures (sent as bitmaps, one message) and the metrics
 * snapshot; the landscape views only when `viewsDue` (their share of time allows).
 */
function draw(now, viewsDue) {
  if (!sb || now - last.frame < FRAME_MS) return;
  /** @type {Record<string, ImageBitmap>} */
  const bitmaps = {};
  const take = (name, c) => { bitmaps[name] = c.transferToImageBitmap(); };
  const scale = view.dpr;
  // One kind of picture per call (boundaries, else curves, else the landscape views), so that a
  // message to the worker never waits behind all three: the others follow in the next frames.
  let drew = false;
  if (dirty.boundary && now - last.boundary >= redrawEvery("boundary", BOUNDARY_EVERY_MS)) {
    last.boundary = now;
    dirty.boundary = false;
    for (const side of [0, 1]) {
      const c = canvas(`boundary${side}`);
      if (!c) continue;
      // true: a big net's newer field is still being computed, a band of rows per call.
      if (sb.drawBoundary(side, /** @type {any} */ (c), view.showOod, scale)) dirty.boundary = true;
      take(`boundary${side}`, c);
    }
    noteDrawCost("boundary", performance.now() - now);
    drew = true;
  }
  let snapshot = false;
  if (!drew && dirty.curves && now - last.curves >= redrawEvery("curves", CURVES_EVERY_MS)) {
    last.curves = now;
    dirty.curves = false;
    const loss = canvas("loss"), acc = canvas("acc");
    if (loss && acc) {
      sb.drawCurves(/** @type {any} */ (loss), /** @type {any} */ (acc), scale);
      take("loss", loss);
      take("acc", acc);
    }
    noteDrawCost("curves", performance.now() - now);
    snapshot = drew = true;
  }
  if (!drew && viewsDue && view.landscape && view.visible && dirty.landscape && now - last.landscape >= LANDSCAPE_EVERY_MS) {
    last.landscape = now;
    dirty.landscape = false;
    drawLandscape(take, scale);
    spent.views += performance.now() - now;
    snapshot = true;
  }
  if (Object.keys(bitmaps).length) {
    last.frame = now;
    send({ type: "frame", revision, bitmaps }, Object.values(bitmaps));
  }
  if (snapshot) sendState(false);
}

/** @param {(name: string, c: OffscreenCanvas) => void} take @param {number} scale */
function drawLandscape(take, scale) {
  if (!sb) return;
  const any = (c) => /** @type {any} */ (c);
  for (const side of [0, 1]) {
    const contour = canvas(`contour${side}`), cube = canvas(`surface3d${side}`), slice = canvas(`slice${side}`);
    if (contour && cube) {
      const drew = sb.drawSurface(side, any(contour), any(cube), view.surface, view.yaw, view.pitch, scale);
      if (drew & 1) take(`contour${side}`, contour);
      if (drew & 2) take(`surface3d${side}`, cube);
    }
    if (slice) {
      sb.drawSlice(side, any(slice), scale);
      take(`slice${side}`, slice);
    }
  }
  const interp = canvas("interp");
  if (interp) {
    sb.drawInterpolation(any(interp), scale);
    take("interp", interp);
  }
  const lambda = canvas("lambda"), spectrum = canvas("spectrum");
  if (lambda && spectrum) {
    const drew = sb.drawSharpness(any(lambda), any(spectrum), scale);
    if (drew & 1) take("lambda", lambda);
    if (drew & 2) take("spectrum", spectrum);
  }
}

function metrics() {
  return sb ? JSON.parse(sb.metricsJson()) : null;
}

/**
 * The metrics last sent (`sendState(false)` may send them again) and the revision they belong
 * to; forgotten when the runs are replaced (new settings, reset).
 */
/** @type {{revision: number, metrics: any}} */
let lastMetrics = { revision: -1, metrics: null };

/**
 * The element's view of this worker: metrics, landscape, settings (when they changed), memory.
 * `fresh` false (a click's answer, a snapshot at display rate): where evaluating the runs now
 * would be long (a big net, see `metricsStale`), the last metrics sent go again, each side with
 * its step, while `metricsAdvance` evaluates them in pieces; a later snapshot sends them. No
 * click or frame waits for that evaluation.
 */
function sendState(fresh = true) {
  if (!sb || fatal) return;
  const reuse = !fresh && lastMetrics.metrics && lastMetrics.revision === revision && sb.metricsStale();
  if (reuse) dirty.curves = true;
  else lastMetrics = { revision, metrics: metrics() };
  /** @type {import("./protocol.js").State} */
  const state = {
    type: "state",
    revision,
    playing,
    metrics: lastMetrics.metrics,
    landscape: view.landscape ? JSON.parse(sb.landscapeJson(false)) : null,
    landscapeProgress: lastProgress < 0 ? 0 : lastProgress,
    memory: { heap: wasm.memory.buffer.byteLength, live: wasmLiveBytes() },
  };
  if (dirty.settings) {
    dirty.settings = false;
    state.settings = {
      errors: JSON.parse(sb.errorsJson()),
      effective: JSON.parse(sb.effectiveSettingsJson()),
      query: sb.settingsQuery(),
      config: sb.configJson(),
    };
  }
  send(state);
}

// ---------------------------------------------------------------------------
// Landscape and sharpness.

function configureLandscape() {
  if (!sb) return;
  const problem = sb.landscapeConfigure(view.directions, LANDSCAPE_GRID, LANDSCAPE_POINTS);
  if (problem) console.warn(`flatminima-sandbox: ${problem}`);
  dirty.landscape = true;
}

/** One piece of landscape and sharpness work; returns whether more is waiting. */
function landscapeWork() {
  // Off screen, nobody sees it: the work waits until the element is scrolled into view.
  if (!view.landscape || !sb || !view.visible) return false;
  const paused = !playing && !stepJobs.length;
  const progress = sb.landscapeAdvance(paused ? LANDSCAPE_BUDGET_MS.paused : LANDSCAPE_BUDGET_MS.playing);
  const measured = sb.sharpnessAdvance(SHARPNESS_BUDGET_MS, paused);
  const busy = progress < 1 || sb.sharpnessBusy(paused);
  if (busy || measured || progress !== lastProgress) dirty.landscape = true;
  lastProgress = progress;
  return busy;
}

// ---------------------------------------------------------------------------
// Studies of seeds: on the GPU where it is in use, else on the CPU a slice per tick, in the
// study module (www/pkg-study, loaded when the first study starts; see loadStudyModule).

/** @param {{id: number, replicas: number, steps: number}} m */
function startStudy(m) {
  if (!sb) throw new Error("no sandbox");
  cancelStudy();
  // The settings are fixed here, so the GPU and a CPU fallback train the same study.
  const query = sb.settingsQuery();
  /** @type {NonNullable<typeof study>} */
  const mine = { ...m, job: null, started: false };
  study = mine;
  loadStudyModule().then((module) => {
    if (study !== mine) return;
    try {
      // The CPU's job is built first: it checks the counts against the network's size.
      mine.job = new module.SeedStudy(query, m.replicas, m.steps);
    } catch (e) {
      study = null;
      send({ type: "reply", id: m.id, error: errorText(e), name: "RangeError" });
      return;
    }
    const kernels = gpu;
    send({ type: "study", progress: 0, backend: kernels ? "GPU" : "CPU", replicas: m.replicas });
    wake();
    if (!kernels) return;
    mine.started = true;
    untilGpuCrash(kernels.study(query, m.replicas, m.steps)).then(
      (text) => {
        if (study !== mine) return;
        finishStudy(JSON.parse(text), "");
      },
      (e) => {
        if (study !== mine) return;
        if (gpuCrash() || kernels.problem()) gpuFailed(e);
        mine.started = false; // the CPU takes it from here
        send({ type: "study", progress: 0, backend: "CPU", replicas: m.replicas });
        mine.note = `the GPU could not train it (${errorText(e)}); the CPU did`;
        wake();
      },
    );
  }, (e) => {
    if (study !== mine) return;
    study = null;
    send({ type: "reply", id: m.id, error: `could not load the study module (${errorText(e)})` });
  });
}

/** Whether a study of seeds has CPU work to do now (not loading, not on the GPU). */
const studyRunsHere = () => !!study?.job && !study.started;

/** Whether the grid study has work in this worker: a unit dealt here, or the statistics at the end. */
const gridRunsHere = () => !!grid?.study && !grid.waiting;

/** One slice of a CPU study; returns whether it worked. */
function studyWork() {
  // Loading, or on the GPU: the module's arrival or the GPU's failure wakes the scheduler (as for
  // grid studies), so an idle worker sleeps meanwhile instead of ticking with nothing to do.
  if (!study || !studyRunsHere()) return false;
  const mine = study;
  let progress;
  try {
    progress = mine.job.advance(STUDY_SLICE_MS);
  } catch (e) {
    // A crash in the study module fails the study; the element goes on.
    study = null;
    studyModule = null;
    send({ type: "reply", id: mine.id, error: `the study crashed: ${studyCrash() || errorText(e)}` });
    return false;
  }
  send({ type: "study", progress, backend: "CPU", replicas: mine.replicas });
  if (progress >= 1) finishStudy(JSON.parse(mine.job.resultJson()), mine.note || "");
  return true;
}

/** @param {any} report @param {string} note */
function finishStudy(report, note) {
  if (!study) return;
  const { id, job } = study;
  study = null;
  job?.free();
  if (note) report.note = note;
  send({ type: "reply", id, value: report });
}

/** A newer study, new runs or the element's removal ends the one under way. */
function cancelStudy() {
  if (!study) return;
  const { id, job } = study;
  study = null;
  job?.free();
  send({ type: "reply", id, error: "the study was replaced by a newer one or the runs were restarted", name: "AbortError" });
}

// ---------------------------------------------------------------------------
// Grid studies (the study panel): on the CPU, a slice per tick, in bounded pieces, in
// the study module (www/pkg-study), loaded when the first one starts. With two cores or
// more, study helpers (www/flatminima-study-helper.js, a worker each) work beside this
// worker. The study's (cell, data draw) units are dealt to whichever worker is free: a helper
// holds two (one under way, the next ready), this worker one at a time between its other work,
// so a worker slowed by the live page simply takes fewer. Near the end a free worker gets a copy
// of a unit another still holds; the first copy in counts and the other is dropped. This
// worker's study collects every unit's runs, puts them in unit order and computes the
// statistics: the same JSON as one worker's, whoever trained what (tests/web.rs). On the GPU
// backend this worker trains the units on the GPU's replica kernels, a batch at a time ahead of
// the measures, and deals them with their weights; every worker measures on its core.

/**
 * Workers for a grid study unless the request names a number: one per core, leaving one to
 * the page where there are more than two, at most four (the element's worker counts as one).
 */
const GRID_WORKERS = (() => {
  const cores = (typeof navigator !== "undefined" && navigator.hardwareConcurrency) || 1;
  return Math.min(4, Math.max(1, cores > 2 ? cores - 1 : cores));
})();

/** Units a study helper holds at most: one under way and the next, so it never waits for a message. */
const HELPER_HOLDS = 2;

/** @type {Promise<any> | null} the study module (its GridStudy and SeedStudy classes), once asked for */
let studyModule = null;
const studyCrash = () => scope.__flatminimaStudyPanic;

/** The study module, loaded on first use; a failed load is tried again next time. */
function loadStudyModule() {
  studyModule ??= (async () => {
    const module = await import(new URL("./pkg-study/flatminima.js", import.meta.url).href);
    await module.default();
    return module;
  })().catch((e) => {
    studyModule = null;
    throw e;
  });
  return studyModule;
}

/** @param {import("./protocol.js").GridRequest} m */
function startGrid(m) {
  if (!sb) throw new Error("no sandbox");
  cancelGrid("the study was replaced by a newer one");
  // The study module builds the run from the same settings as the sandbox's.
  const query = sb.settingsQuery();
  // A request's `workers` was checked by the element (1 to GRID_MAX_WORKERS there).
  const wanted = Math.max(1, m.workers ?? GRID_WORKERS);
  /** @type {GridState["request"]} */
  const request = {
    type: "start", query, axes: m.axes, dataSeeds: m.dataSeeds, seeds: m.seeds, untilTrainLoss: m.untilTrainLoss, checkEvery: m.checkEvery,
  };
  /** @type {GridState} */
  const mine = {
    id: m.id, started: performance.now(), told: performance.now(), shown: 0, study: null, units: 0, workers: [], next: 0, ready: [],
    weights: new Map(), copies: 0, waiting: false, request,
    gpuTrain: gpu ? { next: 0, busy: false, gpuUnits: 0, cpuUnits: 0, notices: [] } : null,
  };
  grid = mine;
  send({ type: "grid", progress: 0, runs: 0, total: 0 });
  loadStudyModule().then((module) => {
    if (grid !== mine) return;
    try {
      mine.study = new module.GridStudy(query, m.axes, m.dataSeeds, m.seeds, m.untilTrainLoss ?? NaN, m.checkEvery, false);
      mine.units = mine.study.units();
    } catch (e) {
      grid = null;
      send({ type: "reply", id: m.id, error: errorText(e), name: "RangeError" });
      return;
    }
    mine.workers.push({ worker: null, holds: [], progress: 0, longest: 0, units: 0 });
    // No more workers than units: one without a unit would only load a module.
    for (let i = 1; i < Math.min(wanted, mine.units); i++) startHelper(mine);
    dealUnits(mine);
    wake();
  }, (e) => {
    if (grid !== mine) return;
    grid = null;
    send({ type: "reply", id: m.id, error: `could not load the study module (${errorText(e)})` });
  });
}

/**
 * Starts a study helper for the study `g`: the units dealt to it go by message, its runs come
 * back to this worker's study (`addRuns`); a failure fails the study.
 * @param {GridState} g
 */
function startHelper(g) {
  const index = g.workers.length;
  /** @type {StudyWorker} */
  const state = { worker: null, holds: [], progress: 0, longest: 0, units: 0 };
  g.workers.push(state);
  /** @param {string} why */
  const fail = (why) => {
    if (grid !== g) return;
    cancelGrid(`the study's worker ${index + 1} failed: ${why}`, "Error");
  };
  /** @type {Worker} */
  let helper;
  try {
    helper = new Worker(new URL(`./flatminima-study-helper${MIN}.js`, import.meta.url), { type: "module" });
  } catch (e) {
    g.workers.pop(); // the others do its share
    return;
  }
  state.worker = helper;
  helper.onerror = (e) => fail(e.message || "it could not start");
  /** @param {MessageEvent<import("./protocol.js").StudyHelperMessage>} e */
  helper.onmessage = (e) => {
    const h = e.data;
    if (grid !== g) return;
    if (h.type === "error") return fail(h.message);
    state.longest = h.longest;
    if (h.type === "progress") state.progress = h.progress;
    else {
      try {
        g.study.addRuns(h.numbers);
      } catch (err) {
        return fail(errorText(err));
      }
      settleCollected(g, index);
      state.progress = 0;
      dealUnits(g);
      g.waiting = false;
    }
    wake();
  };
  helper.postMessage(g.request);
}

/**
 * The units whose runs just came in (from worker `from`): credited to it, and dropped by any
 * other worker that holds a copy.
 * @param {GridState} g
 * @param {number} from
 */
function settleCollected(g, from) {
  for (const u of g.study.takeCollected()) {
    g.workers[from].units++;
    g.weights.delete(u);
    g.workers.forEach((w, i) => {
      const at = w.holds.indexOf(u);
      if (at < 0) return;
      w.holds.splice(at, 1);
      if (i === from) return;
      if (i === 0) g.study.dropUnit(u);
      else w.worker?.postMessage(/** @type {import("./protocol.js").StudyHelperRequest} */ ({ type: "drop", unit: u }));
      if (at === 0) w.progress = 0; // its unit under way was that one
    });
  }
}

/**
 * Deals units to the free workers: the helpers first, up to HELPER_HOLDS each, then this worker one
 * at a time. The next unit not dealt (on the GPU path, the next one trained or refused), or once
 * every unit is dealt, a copy for a worker with nothing left (see `copyFor`).
 * @param {GridState} g
 */
function dealUnits(g) {
  if (!g.study) return;
  const order = [...g.workers.keys()].slice(1).concat(0);
  // First one unit to each free worker (a small study then runs on every worker at once),
  // then the helpers' second.
  for (const [pass, most] of [[0, 1], [1, HELPER_HOLDS]]) {
    for (const w of order) {
      if (pass === 1 && w === 0) continue;
      while (g.workers[w].holds.length < most) {
        const next = g.ready.shift() ?? (!g.gpuTrain && g.next < g.units ? { unit: g.next++, weights: null } : null) ?? copyFor(g, w);
        if (!next) break;
        give(g, w, next);
        if (grid !== g) return; // it failed
      }
    }
  }
}

/**
 * A copy of a unit another worker holds, for worker `w` once every unit is dealt and `w` holds
 * none: the one its holder reaches last, among those no other worker has a copy of. A unit's runs
 * do not depend on who trains it, so the first copy in is the answer; it saves the wait for a
 * worker slowed by the live page (or a unit that happened to be slow) at the end of a study.
 * @param {GridState} g
 * @param {number} w
 * @returns {DealtUnit | null}
 */
function copyFor(g, w) {
  const dealtAll = g.gpuTrain ? g.gpuTrain.next >= g.units && !g.gpuTrain.busy : g.next >= g.units;
  if (!dealtAll || g.workers[w].holds.length > 0) return null;
  const held = (/** @type {number} */ u) => g.workers.filter((x) => x.holds.includes(u)).length;
  for (const [i, other] of g.workers.entries()) {
    if (i === w) continue;
    const u = [...other.holds].reverse().find((u) => held(u) === 1);
    if (u === undefined) continue;
    g.copies++;
    // `give` copies the weights for a helper (and the study module copies them for this worker).
    return { unit: u, weights: g.weights.get(u) ?? null };
  }
  return null;
}

/**
 * Deals `d` to worker `w`: this worker's study, or a helper by message (the weights moved with it).
 * @param {GridState} g
 * @param {number} w
 * @param {DealtUnit} d
 */
function give(g, w, { unit, weights }) {
  g.workers[w].holds.push(unit);
  if (w === 0) {
    try {
      g.study.deal(unit, weights);
    } catch (e) {
      // Weights that do not fit their unit: a bug, stated rather than measured.
      cancelGrid(`the study could not take unit ${unit}: ${errorText(e)}`, "Error");
    }
    g.waiting = false;
    return;
  }
  // The dealer keeps the GPU weights until the unit's runs are in, in case a copy is dealt.
  const copy = weights && weights.slice();
  /** @type {import("./protocol.js").StudyHelperRequest} */
  const m = copy ? { type: "trained", unit, weights: copy } : { type: "train-here", unit };
  g.workers[w].worker?.postMessage(m, copy ? [copy.buffer] : []);
}

/**
 * Units the GPU module trains in one batch of its replica kernels (each on its data draw):
 * 16 units of 4 seeds are 128 networks, one sequence of dispatches instead of 16, while the
 * progress bar still moves a few times in a study of 64 draws.
 */
const GPU_UNITS_PER_BATCH = 16;

/**
 * Keeps the GPU training the study's next units in unit order, one batch at a time (as many as
 * share the first's network, batch size and steps, at most GPU_UNITS_PER_BATCH), while the
 * workers measure the units before them; each trained unit is ready to deal with its weights.
 * The GPU stays about a batch ahead of the measures (their weights wait in memory). A unit the
 * kernels cannot train (or a GPU failure) is dealt to train on the CPU, with a notice in the
 * result (`training`).
 * @param {GridState} g
 */
function feedGpu(g) {
  const t = /** @type {GpuTrainState} */ (g.gpuTrain);
  const r = g.request;
  if (t.busy || t.next >= g.units) return;
  /** The next unit trains on the CPU. @param {string} why */
  const onCpu = (why) => {
    g.ready.push({ unit: t.next, weights: null });
    t.cpuUnits++;
    t.next++;
    const notice = `trained on the CPU: ${why}`;
    if (!t.notices.includes(notice)) t.notices.push(notice);
  };
  if (!gpu) {
    // Every unit left, at once: no weights wait in memory for them.
    while (t.next < g.units) onCpu("the GPU backend is no longer active");
    dealUnits(g);
    return;
  }
  // At most one batch beyond those being measured (two batches' weights in memory at most):
  // the next batch trains while the workers measure the last. Their runs coming in wake this again.
  if (t.next - g.study.collectedUnits() >= GPU_UNITS_PER_BATCH + HELPER_HOLDS * g.workers.length) return;
  const u = t.next;
  t.busy = true;
  // A panic in the GPU module leaves its promise unsettled: untilGpuCrash rejects then, and the
  // unit trains on the CPU (gpuWork turns the backend off, and the units after it follow).
  untilGpuCrash(gpu.gridUnits(r.query, r.axes, r.dataSeeds, r.seeds, r.untilTrainLoss ?? NaN, r.checkEvery, u, GPU_UNITS_PER_BATCH)).then(
    (/** @type {Float64Array[]} */ trained) => {
      if (grid !== g) return;
      trained.forEach((weights, i) => {
        g.ready.push({ unit: u + i, weights });
        g.weights.set(u + i, weights);
      });
      t.gpuUnits += trained.length;
      t.next = u + trained.length;
    },
    (/** @type {unknown} */ e) => {
      if (grid !== g) return;
      onCpu(errorText(e).replace(/^unsupported: /, "the GPU kernels do not implement "));
    },
  ).finally(() => {
    t.busy = false;
    if (grid !== g) return;
    dealUnits(g);
    g.waiting = false;
    wake();
  });
}

/** One slice of the grid study; returns whether one is under way. */
function gridWork() {
  if (!grid) return false;
  if (!grid.study) return false; // the module is loading: its arrival wakes the scheduler
  const g = grid;
  if (g.gpuTrain) feedGpu(g);
  if (g.waiting) return false; // the helpers' runs or the GPU's weights wake the scheduler
  let progress, counts;
  try {
    progress = g.study.advance(GRID_SLICE_MS);
    settleCollected(g, 0);
    dealUnits(g);
    if (grid !== g) return false; // a unit that did not fit failed it (`give`)
    counts = g.study.counts();
    // Nothing here to work on: a helper's runs, the GPU's weights or a unit dealt wake it.
    g.waiting = g.study.holds() === 0 && g.study.collectedUnits() < g.units;
  } catch (e) {
    // A crash in the study module (or a unit that does not fit) fails the study; the element goes on.
    const crash = studyCrash();
    grid = null;
    studyModule = null;
    for (const h of g.workers) h.worker?.terminate();
    send({ type: "reply", id: g.id, error: `the study crashed: ${crash || errorText(e)}` });
    return false;
  }
  // The units under way elsewhere count their parts (the collected ones and this worker's own are in `progress`).
  if (progress < 0.97) {
    const theirs = g.workers.slice(1).reduce((sum, h) => sum + h.progress, 0);
    progress = Math.min(0.97, progress + (0.97 * theirs) / Math.max(1, g.units));
  }
  // Never backwards (a copy dropped half-way takes its part back).
  progress = g.shown = Math.max(g.shown, progress);
  const [runs, total, longest] = counts;
  const now = performance.now();
  if (progress < 1 && now - g.told < GRID_PROGRESS_EVERY_MS) return true;
  g.told = now;
  send({ type: "grid", progress, runs, total });
  if (progress >= 1) {
    const result = JSON.parse(g.study.resultJson());
    result.ms = now - g.started;
    result.longest_piece_ms = longest;
    result.workers = g.workers.length;
    // Which worker delivered each unit first (this one first), and how many units were dealt twice.
    result.units_by_worker = g.workers.map((w) => w.units);
    result.unit_copies = g.copies;
    // Where the runs were trained: on the GPU (f32; the measures on the CPU) or the CPU.
    if (g.gpuTrain) result.training = { gpu_units: g.gpuTrain.gpuUnits, cpu_units: g.gpuTrain.cpuUnits, notices: g.gpuTrain.notices };
    result.helper_longest_piece_ms = g.workers.length > 1 ? Math.max(...g.workers.slice(1).map((h) => h.longest)) : null;
    grid = null;
    for (const h of g.workers) h.worker?.terminate();
    g.study.free();
    send({ type: "reply", id: g.id, value: result });
  }
  return true;
}

/**
 * The Cancel button, a newer study or new runs end the grid study under way (its helpers too).
 * @param {string} why
 * @param {string} [name] the error's name: AbortError for a cancelled study
 */
function cancelGrid(why, name = "AbortError") {
  if (!grid) return;
  const { id, study, workers } = grid;
  grid = null;
  for (const h of workers) h.worker?.terminate();
  study?.free();
  send({ type: "reply", id, error: why, name });
}

// ---------------------------------------------------------------------------
// The GPU module, where WebGPU has an adapter and the backend is not "cpu".

/** @type {any} the GpuKernels in use, or null (the CPU) */
let gpu = null;
let gpuChoice = "";
/** @type {Promise<any> | null} */
let gpuOpening = null;
/**
 * What is in flight on the GPU under the current backend choice. Every choice (`useGpu`)
 * starts a new one; an answer checks that the bookkeeping it was asked under is still the
 * current one and is dropped otherwise (the backend is not a setting of the runs, so no
 * revision covers it).
 */
let gpuBusy = { boundary: false, surfaces: 0 };

const gpuCrash = () => scope.__flatminimaGpuPanic;
const errorText = (e) => (e && e.message ? e.message : String(e));

/** Resolves to opened GPU kernels for `choice` ("auto" or "gpu"); rejects with the reason there are none. */
async function openGpu(choice) {
  if (gpuCrash()) throw new Error(`the GPU module crashed earlier (${gpuCrash()})`);
  const nav = /** @type {any} */ (navigator);
  if (!nav.gpu) throw new Error("this browser has no WebGPU (navigator.gpu is missing)");
  // Ask before downloading the module: most pages without a GPU stop here.
  const adapter = await nav.gpu.requestAdapter().catch(() => null);
  if (!adapter) throw new Error("WebGPU has no adapter here");
  const info = adapter.info || {};
  if (choice === "auto" && (info.isFallbackAdapter || adapter.isFallbackAdapter)) {
    throw new Error(`WebGPU's only adapter here is a software emulation (${info.vendor || "fallback"} ${info.architecture || "adapter"}), slower than the CPU path; backend="gpu" uses it anyway`);
  }
  gpuOpening ??= (async () => {
    const module = await import(new URL("./pkg-gpu/flatminima.js", import.meta.url).href);
    await module.default();
    return await module.GpuKernels.open();
  })().catch((e) => {
    gpuOpening = null; // a later choice tries again
    throw e;
  });
  return gpuOpening;
}

/** "auto" and "gpu" open the GPU; "cpu" and any failure stay on the CPU. */
function chooseBackend(choice) {
  gpuChoice = choice;
  useGpu(null, "", choice === "cpu" ? "" : "looking for WebGPU…");
  if (choice === "cpu") return;
  openGpu(choice).then((kernels) => {
    if (gpuChoice !== choice) return;
    const problem = kernels.problem();
    if (problem) {
      gpuOpening = null; // a lost device: the next choice opens a new one
      throw new Error(problem);
    }
    // (Where the browser does not say which adapters are fallbacks, wgpu does.)
    if (choice === "auto" && kernels.isSoftware()) {
      throw new Error(`WebGPU's only adapter here is a software emulation (${kernels.description()}), slower than the CPU path; backend="gpu" uses it anyway`);
    }
    useGpu(kernels, "", "");
  }).catch((e) => {
    if (gpuChoice !== choice) return;
    const why = errorText(e);
    // Asked for by name: a notice in the element's messages; auto: the badge says it.
    useGpu(null, choice === "gpu" ? `backend: the GPU backend was requested but ${why}; using the CPU` : "", `no GPU: ${why}`);
  });
}

/** Moves the GPU's work to `kernels`, or back to the CPU (null), and tells the element. */
function useGpu(kernels, notice, note) {
  gpu = kernels;
  gpuBusy = { boundary: false, surfaces: 0 };
  if (sb && !fatal) sb.setGpu(kernels ? kernels.description() : "");
  send({ type: "backend", backend: kernels ? "gpu" : "cpu", notice, note, description: kernels ? kernels.description() : "" });
  redrawSoon();
}

/** A GPU call failed: the CPU takes over (until the backend attribute changes). */
function gpuFailed(e) {
  if (!gpu) return;
  const problem = gpu.problem();
  const why = errorText(e) + (problem && !errorText(e).includes(problem) ? `; ${problem}` : "");
  if (problem) gpuOpening = null;
  useGpu(null, `backend: the GPU failed (${why}); using the CPU from here on`, "the GPU failed");
}

/** A GPU call's answer arrives in a later tick; a panic there leaves it unsettled, so also watch for one. */
function untilGpuCrash(promise) {
  let poll = 0;
  const crashed = new Promise((_, reject) => {
    poll = setInterval(() => gpuCrash() && reject(new Error(`the GPU module crashed: ${gpuCrash()}`)), 200);
  });
  return Promise.race([promise, crashed]).finally(() => clearInterval(poll));
}

/**
 * Sends the GPU what is due (both decision boundaries; the landscape's surfaces),
 * at most one of each in flight. Returns whether answers are awaited.
 */
function gpuWork() {
  if (!gpu || !sb || fatal) return false;
  if (gpuCrash()) { gpuFailed(new Error(`the GPU module crashed: ${gpuCrash()}`)); return false; }
  const kernels = gpu, busy = gpuBusy;
  const answered = (done, answer) => (result) => {
    if (gpuBusy !== busy) return; // the backend was chosen again meanwhile
    done();
    const problem = guard(() => answer(result));
    if (problem) gpuFailed(new Error(problem));
    wake();
  };
  const failed = (done) => (e) => {
    if (gpuBusy !== busy) return;
    done();
    gpuFailed(e);
  };
  if (!busy.boundary) {
    const request = sb.boundaryRequest();
    if (request) {
      busy.boundary = true;
      const done = () => { busy.boundary = false; dirty.boundary = true; };
      kernels.boundaryGrid(request).then(answered(done, (probs) => sb?.boundaryAnswer(probs)), failed(done));
    }
  }
  // Off screen, the surfaces wait, as the CPU's landscape work does.
  if (view.landscape && view.visible) {
    for (let request; (request = sb.surfaceRequest());) {
      const { side } = JSON.parse(request);
      busy.surfaces++;
      const done = () => { busy.surfaces--; dirty.landscape = true; };
      kernels.surface(request).then(answered(done, (values) => sb?.surfaceAnswer(side, values)), failed(done));
    }
  }
  return busy.boundary || busy.surfaces > 0;
}

// ---------------------------------------------------------------------------
// Errors: a panic or exception stops this worker's element (only it: every
// element has its own worker) with the message.

/** @template T @param {() => T} fn @returns {T | undefined} */
function guard(fn) {
  if (fatal) return undefined;
  try {
    return fn();
  } catch (e) {
    die(e);
    return undefined;
  }
}

function die(e) {
  if (fatal) return;
  fatal = true;
  const panic = scope.__flatminimaPanic;
  const message = e instanceof WebAssembly.RuntimeError || panic
    ? `The simulation crashed (a Rust panic): ${panic || errorText(e)}. Reload the page to start again.`
    : `Something went wrong: ${errorText(e)}. Reload the page to start again.`;
  send({ type: "fatal", message });
}

self.addEventListener("unhandledrejection", (e) => die(e.reason));

// The module comes from the element, compiled once for every sandbox on the page (the
// "module" request); without it (null) this worker fetches the module itself.
/** @type {(module: WebAssembly.Module | null) => void} */
let receiveModule = () => {};
new Promise((resolve) => { receiveModule = resolve; }).then((module) => init(module ? { module_or_path: module } : undefined)).then(
  (exports) => {
    wasm = exports;
    send({ type: "ready", palette: JSON.parse(paletteJson()), schema: JSON.parse(settingsSpecJson()) });
    for (const m of early.splice(0)) guard(() => handle(m));
  },
  (e) => send({ type: "fatal", message: `Could not load the WebAssembly module (${errorText(e)}).` }),
);
