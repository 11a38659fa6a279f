// <flatminima-sandbox>: two tiny networks trained side by side (SGD vs SAM)
// on shifted 2D data, live in the page. One module script is all an embedding
// page needs:
//
//   <script type="module" src="flatminima-sandbox.min.js"></script>
//
// (flatminima-sandbox.min.js is this file minified by scripts/build-wasm.sh, with a
// source map; the pages load it, and this file works the same unminified.)
//   <flatminima-sandbox dataset="spirals" rho="0.2" autoplay></flatminima-sandbox>
//
// Attributes: every setting of crates/core/src/settings.rs (dataset, noise, points, classes,
// shift, severity, hidden, activation, optimizer, left-optimizer,
// right-optimizer, left, right, rho, lr, momentum, weight-decay, schedule,
// batch-size, steps, seed, label-smoothing), plus backend (auto|cpu|gpu),
// autoplay, controls (show the settings panel), speed (1|10|100|1000|max steps
// per frame), show-ood (true|false), landscape (on|off: the loss-landscape and
// sharpness views), directions (random|hessian|pca: the landscape's plane) and
// surface (train|ood: which loss the surfaces show).
// Methods: play(), pause(), step(n) (a Promise of the metrics after the steps),
// reset(), settled() (a Promise: everything asked before it has been applied),
// metrics() (the latest snapshot, with its step), landscape(),
// study({replicas, steps}) (a Promise), settingsQuery(), configJson(),
// wasmMemoryBytes(), wasmLiveBytes(). Events: "metrics" (detail = metrics()) a
// few times a second while training and after every change; "settingschange"
// (detail = {query}) when a setting changed; "backendchange" (detail =
// {backend, notice}) when the GPU backend turns on or off.
//
// All computation and drawing happen in a Web Worker of this element's own
// (www/flatminima-worker.js, which loads the wasm module ./pkg/flatminima.js and,
// where WebGPU has an adapter and backend is not cpu, the GPU module
// ./pkg-gpu/flatminima.js). This file builds the DOM, turns controls into
// attributes, sends the worker settings and commands (src/protocol.rs declares
// the messages), and shows what it sends back: pictures as ImageBitmaps on the
// canvases, metrics and landscape snapshots as text. The main thread never
// waits for a computation, so the page stays responsive however hard it trains.

// @ts-check

/**
 * ".min" when this is the minified build (flatminima-sandbox.min.js, written by
 * scripts/build-wasm.sh and loaded by the pages): it then loads the minified worker,
 * stylesheet and study view beside it; this source file loads the sources.
 */
const MIN = new URL(import.meta.url).pathname.endsWith(".min.js") ? ".min" : "";
const CSS_URL = new URL(`./flatminima${MIN}.css`, import.meta.url);
const WORKER_URL = new URL(`./flatminima-worker${MIN}.js`, import.meta.url);
const WASM_URL = new URL("./pkg/flatminima_bg.wasm", import.meta.url);
/** The study panel's plots and sentence, loaded when the first grid study starts (the page loads faster without them). */
const STUDY_VIEW_URL = new URL(`./flatminima-study-view${MIN}.js`, import.meta.url);

/**
 * The settings' names (crates/core/src/settings.rs declares them; observedAttributes needs
 * them before the wasm module is loaded). tests/schema.rs checks this list
 * against the declaration.
 */
const SETTINGS = [
  "dataset", "noise", "points", "classes", "label-noise", "shift", "severity", "hidden", "activation",
  "label-smoothing", "dropout", "optimizer", "left", "right", "left-optimizer", "right-optimizer", "rho", "lr",
  "momentum", "weight-decay", "schedule", "switch-at", "switch-side", "switch-to", "batch-size", "steps",
  "seed", "left-batch-size", "right-batch-size", "budget", "lr-scaling", "left-steps", "right-steps",
  "average", "average-start", "average-every", "ema-decay",
];
/** Attributes of the element itself, not of the run. */
const UI_ATTRIBUTES = ["backend", "autoplay", "controls", "speed", "show-ood", "landscape", "directions", "surface", "locked", "hidden-settings"];
const DIRECTIONS = ["random", "hessian", "pca"];
const SURFACES = ["train", "ood"];
const BACKENDS = ["auto", "cpu", "gpu"];
const SPEEDS = ["1", "10", "100", "1000", "max"];
const DEFAULT_SPEED = "10";

/** "metrics" events at most this often (ms) while training. */
const EVENT_EVERY_MS = 500;
/** The study button's run: seeds per side (two networks each) and steps. */
const STUDY_REPLICAS = 128;
const STUDY_STEPS = 1000;
/** The study panel's defaults: data draws, seeds per draw, matched-loss target. */
const GRID_DRAWS = 4;
const GRID_SEEDS = 2;
const GRID_TARGET = 0.1;
const GRID_CHECK_EVERY = 10;
/** Most workers a grid study may be split over (the element checks a request's `workers`; the worker trusts it). */
const GRID_MAX_WORKERS = 8;
/** Sharpness measures of a grid study's runs (src/study_grid.rs RunSharpness) and their labels. */
const GRID_MEASURES = [["lambda_max", "λ_max"], ["trace", "Hessian trace"], ["eps_sharpness", "ε-sharpness"],
  ["rho_sharpness", "ρ-sharpness"], ["adaptive_sharpness", "adaptive sharpness"], ["average_sharpness", "average sharpness"]];
/** The ensemble button's default and largest number of members, and the rescaling's default factor. */
const ENSEMBLE_K = 5;
const ENSEMBLE_MAX = 16;
const RESCALE_ALPHA = 5;
/** Most steps one step(n) call takes. */
const MAX_STEP_CALL = 100_000;
/** Steps the Step button takes. */
const STEP_BUTTON_STEPS = 10;

const errorText = (e) => (e && e.message ? e.message : String(e));
const abortError = (why) => Object.assign(new Error(why), { name: "AbortError" });

/**
 * A module worker for WORKER_URL. A page that loads this script from another
 * origin (a CDN) cannot start a worker from that origin directly; a same-origin
 * blob that imports it can.
 */
function startWorker() {
  try {
    return new Worker(WORKER_URL, { type: "module" });
  } catch (e) {
    const source = `import ${JSON.stringify(WORKER_URL.href)};`;
    return new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })), { type: "module" });
  }
}

/** @type {Promise<WebAssembly.Module | null> | null} */
let compiledModule = null;

/**
 * The page's wasm module, fetched and compiled once for every sandbox on the page and
 * sent to each one's worker (a worker of its own would fetch its own copy: two sandboxes
 * downloaded it twice). Compiling streams off the main thread. Null when it cannot be
 * compiled here; each worker then fetches the module itself and says what went wrong.
 */
function pageModule() {
  compiledModule ??= (async () => {
    try {
      return await WebAssembly.compileStreaming(fetch(WASM_URL));
    } catch {
      // A server that does not send application/wasm (or no compileStreaming): compile the bytes.
      const response = await fetch(WASM_URL);
      if (!response.ok) throw new Error(response.statusText);
      return WebAssembly.compile(await response.arrayBuffer());
    }
  })().catch(() => null);
  return compiledModule;
}

/** The element's canvases by the names the worker draws them under. */
const CANVAS_NAMES = ["boundary0", "boundary1", "loss", "acc", "contour0", "surface3d0", "slice0",
  "contour1", "surface3d1", "slice1", "interp", "lambda", "spectrum"];

// ---------------------------------------------------------------------------
// The controls panel, built from the settings schema the worker sends
// (crates/core/src/settings.rs: label, group, kind, range or options, help, note).

/**
 * The control for one declared setting: a select, a slider, a number field
 * (with a log-scale slider where declared) or a text field.
 * @param {any} s one entry of settingsSpecJson().settings
 */
function controlOf(s) {
  const base = { name: s.name, label: s.label, help: s.note, title: s.help };
  const k = s.kind;
  if (k.type === "choice") return { ...base, kind: "select", options: k.options };
  if (k.type === "text") return { ...base, kind: "text", placeholder: k.placeholder };
  const c = k.control;
  if (c.type === "slider") return { ...base, kind: "range", min: k.min, max: k.max, step: c.step, live: c.live };
  if (c.type === "log_slider") return { ...base, kind: "number", min: k.min, max: k.max, step: "any", log: [c.from, c.to] };
  return { ...base, kind: "number", min: k.min, max: k.max, step: k.integer ? 1 : "any" };
}

const TEMPLATE = `
<div class="fm" part="root" hidden>
  <div class="fm-fatal" role="alert" hidden></div>
  <ul class="fm-messages" role="status" hidden></ul>
  <div class="fm-toolbar">
    <button type="button" class="fm-play fm-primary">▶ Play</button>
    <button type="button" class="fm-step" title="Train ${STEP_BUTTON_STEPS} steps on both sides">Step ${STEP_BUTTON_STEPS}</button>
    <button type="button" class="fm-reset" title="Back to step 0: same data, same initial weights">↺ Reset</button>
    <label class="fm-inline">Speed
      <select name="speed" title="Training steps per animation frame">
        ${SPEEDS.map((s) => `<option value="${s}">${s === "max" ? "max" : s + "/frame"}</option>`).join("")}
      </select>
    </label>
    <label class="fm-inline"><input type="checkbox" name="show-ood" checked> OOD test points</label>
    <span class="fm-status" aria-live="polite"></span>
    <span class="fm-backend" title="Where the networks are trained"></span>
    <details class="fm-share">
      <summary>Export / import</summary>
      <div class="fm-share-menu">
        <button type="button" class="fm-export-run" title="The run record (JSON) of flatminima train --out: settings, data, weights, curves">Run record (JSON)</button>
        <button type="button" class="fm-export-curves">Curves (CSV)</button>
        <button type="button" class="fm-export-png">Pictures (PNG)</button>
        <button type="button" class="fm-export-cli" title="Copy the command line that trains these settings natively">Command line</button>
        <label class="fm-import">Import a run record <input type="file" name="import" accept=".json,application/json"></label>
        <button type="button" class="fm-clear-pinned" title="Forget the imported weights and points; start from the settings alone">Clear imported data</button>
        <output class="fm-share-out" aria-live="polite"></output>
        <p class="fm-pinned" hidden></p>
      </div>
    </details>
    <details class="fm-mydata">
      <summary>Your own data</summary>
      <div class="fm-share-menu">
        <label class="fm-inline">Class <select name="mydata-class"><option value="0">1</option><option value="1">2</option></select></label>
        <label class="fm-inline">As <select name="mydata-split" title="A training point, or an OOD test point: the run's OOD set is then your OOD points (the shift no longer changes it)">
          <option value="train">training point</option><option value="ood">OOD test point</option></select></label>
        <button type="button" class="fm-mydata-add" aria-pressed="false" title="Then click a decision panel to place a point of that class, as a training or an OOD test point">Add points by clicking: off</button>
        <button type="button" class="fm-mydata-clear">Back to the data set</button>
        <button type="button" class="fm-mydata-save">Save as CSV</button>
        <label class="fm-import">Load CSV (x,y,class[,split]) <input type="file" name="mydata-load" accept=".csv,text/csv"></label>
        <output class="fm-mydata-out" aria-live="polite"></output>
      </div>
    </details>
  </div>
  <div class="fm-body">
    <form class="fm-controls" hidden></form>
    <div class="fm-main">
      <div class="fm-panels">
        ${["left", "right"].map((side, i) => `
        <figure class="fm-panel" data-side="${side}">
          <figcaption><span class="fm-swatch fm-side-${i}"></span><span class="fm-side-name">${side === "left" ? "Left" : "Right"}</span>
            <span class="fm-label"></span></figcaption>
          <div class="fm-canvas-box">
            <canvas class="fm-boundary" aria-label="${side} decision boundary"></canvas>
            <div class="fm-diverged" hidden><p class="fm-diverged-text"></p><p class="fm-diverged-hint">Lower the learning rate, then Reset.</p></div>
          </div>
          <div class="fm-quick"></div>
          <label class="fm-inline fm-show">Panel shows
            <select name="show-${i}" title="The weights now, the side's weight average (set Weight average in the settings) or its ensemble (train one below)">
              <option value="weights">the weights now</option><option value="average">the weight average</option><option value="ensemble">the ensemble</option>
            </select></label>
        </figure>`).join("")}
      </div>
      <div class="fm-legend"></div>
      <div class="fm-curves">
        <div class="fm-curve-legend">
          <span><span class="fm-line fm-side-0"></span><span class="fm-legend-left">Left</span></span>
          <span><span class="fm-line fm-side-1"></span><span class="fm-legend-right">Right</span></span>
          <span class="fm-sep"></span>
          <span><span class="fm-line fm-solid"></span>train</span>
          <span><span class="fm-line fm-dashed"></span>ID test</span>
          <span><span class="fm-line fm-dotted"></span>OOD test</span>
        </div>
        <div class="fm-curve-row">
          <div class="fm-curve-box"><canvas class="fm-loss" aria-label="loss curves"></canvas></div>
          <div class="fm-curve-box"><canvas class="fm-acc" aria-label="accuracy curves"></canvas></div>
        </div>
      </div>
      <table class="fm-table fm-metrics-table">
        <thead><tr><th scope="col"><span class="fm-sr">Metric</span></th><th scope="col" class="fm-th-left">Left</th><th scope="col" class="fm-th-right">Right</th></tr></thead>
        <tbody></tbody>
      </table>
      <section class="fm-extras" aria-label="Other solutions of a side: ensemble and rescaling">
        <div class="fm-extras-form">
          <label class="fm-inline">Side <select name="extra-side"><option value="0">Left</option><option value="1">Right</option></select></label>
          <label class="fm-inline">Members <input type="number" name="ensemble-k" min="2" max="${ENSEMBLE_MAX}" value="${ENSEMBLE_K}"></label>
          <button type="button" class="fm-ensemble-run" title="Train this side again from seeds seed+1, seed+2, ... (each for the side's steps) and average the members' predicted probabilities (a deep ensemble)">Train an ensemble</button>
          <progress class="fm-ensemble-progress" max="1" value="0" hidden aria-label="ensemble progress"></progress>
          <label class="fm-inline">Layer <select name="rescale-layer"></select></label>
          <label class="fm-inline">α <input type="number" name="rescale-alpha" min="0.001" max="1000" step="any" value="${RESCALE_ALPHA}"></label>
          <button type="button" class="fm-rescale-run">Rescale (Dinh)</button>
        </div>
        <p class="fm-extras-out" aria-live="polite"></p>
      </section>
      <div class="fm-study">
        <button type="button" class="fm-study-run" title="Train both sides from ${STUDY_REPLICAS} seeds each (same data; seed i shares its initial weights and batches across sides) and compare their OOD accuracy">Study: ${STUDY_REPLICAS} seeds per side</button>
        <progress class="fm-study-progress" max="1" value="0" hidden aria-label="study progress"></progress>
        <span class="fm-study-result" aria-live="polite">Is one run luck? Train ${2 * STUDY_REPLICAS} networks (${STUDY_STEPS} steps each) and see.</span>
      </div>
      <section class="fm-grid" aria-label="Study: does flatness predict OOD accuracy?">
        <h3>Study: does flatness predict OOD accuracy?</h3>
        <p class="fm-grid-help">Trains both sides with these settings on several data draws and seeds, optionally over a grid of
          settings, measures every run (sharpness, train / ID / OOD accuracy) and says what the numbers support.</p>
        <div class="fm-grid-form">
          <span class="fm-grid-axes">${[0, 1, 2].map((i) => `<span class="fm-grid-axis"><select name="grid-axis-${i}" aria-label="axis ${i + 1}: a setting to vary"><option value="">(no axis)</option></select>
            <input name="grid-values-${i}" placeholder="values, e.g. 0.01,0.1,0.5" aria-label="axis ${i + 1}: values, comma-separated"></span>`).join("")}</span>
          <label class="fm-inline">Data draws <input type="number" name="grid-draws" min="1" max="256" value="${GRID_DRAWS}"></label>
          <label class="fm-inline">Seeds per draw <input type="number" name="grid-seeds" min="1" max="256" value="${GRID_SEEDS}"></label>
          <label class="fm-inline">Stop <select name="grid-stop"><option value="steps">after the page's steps</option><option value="loss">at a train loss of (matched loss)</option></select></label>
          <input type="number" name="grid-target" min="0" step="any" value="${GRID_TARGET}" aria-label="target train loss" hidden>
          <button type="button" class="fm-grid-run fm-primary">Study</button>
          <button type="button" class="fm-grid-cancel" hidden>Cancel</button>
          <progress class="fm-grid-progress" max="1" value="0" hidden aria-label="study progress"></progress>
          <span class="fm-grid-status" aria-live="polite"></span>
        </div>
        <div class="fm-grid-results" hidden>
          <div class="fm-grid-view">
            <label class="fm-inline">Sharpness <select name="grid-measure">${GRID_MEASURES.map(([k, t]) => `<option value="${k}">${t}</option>`).join("")}</select></label>
            <label class="fm-inline">Colour by <select name="grid-colour"><option value="side">side</option><option value="draw">data draw</option></select></label>
            <label class="fm-inline"><input type="checkbox" name="grid-matched"> matched loss</label>
          </div>
          <div class="fm-grid-plots">
            <figure class="fm-grid-scatter"><figcaption class="fm-grid-scatter-title"></figcaption><svg class="fm-grid-scatter-svg" viewBox="0 0 420 300" role="img"></svg>
              <div class="fm-grid-legend"></div></figure>
            <figure class="fm-grid-hist"><figcaption class="fm-grid-hist-title"></figcaption><svg class="fm-grid-hist-svg" viewBox="0 0 420 300" role="img"></svg></figure>
          </div>
          <p class="fm-grid-verdict" aria-live="polite"></p>
          <ul class="fm-grid-warnings"></ul>
        </div>
      </section>
      <section class="fm-landscape" aria-label="Loss landscape and sharpness">
        <div class="fm-land-toolbar">
          <h3>Loss landscape</h3>
          <label class="fm-inline">Directions
            <select name="directions" title="The plane through each solution that the surfaces show">
              <option value="random">random (filter-normalised)</option>
              <option value="hessian">top-2 Hessian eigenvectors</option>
              <option value="pca">PCA of the trajectory</option>
            </select>
          </label>
          <label class="fm-inline">Surface of
            <select name="surface"><option value="train">train loss</option><option value="ood">OOD test loss</option></select>
          </label>
          <progress class="fm-land-progress" max="1" value="0" aria-label="landscape progress"></progress>
          <span class="fm-land-status" aria-live="polite"></span>
        </div>
        <div class="fm-land-sides">
          ${["left", "right"].map((side, i) => `
          <figure class="fm-land-side" data-side="${side}">
            <figcaption><span class="fm-swatch fm-side-${i}"></span><span class="fm-land-label">${side === "left" ? "Left" : "Right"}</span>
              <span class="fm-land-readout"></span></figcaption>
            <div class="fm-land-pair">
              <div class="fm-square-box"><canvas class="fm-contour" aria-label="${side} loss surface, contour view"></canvas></div>
              <div class="fm-square-box"><canvas class="fm-surface3d" tabindex="0" aria-label="${side} loss surface in 3D: drag or use the arrow keys to rotate"></canvas></div>
            </div>
            <div class="fm-slice-box"><canvas class="fm-slice" aria-label="${side} 1D slice: train and OOD loss along d1"></canvas></div>
          </figure>`).join("")}
        </div>
        <div class="fm-land-row">
          <figure><figcaption>From the left solution (t = 0) to the right one (t = 1)</figcaption>
            <div class="fm-slice-box"><canvas class="fm-interp" aria-label="interpolation between the two solutions"></canvas></div></figure>
          <figure><figcaption>λ<sub>max</sub> over training; dashed 2/lr, dotted (2+2β)/lr (edge of stability)</figcaption>
            <div class="fm-slice-box"><canvas class="fm-lambda" aria-label="largest Hessian eigenvalue over training"></canvas></div></figure>
          <figure><figcaption>Hessian eigenvalues (histogram; updated while paused)</figcaption>
            <div class="fm-slice-box"><canvas class="fm-spectrum" aria-label="Hessian eigen-spectrum of both sides"></canvas></div></figure>
        </div>
        <table class="fm-table fm-sharp-table">
          <thead><tr><th scope="col">Sharpness (train, 256 points; bold = flatter by that measure)</th><th scope="col" class="fm-th-left">Left</th><th scope="col" class="fm-th-right">Right</th></tr></thead>
          <tbody></tbody>
        </table>
        <p class="fm-land-help">Each surface is the loss over a plane through that side's current solution (black dot);
          the white line is the training path projected onto it, red crosses are SAM's perturbed points w + ε.
          Colours use one log scale for both sides. A flat basin keeps a low loss far from the dot;
          compare how much the <em>OOD</em> loss rises around each solution. Flatness does not always predict
          the OOD result: the table and curves show what actually happens here.</p>
      </section>
    </div>
  </div>
</div>`;

const ROWS = [
  ["Train loss", "train_loss", "loss"], ["ID test loss", "id_loss", "loss"], ["OOD test loss", "ood_loss", "loss"],
  ["Train accuracy", "train_acc", "acc"], ["ID test accuracy", "id_acc", "acc"], ["OOD test accuracy", "ood_acc", "acc"],
  ["OOD gap (ID − OOD accuracy)", "ood_gap", "gap"],
];

const SHARP_ROWS = [
  ["λ_max (power iteration)", "lambda_max"], ["edge of stability (λ_max threshold)", "edge_of_stability"], ["Hessian trace (Hutchinson)", "trace"],
  ["ε-sharpness (Keskar, %)", "eps_sharpness"], ["ρ-sharpness (worst case, ρ of SAM)", "rho_sharpness"],
  ["adaptive sharpness", "adaptive_sharpness"], ["average sharpness (Gaussian)", "average_sharpness"],
];
const formatNumber = (v) => (v == null || !Number.isFinite(v) ? "–" : Math.abs(v) >= 1000 || (Math.abs(v) < 0.001 && v !== 0) ? v.toExponential(2) : v.toPrecision(3));

const formatLoss = (v) => (v == null ? "–" : v >= 100 ? v.toFixed(0) : v >= 0.01 ? v.toFixed(3) : v.toExponential(1));
const formatAcc = (v) => (v == null ? "–" : (100 * v).toFixed(1) + "%");
const formatGap = (v) => (v == null ? "–" : (v >= 0 ? "" : "−") + (100 * Math.abs(v)).toFixed(1) + " pts");
/**
 * The setting names listed in attribute `attr` (comma-separated); unknown names
 * are reported in `problems` and ignored.
 * @param {HTMLElement} el @param {string} attr @param {string[]} problems
 * @returns {Set<string>}
 */
function settingList(el, attr, problems) {
  const names = (el.getAttribute(attr) ?? "").split(",").map((n) => n.trim()).filter(Boolean);
  const unknown = names.filter((n) => !SETTINGS.includes(n));
  if (unknown.length) problems.push(`${attr}: no setting named ${unknown.map((n) => `"${n}"`).join(", ")}; those are ignored`);
  return new Set(names.filter((n) => SETTINGS.includes(n)));
}

/**
 * Points from CSV text: `x,y,class` or `x,y,class,split` per line (split
 * "train" or "ood"; missing: train; a header line is skipped). Throws naming
 * the first line that is not two numbers, a class and a split.
 * @param {string} text
 * @returns {import("./protocol.js").MyPoint[]}
 */
function parsePointsCsv(text) {
  /** @type {import("./protocol.js").MyPoint[]} */
  const points = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const cells = line.split(",").map((c) => c.trim());
    const header = i === 0 && cells.slice(0, 3).some((c) => c !== "" && Number.isNaN(Number(c)));
    if (!line.trim() || header) return;
    const [x, y, label] = cells.slice(0, 3).map(Number);
    const split = (cells[3] ?? "").toLowerCase() || "train";
    if (cells.length < 3 || ![x, y].every(Number.isFinite) || !Number.isInteger(label) || label < 0 || (split !== "train" && split !== "ood")) {
      throw new Error(`line ${i + 1} ("${line}"): expected x,y,class[,split] (two numbers, a class number from 0, and train or ood)`);
    }
    points.push(split === "ood" ? [x, y, label, "ood"] : [x, y, label]);
  });
  return points;
}

/** "5 training points and 3 OOD test points of your own; …" @param {import("./protocol.js").MyPoint[]} points */
function pointsSummary(points) {
  const ood = points.filter((p) => p[3] === "ood").length, train = points.length - ood;
  const n = (/** @type {number} */ k, /** @type {string} */ what) => `${k} ${what}${k === 1 ? "" : "s"}`;
  return `${n(train, "training point")} and ${n(ood, "OOD test point")} of your own` +
    `${train ? "" : " (training on the data set's points)"}${ood ? "" : " (scored on the shifted OOD set)"}; training from step 0.`;
}

const sideName = (/** @type {number} */ side) => (side ? "Right" : "Left");
const pct = (/** @type {number} */ v) => (100 * v).toFixed(1);

/** The sentence the ensemble button leaves: the ensemble's numbers beside its members' mean. */
function ensembleText(/** @type {number} */ side, /** @type {any} */ r) {
  const mean = r.member_mean;
  return `${sideName(side)}: an ensemble of ${r.members} members (${r.steps} steps each${r.diverged ? `, ${r.diverged} diverged` : ""}): ` +
    `ID accuracy ${pct(r.id_acc)}%, OOD accuracy ${pct(r.ood_acc)}% (OOD loss ${formatLoss(r.ood_loss)}); ` +
    `its members alone: ID ${pct(mean.id_acc)}%, OOD ${pct(mean.ood_acc)}% on average ` +
    `(OOD from ${pct(Math.min(...r.member_ood_acc))}% to ${pct(Math.max(...r.member_ood_acc))}%). The panel shows the ensemble's boundary.`;
}

/** The sentence Dinh's rescaling leaves: the function (same) and the sharpness (changed), from the measured numbers. */
function rescaleText(/** @type {any} */ r) {
  const [b, a] = [r.before, r.after];
  const ratio = (/** @type {number} */ x, /** @type {number} */ y) => (x > 0 && y > 0 ? ` (×${formatNumber(y / x)})` : "");
  const same = ["train_acc", "id_acc", "ood_acc"].every((k) => b[k] === a[k]);
  return `${r.side === "left" ? "Left" : "Right"} (${r.label}) at step ${r.step}: layer ${r.layer + 1} × ${r.alpha}, layer ${r.layer + 2} ÷ ${r.alpha}. ` +
    `The function: largest logit change ${formatNumber(r.max_logit_change)}; train / ID / OOD accuracy ${pct(b.train_acc)} / ${pct(b.id_acc)} / ${pct(b.ood_acc)}% before, ` +
    `${pct(a.train_acc)} / ${pct(a.id_acc)} / ${pct(a.ood_acc)}% after${same ? " (the same)" : ""}. ` +
    `λ_max ${formatNumber(b.lambda_max)} → ${formatNumber(a.lambda_max)}${ratio(b.lambda_max, a.lambda_max)}, ` +
    `trace ${formatNumber(b.trace)} → ${formatNumber(a.trace)}${ratio(b.trace, a.trace)}, ` +
    `adaptive sharpness ${formatNumber(b.adaptive_sharpness)} → ${formatNumber(a.adaptive_sharpness)}. ` +
    "Training goes on from the rescaled weights with the optimiser's state cleared.";
}

/**
 * The solutions the tables show besides the two sides: each side's weight
 * average (once it has metrics) and ensemble (once trained), as
 * `{title, m, sharpness}` columns.
 * @param {any} m a metrics snapshot
 */
function extraColumns(m) {
  const columns = [];
  for (const [i, name] of ["left", "right"].entries()) {
    const a = m[name].average;
    if (a && a.n_averaged > 0 && a.train_loss != null) columns.push({ title: `${sideName(i)}: ${a.kind} average (${a.n_averaged} weights)`, m: a, sharpness: a.sharpness });
    const en = m[name].ensemble;
    if (en) columns.push({ title: `${sideName(i)}: ensemble of ${en.members}`, m: en, sharpness: null });
  }
  return columns;
}

const escapeHtml = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

class FlatminimaSandbox extends HTMLElement {
  static get observedAttributes() {
    return [...SETTINGS, ...UI_ATTRIBUTES];
  }

  /** @type {Worker | null} this element's worker (null before connecting, after removal) */
  #worker = null;
  /** Ends the worker once the element has left the page (not when it is only moved). */
  #retire = 0;
  #root;
  /** @type {any} */
  #els = {};
  #palette = { classes: [], sides: [] };
  /** The page's study limits, from the worker's schema (crates/core/src/study.rs); the worker checks them too. */
  #limits = { replicas: Infinity, steps: Infinity };
  /** Set when the worker crashed or could not start: the element shows this and stops. */
  #fatal = "";
  #playing = false;
  #everStarted = false;
  #settingsPending = true;
  #flushQueued = false;
  #messages = { settings: [], ui: [], backend: [] };
  /** Your own training and OOD points, as the worker last confirmed them. @type {import("./protocol.js").MyPoint[]} */
  #myPoints = [];
  /** Classroom mode: settings whose controls are locked or hidden (attributes `locked`, `hidden-settings`). */
  #classroom = { locked: new Set(), hidden: new Set() };
  /** Counts settings sent to the worker; its snapshots say which one they show. */
  #revision = 0;
  /** The latest snapshot from the worker, and what the latest settings turned into. */
  #metrics = null;
  #metricsRevision = -1;
  #landscape = null;
  #memory = { heap: 0, live: 0 };
  /** @type {import("./protocol.js").SettingsEcho | null} */
  #echo = null;
  #lastEvent = -Infinity;
  /** Requests waiting for the worker's reply, by id. */
  #pending = new Map();
  #nextId = 1;
  /** The study under way: its request id (a newer one replaces it). */
  #studyId = 0;
  /** The grid study under way (request id), and the last finished one's JSON. */
  #gridId = 0;
  /** @type {any} */
  #gridResult = null;
  /** @type {Promise<any> | null} the study view module */
  #studyView = null;
  #backend = { choice: "", backend: "cpu", note: "" };
  /** The view state the worker has been told. */
  #view = {
    speed: DEFAULT_SPEED, showOod: true, landscape: true, directions: "random", surface: "train",
    // Unknown (false) until the IntersectionObserver's first report: landscape work waits for it.
    visible: typeof IntersectionObserver === "undefined", yaw: 0.6, pitch: 0.45, dpr: 1,
  };
  #legendHtml = "";
  /** @type {ResizeObserver | null} */
  #resize = null;
  /** @type {IntersectionObserver | null} */
  #visibility = null;
  /** @type {Map<string, HTMLCanvasElement>} */
  #canvases = new Map();

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: "open" });
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = CSS_URL.href;
    this.#root.append(link);
    const template = document.createElement("template");
    template.innerHTML = TEMPLATE;
    this.#root.append(template.content);
    const q = (s) => this.#root.querySelector(s);
    this.#els = {
      root: q(".fm"), fatal: q(".fm-fatal"), messages: q(".fm-messages"), play: q(".fm-play"), step: q(".fm-step"),
      reset: q(".fm-reset"), speed: q('select[name="speed"]'), ood: q('input[name="show-ood"]'),
      status: q(".fm-status"), backend: q(".fm-backend"), controls: q(".fm-controls"), legend: q(".fm-legend"),
      panels: [...this.#root.querySelectorAll(".fm-panel")].map((p) => ({
        canvas: p.querySelector("canvas"), label: p.querySelector(".fm-label"), quick: p.querySelector(".fm-quick"),
        diverged: p.querySelector(".fm-diverged"), divergedText: p.querySelector(".fm-diverged-text"),
      })),
      loss: q(".fm-loss"), acc: q(".fm-acc"), tbody: q(".fm-metrics-table tbody"),
      landscape: q(".fm-landscape"), directions: q('select[name="directions"]'), surface: q('select[name="surface"]'),
      landProgress: q(".fm-land-progress"), landStatus: q(".fm-land-status"),
      landSides: [...this.#root.querySelectorAll(".fm-land-side")].map((f) => ({
        contour: f.querySelector(".fm-contour"), surface3d: f.querySelector(".fm-surface3d"), slice: f.querySelector(".fm-slice"),
        label: f.querySelector(".fm-land-label"), readout: f.querySelector(".fm-land-readout"),
      })),
      interp: q(".fm-interp"), lambda: q(".fm-lambda"), spectrum: q(".fm-spectrum"), sharpBody: q(".fm-sharp-table tbody"),
      thLeft: q(".fm-th-left"), thRight: q(".fm-th-right"), legendLeft: q(".fm-legend-left"), legendRight: q(".fm-legend-right"),
      exportRun: q(".fm-export-run"), exportCurves: q(".fm-export-curves"), exportPng: q(".fm-export-png"),
      exportCli: q(".fm-export-cli"), importFile: q('input[name="import"]'), clearPinned: q(".fm-clear-pinned"),
      shareOut: q(".fm-share-out"), pinned: q(".fm-pinned"),
      mydataClass: q('select[name="mydata-class"]'), mydataAdd: q(".fm-mydata-add"), mydataClear: q(".fm-mydata-clear"),
      mydataSplit: q('select[name="mydata-split"]'), mydataSave: q(".fm-mydata-save"), mydataLoad: q('input[name="mydata-load"]'), mydataOut: q(".fm-mydata-out"),
      studyRun: q(".fm-study-run"), studyProgress: q(".fm-study-progress"), studyResult: q(".fm-study-result"),
      grid: q(".fm-grid"), gridRun: q(".fm-grid-run"), gridCancel: q(".fm-grid-cancel"), gridProgress: q(".fm-grid-progress"),
      gridStatus: q(".fm-grid-status"), gridResults: q(".fm-grid-results"), gridScatter: q(".fm-grid-scatter-svg"),
      gridScatterTitle: q(".fm-grid-scatter-title"), gridLegend: q(".fm-grid-legend"), gridHist: q(".fm-grid-hist-svg"),
      gridHistTitle: q(".fm-grid-hist-title"), gridVerdict: q(".fm-grid-verdict"), gridWarnings: q(".fm-grid-warnings"),
      shows: [q('select[name="show-0"]'), q('select[name="show-1"]')], extraSide: q('select[name="extra-side"]'),
      ensembleK: q('input[name="ensemble-k"]'), ensembleRun: q(".fm-ensemble-run"), ensembleProgress: q(".fm-ensemble-progress"),
      rescaleLayer: q('select[name="rescale-layer"]'), rescaleAlpha: q('input[name="rescale-alpha"]'), rescaleRun: q(".fm-rescale-run"),
      extrasOut: q(".fm-extras-out"), metricsHead: q(".fm-metrics-table thead tr"), sharpHead: q(".fm-sharp-table thead tr"),
    };
    const e = this.#els;
    const named = [e.panels[0].canvas, e.panels[1].canvas, e.loss, e.acc,
      ...e.landSides.flatMap((s) => [s.contour, s.surface3d, s.slice]), e.interp, e.lambda, e.spectrum];
    CANVAS_NAMES.forEach((name, i) => this.#canvases.set(name, named[i]));
    // Show the element once its stylesheet is in (no flash of unstyled content).
    link.addEventListener("load", () => { this.#els.root.hidden = false; });
    link.addEventListener("error", () => { this.#els.root.hidden = false; });
    this.#els.controls.addEventListener("submit", (e) => e.preventDefault());
    this.#wireToolbar();
  }

  connectedCallback() {
    clearTimeout(this.#retire);
    this.#resize ??= new ResizeObserver(() => this.#fitCanvases());
    this.#visibility ??= new IntersectionObserver((entries) => {
      this.#sendView({ visible: entries.some((e) => e.isIntersecting) });
    });
    this.#visibility.observe(this);
    for (const c of this.#canvases.values()) this.#resize.observe(c);
    if (this.#fatal) return;
    if (!this.#worker) this.#start();
    if (this.hasAttribute("autoplay") && !this.#everStarted) this.play();
  }

  disconnectedCallback() {
    this.#resize?.disconnect();
    this.#visibility?.disconnect();
    // Moving the element (out and back in, in one task) keeps its runs; leaving the page ends them.
    this.#retire = setTimeout(() => { if (!this.isConnected) this.#stop(); }, 0);
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue === newValue) return;
    if (UI_ATTRIBUTES.includes(name)) {
      this.#applyUiAttributes();
      return;
    }
    this.#settingsPending = true;
    // Many attributes often change together (a page applying its URL): one rebuild for all.
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => { this.#flushQueued = false; this.#flushSettings(); });
    }
  }

  // ----- public API -------------------------------------------------------

  /** Starts (or resumes) training in the worker. Resolves once the worker has started. */
  play() {
    this.#everStarted = true;
    if (this.#fatal) return Promise.resolve(null);
    this.#flushSettings();
    if (this.#metrics && this.#metrics.finished && this.#metricsRevision === this.#revision) {
      this.#setStatus(this.#finishedText());
      return Promise.resolve(this.#metrics);
    }
    this.#playing = true;
    this.#updatePlayButton();
    this.#post({ type: "play" });
    return this.settled().catch(() => null);
  }

  /**
   * Stops training (the landscape and sharpness views then catch up). Resolves,
   * to the metrics, once the worker has stopped.
   */
  pause() {
    this.#playing = false;
    this.#updatePlayButton();
    this.#post({ type: "pause" });
    return this.settled().catch(() => null);
  }

  /**
   * `n` optimiser steps on both sides (default 1, at most 100,000). Resolves to
   * the metrics after them (metrics() returns the same from then on). The page
   * stays responsive meanwhile.
   */
  step(n = 1) {
    this.#flushSettings();
    const count = Math.max(0, Math.min(MAX_STEP_CALL, Math.floor(Number(n) || 0)));
    return this.#request({ type: "step", n: count });
  }

  /** Both runs back to step 0 (same data and initial weights). Resolves once done. */
  reset() {
    this.#flushSettings();
    this.#post({ type: "reset", revision: ++this.#revision });
    return this.settled();
  }

  /**
   * Resolves (to the metrics) once the worker has applied everything asked of
   * the element before this call: attributes, play/pause, steps, resets. Then
   * metrics(), landscape(), settingsQuery() and configJson() reflect them.
   */
  settled() {
    this.#flushSettings();
    return this.#request({ type: "settle" }).then(() => this.#metrics);
  }

  /** The latest metrics the worker sent, as plain JSON (see the README), or null before the first. */
  metrics() {
    return this.#metrics;
  }

  /**
   * What the landscape view shows, as plain JSON (null before the first one):
   * {kind, grid, points, note, progress, complete, steps, left, right}; each side
   * has step, eigenvalues or explained_variance of its plane, and train/ood
   * {at_solution, mean_rise} (the mean of L - L(w) over the surface).
   */
  landscape() {
    return this.#landscape;
  }

  /**
   * Trains `replicas` seeds of each side (default 128: twice as many networks)
   * for `steps` steps each (default 1000) with the current settings, and
   * resolves to the report: {backend, replicas, steps, ms, left, right, paired}
   * (see the README). On the GPU when it is in use, else on the CPU in the
   * worker. Rejects on counts out of range (or too many parameters in all), and
   * with an Error named "AbortError" when a newer study or new runs replace it.
   *
   * With any of `axes`, `dataSeeds`, `seeds`, `untilTrainLoss` it is a grid
   * study instead (the study panel's): `axes` ("lr=0.01,0.1; batch-size=8,32",
   * or {lr: [0.01, 0.1]}) over the current settings, `dataSeeds` data draws x
   * `seeds` seeds per draw (defaults 4 and 2), the page's steps, or with
   * `untilTrainLoss` the matched-loss rule (checked every `checkEvery` = 10
   * steps); it resolves to `flatminima study`'s JSON (spec, cells, runs,
   * stats) plus `ms`, `longest_piece_ms` and `workers`, shown in the panel. On
   * the CPU, split over `workers` workers (default: one per core, leaving one
   * to the page where there are more than two, at most four); the result does
   * not depend on how many.
   */
  async study(options = {}) {
    if (["axes", "dataSeeds", "seeds", "untilTrainLoss", "checkEvery", "workers"].some((k) => k in options)) return this.#studyGrid(options);
    const { replicas = STUDY_REPLICAS, steps = STUDY_STEPS } = options;
    for (const name of /** @type {const} */ (["replicas", "steps"])) {
      const value = { replicas, steps }[name], max = this.#limits[name];
      if (!Number.isInteger(value) || value < 1 || value > max) throw new RangeError(`${name}: expected an integer from 1 to ${max}, got ${value}`);
    }
    if (this.#fatal) throw new Error(this.#fatal);
    this.#flushSettings();
    const reply = this.#request({ type: "study", replicas, steps });
    this.#studyId = this.#nextId - 1;
    this.#showStudy({ running: true, progress: 0, backend: this.#backend.backend.toUpperCase(), replicas });
    const report = await reply;
    this.#showStudy(report);
    return report;
  }

  /**
   * The runs as a run record: the JSON `flatminima train --out` writes (config with
   * the initial weights pinned, the data, both sides' parameters and histories).
   * @returns {Promise<string>}
   */
  exportRun() {
    this.#flushSettings();
    return this.#request({ type: "export", what: "record" });
  }

  /**
   * Both sides' logged metrics as CSV (side, label, step, lr, losses, accuracies, gradient norm).
   * @returns {Promise<string>}
   */
  exportCurves() {
    this.#flushSettings();
    return this.#request({ type: "export", what: "curves" });
  }

  /**
   * Restarts from a run record (text of a JSON file from exportRun() or
   * `flatminima train --out`): its settings become the element's attributes, and
   * its initial weights and training points stay pinned through later settings
   * changes until clearPinned(). Training it for the record's steps gives the
   * record's run bit for bit. Resolves to the problems (what did not carry over);
   * rejects with a message when the text is not a run record.
   * @param {string} text
   * @returns {Promise<string[]>}
   */
  async importRun(text) {
    this.#flushSettings();
    // Paused first: the imported run starts at step 0 and waits for Play or step().
    this.pause();
    const imported = /** @type {import("./protocol.js").Imported} */ (await this.#request({ type: "import", revision: ++this.#revision, record: String(text) }));
    for (const name of SETTINGS) this.removeAttribute(name);
    for (const [name, value] of new URLSearchParams(imported.settings)) {
      if (SETTINGS.includes(name)) this.setAttribute(name, value);
    }
    await this.settled();
    this.#showPinned(imported.problems);
    return imported.problems;
  }

  /** Drops imported (pinned) initial weights and training points; the runs restart from the settings. */
  async clearPinned() {
    await this.#request({ type: "clear-pinned", revision: ++this.#revision });
    this.#showPinned([]);
  }

  /** The command line that trains these settings natively (`flatminima compare --set ...`). */
  cliCommand() {
    const sets = [...new URLSearchParams(this.settingsQuery())]
      .filter(([name]) => SETTINGS.includes(name))
      .map(([name, value]) => ` --set ${name}=${/^[\w.,:+-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`}`);
    return `flatminima compare${sets.join("")}`;
  }

  /** Every picture the element shows now, stacked into one PNG. @returns {Promise<Blob>} */
  async picturesPng() {
    const canvases = [...this.#root.querySelectorAll("canvas")].filter((c) => c.width > 0 && c.height > 0 && c.getClientRects().length > 0);
    const width = Math.max(1, ...canvases.map((c) => c.width));
    const height = Math.max(1, canvases.reduce((h, c) => h + c.height, 0));
    const sheet = new OffscreenCanvas(width, height);
    const ctx = /** @type {OffscreenCanvasRenderingContext2D} */ (sheet.getContext("2d"));
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    let y = 0;
    for (const c of canvases) {
      ctx.drawImage(c, 0, y);
      y += c.height;
    }
    return sheet.convertToBlob({ type: "image/png" });
  }

  /** Says in the share panel what is pinned (imported) and what did not carry over. @param {string[]} problems */
  #showPinned(problems) {
    const note = this.#els.pinned;
    note.textContent = problems.length ? `Imported, with notes: ${problems.join("; ")}` : "";
    note.hidden = problems.length === 0;
  }

  /** The grid study of `study()`: checks the options, runs it in the worker, shows it in the panel. */
  async #studyGrid({ axes = "", dataSeeds = GRID_DRAWS, seeds = GRID_SEEDS, untilTrainLoss = null, checkEvery = GRID_CHECK_EVERY, workers = null, ...rest }) {
    const extra = Object.keys(rest);
    if (extra.length) throw new RangeError(`${extra.join(", ")}: not an option of a grid study (it uses the page's steps); use axes, dataSeeds, seeds, untilTrainLoss, checkEvery, workers`);
    if (workers !== null && !(Number.isInteger(workers) && workers >= 1 && workers <= GRID_MAX_WORKERS)) {
      throw new RangeError(`workers: expected a whole number from 1 to ${GRID_MAX_WORKERS} (or null: one per core), got ${workers}`);
    }
    for (const [name, value] of /** @type {const} */ ([["dataSeeds", dataSeeds], ["seeds", seeds], ["checkEvery", checkEvery]])) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name}: expected a whole number of at least 1, got ${value}`);
    }
    if (untilTrainLoss !== null && !(typeof untilTrainLoss === "number" && untilTrainLoss > 0 && Number.isFinite(untilTrainLoss))) {
      throw new RangeError(`untilTrainLoss: expected a positive number (a mean cross-entropy, e.g. 0.1) or null, got ${untilTrainLoss}`);
    }
    const text = typeof axes === "string" ? axes
      : Object.entries(axes || {}).map(([k, v]) => `${k}=${(Array.isArray(v) ? v : [v]).join(",")}`).join("; ");
    if (this.#fatal) throw new Error(this.#fatal);
    this.#flushSettings();
    this.#studyView ??= import(STUDY_VIEW_URL.href);
    const reply = this.#request({ type: "grid", axes: text, dataSeeds, seeds, untilTrainLoss, checkEvery, workers });
    const id = this.#nextId - 1;
    this.#gridId = id;
    this.#showGridProgress({ progress: 0, runs: 0, total: 0 });
    try {
      this.#gridResult = await reply;
    } catch (err) {
      // A study replaced by a newer one is not a failure: the newer one shows its own progress.
      if (this.#gridId === id) this.#gridDone(`Study stopped: ${errorText(err)}.`);
      throw err;
    }
    this.#gridDone("");
    this.#renderGrid();
    return this.#gridResult;
  }

  /** The non-default settings as a URL query (no "?"), UI attributes included. */
  settingsQuery() {
    const parts = [];
    const q = this.#echo ? this.#echo.query : "";
    if (q) parts.push(q);
    if (this.#view.speed !== DEFAULT_SPEED) parts.push(`speed=${this.#view.speed}`);
    if (!this.#els.ood.checked) parts.push("show-ood=false");
    const backend = this.getAttribute("backend");
    if (backend && backend !== "auto" && BACKENDS.includes(backend)) parts.push(`backend=${backend}`);
    if (!this.#view.landscape) parts.push("landscape=off");
    if (this.#els.directions.value !== DIRECTIONS[0]) parts.push(`directions=${this.#els.directions.value}`);
    if (this.#els.surface.value !== SURFACES[0]) parts.push(`surface=${this.#els.surface.value}`);
    return parts.join("&");
  }

  /** The full run config as JSON (`flatminima train --config` replays it), or null before the worker's first answer. */
  configJson() {
    return this.#echo ? this.#echo.config : null;
  }

  /** Size of this element's wasm heap in bytes (for memory tests), as of the latest snapshot. */
  wasmMemoryBytes() {
    return this.#memory.heap;
  }

  /** Bytes Rust has allocated and not freed (a leak shows here; the heap size only grows), as of the latest snapshot. */
  wasmLiveBytes() {
    return this.#memory.live;
  }

  /** Test hook: a deliberate Rust panic in this element's worker, to check that it shows as an error here. */
  panicForTests() {
    this.#post({ type: "panic" });
  }

  // ----- the worker -------------------------------------------------------

  #start() {
    let worker;
    try {
      worker = startWorker();
    } catch (e) {
      this.#showFatal(`Could not start the sandbox's worker (${errorText(e)}).`);
      return;
    }
    this.#worker = worker;
    pageModule().then((module) => {
      if (this.#worker === worker) worker.postMessage(/** @type {import("./protocol.js").Request} */ ({ type: "module", module }));
    });
    worker.onmessage = (e) => this.#receive(e.data);
    worker.onerror = (e) => {
      e.preventDefault();
      this.#showFatal(`The sandbox's worker failed (${e.message || "it could not be loaded"}). Reload the page to start again.`);
    };
    // Everything the worker needs, in order: it queues these until its wasm module is ready.
    this.#settingsPending = true;
    this.#backend.choice = "";
    this.#applyUiAttributes();
    this.#sendView(this.#view);
    this.#fitCanvases(true);
    this.#flushSettings();
  }

  /** Ends the worker (the element left the page): its runs, studies and memory go with it. */
  #stop() {
    this.#worker?.terminate();
    this.#worker = null;
    this.#playing = false;
    this.#updatePlayButton();
    for (const { reject } of this.#pending.values()) reject(abortError("the element was removed from the page"));
    this.#pending.clear();
  }

  /** @param {import("./protocol.js").Request} message */
  #post(message) {
    if (this.#worker && !this.#fatal) this.#worker.postMessage(message);
  }

  /**
   * Sends a request that the worker answers with a reply of the same id.
   * @param {import("./protocol.js").Ask} message
   * @returns {Promise<any>}
   */
  #request(message) {
    if (this.#fatal) return Promise.reject(new Error(this.#fatal));
    if (!this.#worker) return Promise.reject(abortError("the element is not on the page"));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#post({ ...message, id });
    });
  }

  /** @param {import("./protocol.js").ViewChange} change */
  #sendView(change) {
    const changed = Object.entries(change).some(([k, v]) => this.#view[k] !== v);
    Object.assign(this.#view, change);
    if (changed || change === this.#view) this.#post({ type: "view", view: { ...change } });
  }

  /** @param {import("./protocol.js").Reply} m */
  #receive(m) {
    if (this.#fatal) return;
    switch (m.type) {
      case "ready":
        this.#palette = m.palette;
        this.#buildControls(m.schema);
        this.#limits = { replicas: m.schema.limits.study_replicas, steps: m.schema.limits.study_steps };
        this.#buildGridAxes(m.schema.settings);
        break;
      case "state":
        this.#state(m);
        break;
      case "frame":
        for (const [name, bitmap] of Object.entries(m.bitmaps)) {
          const canvas = this.#canvases.get(name);
          const context = canvas && /** @type {ImageBitmapRenderingContext | null} */ (canvas.getContext("bitmaprenderer"));
          if (context) context.transferFromImageBitmap(bitmap);
          else bitmap.close();
        }
        break;
      case "backend":
        this.#showBackend(m);
        break;
      case "study":
        if (this.#pending.has(this.#studyId)) this.#showStudy({ running: true, ...m });
        break;
      case "grid":
        if (this.#pending.has(this.#gridId)) this.#showGridProgress(m);
        break;
      case "extras":
        this.#els.ensembleProgress.hidden = m.ensemble < 0;
        this.#els.ensembleProgress.value = Math.max(0, m.ensemble);
        break;
      case "reply": {
        const waiting = this.#pending.get(m.id);
        if (!waiting) break;
        this.#pending.delete(m.id);
        if (m.error === undefined) {
          if (m.value && m.value.left && m.value.step !== undefined) this.#metrics = m.value;
          waiting.resolve(m.value);
        } else {
          const error = m.name === "RangeError" ? new RangeError(m.error) : new Error(m.error);
          if (m.name && m.name !== "RangeError") error.name = m.name;
          waiting.reject(error);
        }
        break;
      }
      case "fatal":
        this.#showFatal(m.message);
        break;
    }
  }

  /** @param {import("./protocol.js").State} s */
  #state(s) {
    this.#metrics = s.metrics;
    this.#metricsRevision = s.revision;
    this.#landscape = s.landscape;
    this.#memory = s.memory;
    if (this.#playing && !s.playing && s.metrics && s.metrics.finished) {
      // The run reached its last step: the worker stopped by itself.
      this.#playing = false;
      this.#updatePlayButton();
    }
    if (s.settings) {
      this.#echo = s.settings;
      this.#messages.settings = s.settings.errors.map((e) => `${e.setting}: ${e.message}`);
      this.#renderMessages();
      this.#syncControls();
      if (s.revision === this.#revision) {
        this.dispatchEvent(new CustomEvent("settingschange", { detail: { query: this.settingsQuery() } }));
      }
    }
    this.#els.landProgress.value = s.landscapeProgress;
    this.#updateText();
    if (this.#view.landscape) this.#updateLandscapeText();
    const now = performance.now();
    if (!s.playing || now - this.#lastEvent >= EVENT_EVERY_MS) {
      this.#lastEvent = now;
      this.dispatchEvent(new CustomEvent("metrics", { detail: this.#metrics }));
    }
  }

  // ----- settings ---------------------------------------------------------

  /** Sends pending attribute changes: a new run, or the OOD set moved in place. */
  #flushSettings() {
    if (!this.#settingsPending || !this.#worker || this.#fatal) return;
    this.#settingsPending = false;
    const settings = new URLSearchParams();
    for (const name of SETTINGS) {
      const value = this.getAttribute(name);
      if (value !== null) settings.append(name, value);
    }
    this.#post({ type: "configure", revision: ++this.#revision, query: settings.toString() });
  }

  /** backend, speed, show-ood, controls, autoplay, landscape, directions, surface: the element's own state. */
  #applyUiAttributes() {
    const ui = [];
    const rawBackend = (this.getAttribute("backend") ?? "auto").trim() || "auto";
    if (!BACKENDS.includes(rawBackend)) ui.push(`backend: must be auto, cpu or gpu, got "${rawBackend}"; using auto`);
    const backend = BACKENDS.includes(rawBackend) ? rawBackend : "auto";
    if (backend !== this.#backend.choice && this.#worker) {
      this.#backend.choice = backend;
      this.#post({ type: "backend", choice: /** @type {any} */ (backend) });
    }

    const speed = this.getAttribute("speed");
    if (speed !== null && !SPEEDS.includes(speed.trim())) {
      ui.push(`speed: must be one of ${SPEEDS.join(", ")}, got "${speed}"; using ${DEFAULT_SPEED}`);
    }
    const speedValue = speed !== null && SPEEDS.includes(speed.trim()) ? speed.trim() : DEFAULT_SPEED;
    this.#els.speed.value = speedValue;

    const ood = this.getAttribute("show-ood");
    if (ood !== null && !["true", "false", ""].includes(ood.trim())) {
      ui.push(`show-ood: must be true or false, got "${ood}"; using true`);
    }
    const showOod = ood === null || ood.trim() !== "false";
    this.#els.ood.checked = showOod;
    const landscape = (this.getAttribute("landscape") ?? "on").trim();
    if (!["on", "off", ""].includes(landscape)) ui.push(`landscape: must be on or off, got "${landscape}"; using on`);
    const landscapeOn = landscape !== "off";
    this.#els.landscape.hidden = !landscapeOn;
    for (const [name, allowed, select] of [["directions", DIRECTIONS, this.#els.directions], ["surface", SURFACES, this.#els.surface]]) {
      const raw = this.getAttribute(name);
      const value = raw === null ? allowed[0] : raw.trim();
      if (!allowed.includes(value)) ui.push(`${name}: must be ${allowed.join(", ")}, got "${raw}"; using ${allowed[0]}`);
      select.value = allowed.includes(value) ? value : allowed[0];
    }
    this.#sendView({
      speed: speedValue, showOod, landscape: landscapeOn,
      directions: this.#els.directions.value, surface: this.#els.surface.value,
    });
    this.#els.controls.hidden = !this.hasAttribute("controls");
    this.#els.root.classList.toggle("fm-with-controls", this.hasAttribute("controls"));
    this.#classroom = { locked: settingList(this, "locked", ui), hidden: settingList(this, "hidden-settings", ui) };
    this.#applyClassroom();
    this.#messages.ui = ui;
    this.#renderMessages();
    if (this.#echo) this.dispatchEvent(new CustomEvent("settingschange", { detail: { query: this.settingsQuery() } }));
  }

  #renderMessages() {
    const all = [...this.#messages.settings, ...this.#messages.ui, ...this.#messages.backend];
    const list = this.#els.messages;
    list.replaceChildren(...all.map((text) => {
      const li = document.createElement("li");
      const colon = text.indexOf(":");
      const b = document.createElement("b");
      b.textContent = text.slice(0, colon);
      li.append(b, text.slice(colon));
      return li;
    }));
    list.hidden = all.length === 0;
  }

  // ----- controls ---------------------------------------------------------

  // ----- controls ---------------------------------------------------------

  /**
   * Classroom mode (as in TensorFlow Playground): the settings named in `locked`
   * keep the page author's values (their controls are disabled and say so), those
   * in `hidden-settings` have no control at all. A group left empty disappears.
   */
  #applyClassroom() {
    const { locked, hidden } = this.#classroom;
    for (const row of this.#els.controls.querySelectorAll(".fm-field")) {
      const name = /** @type {HTMLElement} */ (row).dataset.for ?? "";
      row.classList.toggle("fm-locked", locked.has(name));
      /** @type {HTMLElement} */ (row).hidden = hidden.has(name);
      for (const input of row.querySelectorAll("input, select")) {
        /** @type {HTMLInputElement} */ (input).disabled = locked.has(name);
      }
    }
    for (const group of this.#els.controls.querySelectorAll("fieldset")) {
      /** @type {HTMLElement} */ (group).hidden =
        [...group.querySelectorAll(".fm-field")].every((r) => /** @type {HTMLElement} */ (r).hidden);
    }
  }

  /** The controls panel from the settings schema (once: every worker sends the same). */
  #buildControls(schema) {
    const form = this.#els.controls;
    if (form.childElementCount) return;
    const names = schema.settings.map((s) => s.name);
    if ([...names].sort().join() !== [...SETTINGS].sort().join()) {
      console.warn(`flatminima-sandbox: settings list out of date; the wasm module has ${names.join(", ")}`);
    }
    for (const group of schema.groups) {
      const fieldset = document.createElement("fieldset");
      fieldset.innerHTML = `<legend>${escapeHtml(group.title)}</legend>`;
      for (const s of schema.settings.filter((x) => x.group === group.id)) fieldset.append(this.#control(controlOf(s)));
      form.append(fieldset);
    }
    this.#applyClassroom();
  }


  /** One labelled control; changing it sets the attribute of the same name. */
  #control(c) {
    const row = document.createElement("label");
    row.className = "fm-field";
    row.dataset.for = c.name;
    if (c.title) row.title = c.title;
    const title = document.createElement("span");
    title.className = "fm-field-label";
    title.textContent = c.label;
    row.append(title);
    let input;
    if (c.kind === "select") {
      input = document.createElement("select");
      for (const [value, text] of c.options) input.add(new Option(text, value));
    } else {
      input = document.createElement("input");
      input.type = c.kind;
      for (const k of ["min", "max", "step", "placeholder"]) if (c[k] !== undefined) input.setAttribute(k, c[k]);
      if (c.kind === "number") input.inputMode = "decimal";
    }
    input.name = c.name;
    const output = c.kind === "range" ? document.createElement("output") : null;
    const commit = () => {
      if (input.value === "") this.removeAttribute(c.name);
      else this.setAttribute(c.name, input.value);
    };
    if (c.kind === "range") {
      input.addEventListener("input", () => {
        output.textContent = input.value;
        if (c.live) commit();
      });
    }
    input.addEventListener("change", commit);
    const line = document.createElement("span");
    line.className = "fm-field-input";
    line.append(input);
    if (output) line.append(output);
    if (c.log) {
      // A log-scale slider for the number field: 10^min .. 10^max.
      const slider = document.createElement("input");
      slider.type = "range";
      slider.min = String(c.log[0]);
      slider.max = String(c.log[1]);
      slider.step = "0.01";
      slider.className = "fm-log";
      slider.setAttribute("aria-label", `${c.label} (log scale)`);
      slider.addEventListener("input", () => { input.value = String(Number((10 ** Number(slider.value)).toPrecision(2))); });
      slider.addEventListener("change", commit);
      input.addEventListener("input", () => { if (Number(input.value) > 0) slider.value = String(Math.log10(Number(input.value))); });
      line.prepend(slider);
      input.classList.add("fm-log-value");
    }
    row.append(line);
    if (c.help) {
      const help = document.createElement("small");
      help.textContent = c.help;
      row.append(help);
    }
    return row;
  }


  /** Controls show what the run really uses: the attribute, unless it was rejected. */
  #syncControls() {
    const effective = this.#echo ? this.#echo.effective : {};
    const rejected = new Set(this.#messages.settings.map((m) => m.slice(0, m.indexOf(":"))));
    for (const input of this.#els.controls.querySelectorAll("[name]")) {
      const name = input.name;
      if (input.classList.contains("fm-log") || this.#root.activeElement === input) continue;
      const own = this.hasAttribute(name) && !rejected.has(name) ? this.getAttribute(name) : null;
      const value = own ?? (name.endsWith("-optimizer") ? "" : effective[name] ?? "");
      input.value = value;
      const row = input.closest(".fm-field");
      const out = row.querySelector("output");
      if (out) out.textContent = input.value;
      const slider = row.querySelector(".fm-log");
      if (slider && Number(value) > 0) slider.value = Math.log10(Number(value));
      else if (slider) slider.value = slider.min;
    }
    const m = this.metrics();
    if (m) this.#els.controls.querySelector('[data-for="classes"]').classList.toggle("fm-muted", m.classes === 2 && effective.dataset !== "blobs");
    // "Your own data" offers one choice per class of the task.
    const select = this.#els.mydataClass;
    if (m && select.options.length !== m.classes) {
      select.replaceChildren(...Array.from({ length: m.classes }, (_, k) => new Option(String(k + 1), String(k))));
    }
  }

  #wireToolbar() {
    const e = this.#els;
    e.play.addEventListener("click", () => (this.#playing ? this.pause() : this.play()));
    e.step.addEventListener("click", () => { this.pause(); this.step(STEP_BUTTON_STEPS).catch(() => {}); });
    e.reset.addEventListener("click", () => { this.reset().catch(() => {}); });
    e.speed.addEventListener("change", () => this.setAttribute("speed", e.speed.value));
    e.ood.addEventListener("change", () => this.setAttribute("show-ood", String(e.ood.checked)));
    e.directions.addEventListener("change", () => this.setAttribute("directions", e.directions.value));
    e.surface.addEventListener("change", () => this.setAttribute("surface", e.surface.value));
    // A study replaced by a newer one is not a failure: the newer one shows its own progress.
    e.studyRun.addEventListener("click", () => this.study().catch((err) => err.name === "AbortError" || this.#showStudy({ error: errorText(err) })));
    this.#wireRotation();
    this.#wireGrid();
    this.#wireShare();
    this.#wireMyData();
    this.#wireExtras();
  }

  /** A side's other solutions: what each panel shows, the ensemble button, Dinh's rescaling. */
  #wireExtras() {
    const e = this.#els;
    const say = (/** @type {string} */ text) => { e.extrasOut.textContent = text; };
    e.shows.forEach((select, side) => select.addEventListener("change", () => this.showSolution(side, select.value)));
    e.ensembleRun.addEventListener("click", async () => {
      const side = Number(e.extraSide.value), k = Number(e.ensembleK.value);
      say(`Training ${k} members of the ${side ? "right" : "left"} side…`);
      try {
        const r = await this.ensemble({ side, k });
        e.shows[side].value = "ensemble";
        this.showSolution(side, "ensemble");
        say(ensembleText(side, r));
      } catch (err) {
        say(errorText(err));
      }
    });
    e.rescaleRun.addEventListener("click", async () => {
      const side = Number(e.extraSide.value);
      say(`Rescaling the ${side ? "right" : "left"} side and measuring it before and after…`);
      try {
        say(rescaleText(await this.rescale({ side, layer: Number(e.rescaleLayer.value), alpha: Number(e.rescaleAlpha.value) })));
      } catch (err) {
        say(errorText(err));
      }
    });
  }

  /**
   * What side `side`'s decision panel shows: "weights" (now), "average" (its
   * SWA / EMA weights, where the settings keep one) or "ensemble" (once
   * `ensemble()` trained one). The metrics table shows every one that exists.
   * @param {number} side @param {"weights" | "average" | "ensemble" | string} which
   */
  showSolution(side, which) {
    const w = which === "average" || which === "ensemble" ? which : "weights";
    const s = side ? 1 : 0;
    this.#els.shows[s].value = w;
    this.#post({ type: "show", side: s, which: w });
  }

  /**
   * Trains an ensemble of `k` members of one side (the side's settings with seeds
   * seed + i, each for the side's steps; member 0 is the side itself) in the
   * worker, a piece at a time. Resolves to its metrics (the `ensemble` field of
   * that side's metrics()); rejects naming a bad `k` or when the runs restart.
   * @param {{side?: number, k?: number}} [options]
   */
  ensemble({ side = 1, k = ENSEMBLE_K } = {}) {
    this.#flushSettings();
    this.#els.ensembleProgress.hidden = false;
    this.#els.ensembleProgress.value = 0;
    return this.#request({ type: "ensemble", side: side ? 1 : 0, k: Number(k) })
      .finally(() => { this.#els.ensembleProgress.hidden = true; });
  }

  /**
   * Dinh et al.'s rescaling of one side's current weights: hidden layer `layer`
   * (0 = the first) times `alpha`, the next layer divided by it (ReLU nets only).
   * Training pauses; the optimiser's state is cleared (training goes on from the
   * rescaled weights as from a fresh start); the side's weight average is
   * rescaled too. Resolves to the comparison: accuracies and every sharpness
   * measure before and after, and the largest change of any logit.
   * @param {{side?: number, layer?: number, alpha?: number}} [options]
   */
  rescale({ side = 0, layer = 0, alpha = RESCALE_ALPHA } = {}) {
    this.#flushSettings();
    this.#playing = false;
    this.#updatePlayButton();
    return this.#request({ type: "rescale", side: side ? 1 : 0, layer: Number(layer), alpha: Number(alpha) });
  }

  /** "Your own data": click a panel to place points, clear them, save or load them as CSV. */
  #wireMyData() {
    const e = this.#els;
    const say = (/** @type {string} */ text) => { e.mydataOut.textContent = text; };
    let adding = false;
    e.mydataAdd.addEventListener("click", () => {
      adding = !adding;
      e.mydataAdd.setAttribute("aria-pressed", String(adding));
      e.mydataAdd.textContent = `Add points by clicking: ${adding ? "on" : "off"}`;
      for (const p of e.panels) p.canvas.classList.toggle("fm-adding", adding);
    });
    e.panels.forEach((p, side) => p.canvas.addEventListener("click", async (ev) => {
      if (!adding) return;
      const r = p.canvas.getBoundingClientRect();
      const x = ((ev.clientX - r.left) * p.canvas.width) / r.width, y = ((ev.clientY - r.top) * p.canvas.height) / r.height;
      try {
        const split = e.mydataSplit.value === "ood" ? "ood" : "train";
        const points = await this.#pointsRequest({ type: "add-point", revision: ++this.#revision, side, x, y, label: Number(e.mydataClass.value), split });
        say(pointsSummary(points));
      } catch (err) {
        say(errorText(err));
      }
    }));
    e.mydataClear.addEventListener("click", () => this.setPoints([]).then(() => say("Back to the data set's own points.")));
    e.mydataSave.addEventListener("click", () => {
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([this.pointsCsv()], { type: "text/csv" }));
      a.download = "flatminima-points.csv";
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    });
    e.mydataLoad.addEventListener("change", async () => {
      const file = e.mydataLoad.files?.[0];
      if (!file) return;
      try {
        const points = await this.setPoints(parsePointsCsv(await file.text()));
        say(`Loaded from ${file.name}: ${pointsSummary(points)}`);
      } catch (err) {
        say(`Could not load ${file.name}: ${errorText(err)}`);
      } finally {
        e.mydataLoad.value = "";
      }
    });
  }

  /** Sends a points request; keeps and returns the worker's list. @param {import("./protocol.js").Ask} message */
  async #pointsRequest(message) {
    const answer = await this.#request(message);
    this.#myPoints = answer.points;
    this.#showPinned(answer.problems);
    return this.#myPoints;
  }

  /**
   * Trains on your own points: `[x, y, class]` for a training point, `[x, y,
   * class, "ood"]` for an OOD test point (the view spans -3..3 on both axes).
   * With training points the runs train on them; with OOD points the runs are
   * scored on them (the shift no longer changes the OOD set). An empty list goes
   * back to the data set's points. Resolves to the points in use; rejects naming
   * a bad point.
   * @param {(number | string)[][]} points
   */
  setPoints(points) {
    this.#flushSettings();
    /** @type {import("./protocol.js").MyPoint[]} */
    const mine = points.map((p) => (p[3] === "ood" ? [Number(p[0]), Number(p[1]), Number(p[2]), "ood"] : [Number(p[0]), Number(p[1]), Number(p[2])]));
    return this.#pointsRequest({ type: "set-points", revision: ++this.#revision, points: mine });
  }

  /** Your own points (a copy): `[x, y, class]` (training) or `[x, y, class, "ood"]`; empty when using the data set's. */
  myPoints() {
    return this.#myPoints.map((p) => [...p]);
  }

  /** Your own points as CSV: a header `x,y,class,split`, then a row per point (split: train or ood). */
  pointsCsv() {
    return ["x,y,class,split", ...this.#myPoints.map((p) => [p[0], p[1], p[2], p[3] === "ood" ? "ood" : "train"].join(","))].join("\n") + "\n";
  }

  /** The export / import menu: downloads, the command line, a run record file. */
  #wireShare() {
    const e = this.#els;
    const say = (/** @type {string} */ text) => { e.shareOut.textContent = text; };
    const download = (/** @type {Blob} */ blob, /** @type {string} */ name) => {
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
      say(`Saved ${name}.`);
    };
    const step = () => this.#metrics?.step ?? 0;
    e.exportRun.addEventListener("click", async () => {
      download(new Blob([await this.exportRun()], { type: "application/json" }), `flatminima-run-step${step()}.json`);
    });
    e.exportCurves.addEventListener("click", async () => {
      download(new Blob([await this.exportCurves()], { type: "text/csv" }), `flatminima-curves-step${step()}.csv`);
    });
    e.exportPng.addEventListener("click", async () => download(await this.picturesPng(), `flatminima-step${step()}.png`));
    e.exportCli.addEventListener("click", async () => {
      const cmd = this.cliCommand();
      try {
        await navigator.clipboard.writeText(cmd);
        say(`Copied: ${cmd}`);
      } catch {
        say(cmd);
      }
    });
    e.importFile.addEventListener("change", async () => {
      const file = e.importFile.files?.[0];
      if (!file) return;
      try {
        const problems = await this.importRun(await file.text());
        say(problems.length ? `Imported ${file.name}.` : `Imported ${file.name}: press Play to train it again.`);
      } catch (err) {
        say(`Could not import ${file.name}: ${errorText(err)}`);
      } finally {
        e.importFile.value = "";
      }
    });
    e.clearPinned.addEventListener("click", () => this.clearPinned().then(() => say("Back to the settings' own data and weights.")));
  }

  /** Drag (or arrow keys) on either 3D view rotates both, so they stay comparable. */
  #wireRotation() {
    for (const { surface3d: c } of this.#els.landSides) {
      let last = null;
      c.addEventListener("pointerdown", (ev) => { last = [ev.clientX, ev.clientY]; c.setPointerCapture(ev.pointerId); });
      c.addEventListener("pointermove", (ev) => {
        if (!last) return;
        this.#rotate((ev.clientX - last[0]) * 0.01, (ev.clientY - last[1]) * 0.01);
        last = [ev.clientX, ev.clientY];
      });
      const stop = () => { last = null; };
      c.addEventListener("pointerup", stop);
      c.addEventListener("pointercancel", stop);
      c.addEventListener("keydown", (ev) => {
        const d = { ArrowLeft: [-0.1, 0], ArrowRight: [0.1, 0], ArrowUp: [0, -0.1], ArrowDown: [0, 0.1] }[ev.key];
        if (d) { ev.preventDefault(); this.#rotate(...d); }
      });
    }
  }

  #rotate(dYaw, dPitch) {
    const pitch = Math.max(-1.45, Math.min(1.45, this.#view.pitch + dPitch));
    this.#sendView({ yaw: this.#view.yaw + dYaw, pitch });
  }

  // ----- backend ----------------------------------------------------------

  /** The worker's backend: the badge, a notice where one is due, and a "backendchange" event. */
  #showBackend({ backend, notice, note, description }) {
    const was = this.#backend.backend;
    Object.assign(this.#backend, { backend, note });
    this.#messages.backend = notice ? [notice] : [];
    this.#renderMessages();
    const badge = this.#els.backend;
    const gpu = backend === "gpu";
    badge.textContent = gpu ? "GPU" : note && !note.startsWith("looking") ? "CPU (no GPU)" : "CPU";
    badge.classList.toggle("fm-gpu", gpu);
    badge.title = gpu
      ? `WebGPU (${description}) computes the decision boundaries, the loss surfaces and studies; training steps run on the CPU, in a worker`
      : `Training and drawing run on the CPU (WebAssembly, in a worker)${note ? `: ${note}` : ""}`;
    if (was !== backend || notice) this.dispatchEvent(new CustomEvent("backendchange", { detail: { backend, notice: notice || note } }));
  }

  /** The study row: progress while one runs, then its outcome in a sentence. */
  #showStudy(state) {
    const e = this.#els;
    e.studyRun.disabled = !!state.running;
    e.studyProgress.hidden = !state.running;
    if (state.running) {
      e.studyProgress.value = state.progress;
      e.studyResult.textContent = `Training ${2 * state.replicas} networks on the ${state.backend}…`;
      return;
    }
    if (state.error) {
      e.studyResult.textContent = `Study failed: ${state.error}`;
      return;
    }
    const acc = (s) => (s ? `${formatAcc(s.mean)} (${formatAcc(s.min)}–${formatAcc(s.max)})` : "–");
    const p = state.paired;
    const diverged = state.left.diverged + state.right.diverged;
    e.studyResult.textContent = `${state.replicas} seeds × ${state.steps} steps on the ${state.backend.toUpperCase()} in ` +
      `${(state.ms / 1000).toFixed(1)} s. OOD accuracy, mean (min–max): ${state.left.label} ${acc(state.left.ood_acc)}, ${state.right.label} ${acc(state.right.ood_acc)}` +
      (p ? `; ${state.right.label} higher in ${p.right_higher}, lower in ${p.right_lower} of ${p.pairs} seeds` : "") +
      (diverged ? `; ${diverged} runs diverged` : "") + (state.note ? ` (${state.note})` : "") + ".";
  }

  // ----- the study panel (grid studies) ----------------------------------

  /** The axis choices: every setting but the seed (the draws and seeds are their own inputs). */
  #buildGridAxes(settings) {
    for (const select of this.#els.grid.querySelectorAll('select[name^="grid-axis-"]')) {
      if (select.options.length > 1) continue;
      for (const spec of settings) if (spec.name !== "seed") select.add(new Option(spec.label, spec.name));
    }
  }

  #wireGrid() {
    const e = this.#els, field = (name) => e.grid.querySelector(`[name="${name}"]`);
    const target = field("grid-target");
    field("grid-stop").addEventListener("change", (ev) => { target.hidden = ev.target.value !== "loss"; });
    for (const name of ["grid-measure", "grid-colour", "grid-matched"]) field(name).addEventListener("change", () => this.#renderGrid());
    e.gridCancel.addEventListener("click", () => this.#post({ type: "gridCancel" }));
    e.gridRun.addEventListener("click", () => {
      const axes = [0, 1, 2].map((i) => [field(`grid-axis-${i}`).value, field(`grid-values-${i}`).value.trim()])
        .filter(([name, values]) => name && values).map(([name, values]) => `${name}=${values}`).join("; ");
      const options = {
        axes, dataSeeds: Number(field("grid-draws").value), seeds: Number(field("grid-seeds").value),
        untilTrainLoss: field("grid-stop").value === "loss" ? Number(target.value) : null,
      };
      this.study(options).catch((err) => err.name === "AbortError" || this.#gridDone(`Study not started: ${errorText(err)}`));
    });
  }

  #showGridProgress({ progress, runs, total }) {
    const e = this.#els;
    e.gridRun.disabled = true;
    e.gridCancel.hidden = false;
    e.gridProgress.hidden = false;
    e.gridProgress.value = progress;
    e.gridStatus.textContent = total ? `${runs} of ${total} networks trained and measured${progress >= 0.97 ? ", computing the statistics…" : "…"}` : "starting…";
  }

  /** The study ended: its outcome in the status line (`message`, else the finished study's size and time). */
  #gridDone(message) {
    const e = this.#els, out = this.#gridResult;
    e.gridRun.disabled = !!this.#fatal;
    e.gridCancel.hidden = true;
    e.gridProgress.hidden = true;
    if (message || !out) { e.gridStatus.textContent = message; return; }
    const s = out.spec, steps = s.base.training.steps.toLocaleString("en-US");
    // Where the work ran: the GPU trained some units only where `training` says so.
    const workers = `${out.workers} worker${out.workers > 1 ? "s" : ""}`;
    const where = out.training?.gpu_units ? `trained on the GPU and measured on the CPU (${workers})` : `on the CPU (${workers})`;
    e.gridStatus.textContent = `${out.runs.length} networks: ${out.cells.length} cell${out.cells.length > 1 ? "s" : ""} × ${s.data_seeds} data draws × ${s.seeds} seeds × 2 sides, ` +
      `${s.stop.kind === "train_loss" ? `until train loss ${s.stop.target} (at most ${steps} steps)` : `${steps} steps`} each, in ${(out.ms / 1000).toFixed(1)} s ${where}.`;
  }

  /** The finished study, drawn by the study view (www/flatminima-study-view.js, loaded with the first study). */
  #renderGrid() {
    const out = this.#gridResult;
    if (!out || !out.stats) return;
    this.#studyView ??= import(STUDY_VIEW_URL.href);
    this.#studyView.then((view) => view.renderGrid(this.#els, out, this.#palette), (e) => this.#gridDone(`Could not load the study view (${errorText(e)}).`));
  }

  #updatePlayButton() {
    this.#els.play.textContent = this.#playing ? "❚❚ Pause" : "▶ Play";
    this.#els.play.setAttribute("aria-pressed", String(this.#playing));
  }

  // ----- canvases ---------------------------------------------------------

  /**
   * Canvas pixels follow their CSS size (times the device pixel ratio); the
   * worker draws at the same sizes. `force` sends the sizes even if unchanged.
   */
  #fitCanvases(force = false) {
    const dpr = window.devicePixelRatio || 1;
    let changed = force;
    /** @type {Record<string, [number, number]>} */
    const sizes = {};
    for (const [name, c] of this.#canvases) {
      const w = Math.round(c.clientWidth * dpr), h = Math.round(c.clientHeight * dpr);
      if (w > 0 && h > 0 && (c.width !== w || c.height !== h)) {
        c.width = w;
        c.height = h;
        changed = true;
      }
      sizes[name] = [c.width, c.height];
    }
    if (changed) this.#post({ type: "resize", sizes, dpr });
  }

  // ----- text: labels, table, status, divergence --------------------------

  #updateLandscapeText() {
    const e = this.#els;
    const land = this.#landscape;
    const m = this.metrics();
    if (!m) return;
    const names = [m.left.label, m.right.label];
    e.landSides.forEach((s, i) => {
      s.label.textContent = `${i === 0 ? "Left" : "Right"}: ${names[i]}`;
      const side = land && land[i === 0 ? "left" : "right"];
      if (!side) { s.readout.textContent = ""; return; }
      const extra = side.eigenvalues ? ` · plane eigenvalues ${side.eigenvalues.map(formatNumber).join(", ")}`
        : side.explained_variance ? ` · explains ${side.explained_variance.map((v) => (100 * v).toFixed(0) + "%").join(" + ")} of the path` : "";
      s.readout.textContent = `step ${side.step} · mean rise over the plane: train ${formatNumber(side.train.mean_rise)}, OOD ${formatNumber(side.ood.mean_rise)}${extra}`;
    });
    const progress = land ? land.progress : 0;
    e.landStatus.textContent = !land ? "" :
      `${progress < 1 ? `computing ${(100 * progress).toFixed(0)}% · ` : ""}showing step ${land.steps[0]} / ${land.steps[1]}${land.note ? " · " + land.note : ""}`;
    // The weight averages' sharpness (an ensemble has no single weights to measure).
    const averages = extraColumns(m).filter((c) => c.m.kind);
    e.sharpBody.innerHTML = [...SHARP_ROWS, ["measured at step", "step"]].map(([title, key]) => {
      const [a, b] = [m.left.sharpness, m.right.sharpness].map((s) => (s ? s[key] : null));
      const fmt = key === "step" ? (v) => (v == null ? "–" : String(v)) : formatNumber;
      const lower = key !== "step" && key !== "edge_of_stability" && a != null && b != null && a !== b ? (a < b ? 0 : 1) : -1;
      // The threshold's formula and source (from the core) as a tooltip; "–" where none applies.
      const notes = [m.left.sharpness, m.right.sharpness].map((s) => (key === "edge_of_stability" && s && s.edge_of_stability_label) || "");
      const more = averages.map((c) => `<td class="fm-extra">${fmt(c.sharpness ? c.sharpness[key] : null)}</td>`).join("");
      return `<tr><th scope="row">${title}</th>${[a, b].map((v, i) => `<td class="${lower === i ? "fm-better" : ""}"${notes[i] ? ` title="${escapeHtml(notes[i])}"` : ""}>${fmt(v)}</td>`).join("")}${more}</tr>`;
    }).join("");
    this.#extraHeads(e.sharpHead, averages);
  }



  #updateText() {
    const m = this.metrics();
    if (!m) return;
    const e = this.#els;
    const sides = [m.left, m.right];
    sides.forEach((s, i) => {
      const p = e.panels[i];
      p.label.textContent = s.label;
      // The solution the panel shows: the weights now, or the weight average or ensemble where chosen and there.
      const shown = e.shows[i].value;
      const extra = shown === "average" && s.average && s.average.n_averaged > 0 && s.average.train_loss != null ? s.average
        : shown === "ensemble" && s.ensemble ? s.ensemble : null;
      const q = extra ?? s;
      const what = !extra ? "" : extra === s.average ? `<i>${s.average.kind} average:</i> ` : `<i>ensemble of ${s.ensemble.members}:</i> `;
      const waiting = shown === "average" && !extra ? (s.average ? ` <i>(averaging starts after step ${s.average.starts_at})</i>` : " <i>(no weight average: set one in the settings)</i>")
        : shown === "ensemble" && !extra ? " <i>(no ensemble yet: train one below)</i>" : "";
      p.quick.innerHTML = `${what}train <b>${formatAcc(q.train_acc)}</b> · ID <b>${formatAcc(q.id_acc)}</b> · OOD <b>${formatAcc(q.ood_acc)}</b>${waiting}`;
      p.diverged.hidden = !s.diverged;
      if (s.diverged) p.divergedText.textContent = `Diverged at step ${s.diverged_step}: ${s.diverged_reason}`;
    });
    e.thLeft.textContent = e.legendLeft.textContent = `Left: ${m.left.label}`;
    e.thRight.textContent = e.legendRight.textContent = `Right: ${m.right.label}`;

    const extras = extraColumns(m);
    e.tbody.innerHTML = ROWS.map(([title, key, kind]) => {
      const [a, b] = sides.map((s) => s[key]);
      const fmt = kind === "loss" ? formatLoss : kind === "acc" ? formatAcc : formatGap;
      // Mark the better side: lower loss or gap, higher accuracy.
      const better = a == null || b == null || a === b ? -1 : (kind === "acc" ? a > b : a < b) ? 0 : 1;
      const cell = (v, i) => `<td class="${better === i ? "fm-better" : ""}">${fmt(v)}</td>`;
      const more = extras.map((c) => `<td class="fm-extra">${fmt(c.m[key])}</td>`).join("");
      return `<tr class="fm-row-${kind}${key.startsWith("ood") ? " fm-ood" : ""}"><th scope="row">${title}</th>${cell(a, 0)}${cell(b, 1)}${more}</tr>`;
    }).join("");
    this.#extraHeads(e.metricsHead, extras);
    this.#updateExtrasControls(m);

    const classes = this.#palette.classes.slice(0, m.classes);
    const legend = `${classes.map((c, k) => `<span><span class="fm-dot" style="background:${c}"></span>class ${k}</span>`).join("")}
      <span><span class="fm-dot fm-dot-train"></span>training point</span>
      <span><span class="fm-cross" aria-hidden="true">×</span>OOD test point</span>
      <span><span class="fm-boundary-line"></span>decision boundary</span>
      <span class="fm-shift">OOD set: ${escapeHtml(m.shift)}</span>`;
    if (legend !== this.#legendHtml) e.legend.innerHTML = this.#legendHtml = legend;
    this.#setStatus(m.finished ? this.#finishedText(m) : `step ${m.step.toLocaleString("en-US")} / ${m.steps.toLocaleString("en-US")}`);
  }

  /** The header cells of a table's extra columns (after Left and Right). @param {HTMLElement} row @param {{title: string}[]} columns */
  #extraHeads(row, columns) {
    const want = columns.map((c) => c.title);
    // A table with extra columns may scroll sideways on a phone: then it takes the keyboard's focus too.
    const table = /** @type {HTMLElement} */ (row.closest("table"));
    table.classList.toggle("fm-has-extras", want.length > 0);
    if (want.length) table.tabIndex = 0;
    else table.removeAttribute("tabindex");
    const have = [...row.querySelectorAll("th.fm-extra")];
    if (have.map((th) => th.textContent).join("\n") === want.join("\n")) return;
    have.forEach((th) => th.remove());
    for (const title of want) {
      const th = document.createElement("th");
      th.scope = "col";
      th.className = "fm-extra";
      th.textContent = title;
      row.append(th);
    }
  }

  /** The rescaling's layer choice and whether it applies (ReLU only); each panel's "shows" choice. @param {any} m */
  #updateExtrasControls(m) {
    const e = this.#els;
    const n = m.hidden_layers ?? 0;
    if (e.rescaleLayer.options.length !== n) {
      e.rescaleLayer.innerHTML = Array.from({ length: n }, (_, l) =>
        `<option value="${l}">hidden layer ${l + 1} × α, ${l + 1 < n ? `hidden layer ${l + 2}` : "output layer"} ÷ α</option>`).join("");
    }
    const relu = m.activation === "relu";
    e.rescaleRun.disabled = !relu || n === 0;
    e.rescaleRun.title = relu
      ? "Multiply one ReLU layer's weights and biases by α and the next layer's weights by 1/α: the same function (ReLU is positively homogeneous), different sharpness (Dinh et al. 2017)"
      : `Only for ReLU networks: relu(αx) = α·relu(x) for α > 0, so the next layer can undo the factor; ${m.activation} is not positively homogeneous, so the function would change (set Activation to relu)`;
  }

  #finishedText(m = this.#metrics) {
    if (!m) return "";
    if (m.left.diverged && m.right.diverged) return "Both sides diverged: lower the learning rate, then Reset";
    return `Done: ${m.steps.toLocaleString("en-US")} steps (raise Steps to train longer)`;
  }

  #setStatus(text) {
    this.#els.status.textContent = text;
  }

  // ----- errors -----------------------------------------------------------

  #showFatal(message) {
    // Also on the console, where developers (and the e2e tests) look for errors.
    if (!this.#fatal) console.error(`flatminima-sandbox: ${message}`);
    this.#fatal = message;
    this.#playing = false;
    this.#updatePlayButton();
    for (const b of [this.#els.play, this.#els.step, this.#els.reset, this.#els.studyRun, this.#els.gridRun]) b.disabled = true;
    this.#els.fatal.textContent = message;
    this.#els.fatal.hidden = false;
    this.#els.root.hidden = false;
    for (const { reject } of this.#pending.values()) reject(new Error(message));
    this.#pending.clear();
  }
}

if (!customElements.get("flatminima-sandbox")) customElements.define("flatminima-sandbox", FlatminimaSandbox);
export { FlatminimaSandbox };
