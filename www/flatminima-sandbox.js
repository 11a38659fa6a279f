// <flatminima-sandbox>: two tiny networks trained side by side (SGD vs SAM)
// on shifted 2D data, live in the page. One module script is all an embedding
// page needs:
//
//   <script type="module" src="flatminima-sandbox.js"></script>
//   <flatminima-sandbox dataset="spirals" rho="0.2" autoplay></flatminima-sandbox>
//
// Attributes: every setting of src/settings.rs (dataset, noise, points, classes,
// shift, severity, hidden, activation, optimizer, left-optimizer,
// right-optimizer, left, right, rho, lr, momentum, weight-decay, schedule,
// batch-size, steps, seed, label-smoothing), plus backend (auto|cpu|gpu),
// autoplay, controls (show the settings panel), speed (1|10|100|1000|max steps
// per frame), show-ood (true|false), landscape (on|off: the loss-landscape and
// sharpness views), directions (random|hessian|pca: the landscape's plane) and
// surface (train|ood: which loss the surfaces show).
// Methods: play(), pause(), step(n), reset(), metrics(), landscape(),
// study({replicas, steps}) (a Promise), settingsQuery(), configJson(),
// wasmMemoryBytes(), wasmLiveBytes(). Events: "metrics" (detail = metrics()) a
// few times a second while training and after every change; "settingschange"
// (detail = {query}) when a setting changed; "backendchange" (detail =
// {backend, notice}) when the GPU backend turns on or off.
//
// The wasm module (./pkg/flatminima.js, built by scripts/build-wasm.sh) holds
// the whole simulation and draws the canvases; this file builds the DOM, runs
// the animation loop and turns controls into attributes. Where WebGPU has an
// adapter (and backend is not cpu) it also loads the GPU module
// (./pkg-gpu/flatminima.js), which computes the decision boundaries, the loss
// surfaces and studies; training steps stay on the CPU (one step of a tiny net
// is smaller than a GPU round trip).

import init, { Sandbox, settingsSpecJson, paletteJson, panicForTests, wasmLiveBytes } from "./pkg/flatminima.js";

const CSS_URL = new URL("./flatminima.css", import.meta.url);

/** Setting names; the wasm module's own list is checked against this at load. */
const SETTINGS = [
  "dataset", "noise", "points", "classes", "shift", "severity", "hidden", "activation", "optimizer",
  "left-optimizer", "right-optimizer", "left", "right", "rho", "lr", "momentum", "weight-decay", "schedule",
  "batch-size", "steps", "seed", "label-smoothing",
];
/** Attributes of the element itself, not of the run. */
const UI_ATTRIBUTES = ["backend", "autoplay", "controls", "speed", "show-ood", "landscape", "directions", "surface"];
const DIRECTIONS = ["random", "hessian", "pca"];
const SURFACES = ["train", "ood"];
const BACKENDS = ["auto", "cpu", "gpu"];
const SPEEDS = ["1", "10", "100", "1000", "max"];
const DEFAULT_SPEED = "10";

/** Training gets this much of each animation frame (ms); drawing gets the rest. */
const TRAIN_BUDGET_MS = 8;
/** Redraw intervals (ms): boundaries; curves and table; "metrics" events. */
const BOUNDARY_EVERY_MS = 66;
const CURVES_EVERY_MS = 200;
const LANDSCAPE_EVERY_MS = 150;
/** Landscape and sharpness work per frame (ms): small while training, more while paused. */
const LANDSCAPE_BUDGET_MS = { playing: 4, paused: 20 };
const SHARPNESS_BUDGET_MS = 2;
/** Landscape grid points per axis, and points per data set it is evaluated on. */
const LANDSCAPE_GRID = 51;
const LANDSCAPE_POINTS = 256;
const EVENT_EVERY_MS = 500;
/** A study on the CPU trains this long per animation frame (ms). */
const STUDY_BUDGET_MS = 6;
/** The study button's run: seeds per side (two networks each) and steps. */
const STUDY_REPLICAS = 128;
const STUDY_STEPS = 1000;
/** Most steps one step(n) call takes (it runs synchronously). */
const MAX_STEP_CALL = 100_000;
/** Steps the Step button takes. */
const STEP_BUTTON_STEPS = 10;

// ---------------------------------------------------------------------------
// The wasm module: loaded once, shared by every element on the page.

let wasm = null;
let wasmLoading = null;
let palette = { classes: [], sides: [] };
/** Set once a Rust panic has trapped the shared module: it cannot be trusted after that. */
let fatalMessage = null;
const liveElements = new Set();
/** An element that trained or computed within this many ms counts as busy (see #frameShare). */
const BUSY_WINDOW_MS = 100;

function loadWasm() {
  wasmLoading ??= init().then((exports) => {
    wasm = exports;
    palette = JSON.parse(paletteJson());
    const names = JSON.parse(settingsSpecJson()).map((s) => s.name);
    if (names.join() !== SETTINGS.join()) {
      console.warn(`flatminima-sandbox: settings list out of date; the wasm module has ${names.join(", ")}`);
    }
    return exports;
  });
  return wasmLoading;
}

// ---------------------------------------------------------------------------
// The GPU module: fetched only when an element wants the GPU and WebGPU gives
// an adapter (a hardware one, for backend="auto"), then shared by every element.

let gpuAdapter = null; // Promise<GPUAdapter | null>
let gpuOpening = null; // Promise<GpuKernels>

/** The message of a panic in the GPU module, after which it cannot be used again on this page. */
const gpuCrash = () => globalThis.__flatminimaGpuPanic;

/**
 * Resolves to the opened GPU kernels for `choice` ("auto" or "gpu"); rejects
 * with the reason there are none for it (the element then says so).
 */
async function openGpu(choice) {
  if (gpuCrash()) throw new Error(`the GPU module crashed earlier on this page (${gpuCrash()})`);
  if (!globalThis.navigator || !navigator.gpu) throw new Error("this browser has no WebGPU (navigator.gpu is missing)");
  // Ask before downloading the module: most pages without a GPU stop here.
  gpuAdapter ??= navigator.gpu.requestAdapter().catch(() => null);
  const adapter = await gpuAdapter;
  if (!adapter) {
    gpuAdapter = null;
    throw new Error("WebGPU has no adapter here");
  }
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

const errorText = (e) => (e && e.message ? e.message : String(e));

/**
 * `promise`, or a rejection once the GPU module has crashed: a panic there leaves
 * its promises unsettled, and a study must not wait for one forever.
 */
function untilGpuCrash(promise) {
  let timer;
  const crashed = new Promise((_, reject) => {
    timer = setInterval(() => gpuCrash() && reject(new Error(`the GPU module crashed: ${gpuCrash()}`)), 200);
  });
  return Promise.race([promise, crashed]).finally(() => clearInterval(timer));
}

/** The message of a Rust panic (left by the panic hook), or of any other error. */
function describeError(e) {
  const panic = globalThis.__flatminimaPanic;
  if (e instanceof WebAssembly.RuntimeError || panic) {
    return `The simulation crashed (a Rust panic): ${panic || e.message}. Reload the page to start again.`;
  }
  return `Something went wrong: ${e && e.message ? e.message : e}. Reload the page to start again.`;
}

// ---------------------------------------------------------------------------
// The controls panel: one entry per setting. `log` sliders move a number
// field on a log scale; the field is the control (it carries the name).

const CONTROL_GROUPS = [
  ["Data", [
    { name: "dataset", label: "Dataset", kind: "select", options: [
      ["moons", "Two moons"], ["circles", "Circles"], ["xor", "XOR"], ["spirals", "Spirals"],
      ["blobs", "Blobs (K classes)"], ["spurious", "Spurious feature"]] },
    { name: "noise", label: "Noise", kind: "range", min: 0, max: 1, step: 0.01 },
    { name: "points", label: "Training points", kind: "number", min: 4, max: 5000, step: 1 },
    { name: "classes", label: "Classes (blobs)", kind: "number", min: 2, max: 8, step: 1 },
  ]],
  ["Distribution shift (OOD test set)", [
    { name: "shift", label: "Shift", kind: "select", options: [
      ["none", "None"], ["translate", "Translate"], ["rotate", "Rotate"], ["scale", "Scale"], ["noise", "Extra noise"],
      ["class_prior", "Class prior"], ["spurious_flip", "Spurious flip (spurious data)"]] },
    { name: "severity", label: "Severity", kind: "range", min: 0, max: 1, step: 0.05, live: true,
      help: "Moves the OOD points at once; training goes on." },
  ]],
  ["Model", [
    { name: "hidden", label: "Hidden layers", kind: "text", placeholder: "16,16", help: "Widths, e.g. 16,16 (0 = none)" },
    { name: "activation", label: "Activation", kind: "select", options: [
      ["tanh", "tanh"], ["relu", "ReLU"], ["gelu", "GELU"], ["sigmoid", "sigmoid"]] },
    { name: "label-smoothing", label: "Label smoothing", kind: "range", min: 0, max: 0.5, step: 0.01 },
  ]],
  ["Optimisers", [
    { name: "optimizer", label: "Base optimiser", kind: "select", options: [
      ["sgd", "SGD"], ["adam", "Adam"], ["adamw", "AdamW"], ["rmsprop", "RMSprop"]], help: "Both sides" },
    { name: "left", label: "Left wrapper", kind: "select", options: [["plain", "plain"], ["sam", "SAM"], ["asam", "ASAM"]] },
    { name: "right", label: "Right wrapper", kind: "select", options: [["plain", "plain"], ["sam", "SAM"], ["asam", "ASAM"]] },
    { name: "left-optimizer", label: "Left base", kind: "select", options: [
      ["", "same"], ["sgd", "SGD"], ["adam", "Adam"], ["adamw", "AdamW"], ["rmsprop", "RMSprop"]] },
    { name: "right-optimizer", label: "Right base", kind: "select", options: [
      ["", "same"], ["sgd", "SGD"], ["adam", "Adam"], ["adamw", "AdamW"], ["rmsprop", "RMSprop"]] },
    { name: "rho", label: "SAM radius ρ", kind: "number", min: 0, max: 10, step: "any", log: [-3, 1] },
    { name: "lr", label: "Learning rate", kind: "number", min: 0, max: 100, step: "any", log: [-4, 2] },
    { name: "momentum", label: "Momentum", kind: "range", min: 0, max: 0.99, step: 0.01 },
    { name: "weight-decay", label: "Weight decay", kind: "number", min: 0, max: 1, step: "any" },
    { name: "schedule", label: "LR schedule", kind: "select", options: [
      ["constant", "constant"], ["cosine", "cosine"], ["step", "step (÷10 twice)"], ["warmup", "warm-up"]] },
  ]],
  ["Training", [
    { name: "batch-size", label: "Batch size", kind: "number", min: 1, max: 5000, step: 1 },
    { name: "steps", label: "Steps", kind: "number", min: 1, max: 10000000, step: 1 },
    { name: "seed", label: "Seed", kind: "number", min: 0, step: 1 },
  ]],
];

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
        <thead><tr><th scope="col"></th><th scope="col" class="fm-th-left">Left</th><th scope="col" class="fm-th-right">Right</th></tr></thead>
        <tbody></tbody>
      </table>
      <div class="fm-study">
        <button type="button" class="fm-study-run" title="Train both sides from ${STUDY_REPLICAS} seeds each (same data; seed i shares its initial weights and batches across sides) and compare their OOD accuracy">Study: ${STUDY_REPLICAS} seeds per side</button>
        <progress class="fm-study-progress" max="1" value="0" hidden aria-label="study progress"></progress>
        <span class="fm-study-result" aria-live="polite">Is one run luck? Train ${2 * STUDY_REPLICAS} networks (${STUDY_STEPS} steps each) and see.</span>
      </div>
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
  ["λ_max (power iteration)", "lambda_max"], ["edge of stability 2/lr", "edge_of_stability"], ["Hessian trace (Hutchinson)", "trace"],
  ["ε-sharpness (Keskar, %)", "eps_sharpness"], ["ρ-sharpness (worst case, ρ of SAM)", "rho_sharpness"],
  ["adaptive sharpness", "adaptive_sharpness"], ["average sharpness (Gaussian)", "average_sharpness"],
];
const formatNumber = (v) => (v == null || !Number.isFinite(v) ? "–" : Math.abs(v) >= 1000 || (Math.abs(v) < 0.001 && v !== 0) ? v.toExponential(2) : v.toPrecision(3));

const formatLoss = (v) => (v == null ? "–" : v >= 100 ? v.toFixed(0) : v >= 0.01 ? v.toFixed(3) : v.toExponential(1));
const formatAcc = (v) => (v == null ? "–" : (100 * v).toFixed(1) + "%");
const formatGap = (v) => (v == null ? "–" : (v >= 0 ? "" : "−") + (100 * Math.abs(v)).toFixed(1) + " pts");
const escapeHtml = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

class FlatminimaSandbox extends HTMLElement {
  static get observedAttributes() {
    return [...SETTINGS, ...UI_ATTRIBUTES];
  }

  #sb = null; // the wasm Sandbox
  #root;
  #els = {};
  #playing = false;
  #raf = 0;
  #settingsPending = true;
  #flushQueued = false;
  #messages = { settings: [], ui: [], backend: [] };
  #last = { boundary: 0, curves: 0, event: 0, landscape: 0 };
  #dirty = { boundary: true, curves: true, landscape: true };
  #landscapeOn = true;
  /**
   * The backend: what was asked (auto|gpu|cpu), the GPU module's kernels while
   * they are in use (null: the CPU), the notice shown in the messages and a
   * note for the badge. `busy` counts GPU requests in flight.
   */
  #backend = { choice: null, gpu: null, note: "" };
  #gpuBusy = { boundary: false, surfaces: 0 };
  // Bumped whenever the backend is (re)chosen: an answer to an older choice's request is dropped.
  #gpuEpoch = 0;
  #studyToken = 0;
  /**
   * Whether any of the element is on screen: landscape work waits while it is
   * not. Unknown (false) until the IntersectionObserver's first report, which
   * comes after the first animation frames.
   */
  #visible = typeof IntersectionObserver === "undefined";
  #visibility = null;
  /** When this element last trained or computed in a frame (see #frameShare). */
  #lastWorkAt = -Infinity;

  /**
   * This element's share of a frame's budgets: elements that did work in the
   * last few frames split them, so a blog post with several sandboxes stays as
   * responsive as a page with one.
   */
  static #frameShare(now) {
    let busy = 0;
    for (const el of liveElements) if (now - el.#lastWorkAt < BUSY_WINDOW_MS) busy++;
    return 1 / Math.max(1, busy);
  }
  #landscapeBusy = false;
  #view3d = { yaw: 0.6, pitch: 0.45 };
  #metrics = null;
  #resize = null;
  #speed = DEFAULT_SPEED;
  #legendHtml = "";

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
      studyRun: q(".fm-study-run"), studyProgress: q(".fm-study-progress"), studyResult: q(".fm-study-result"),
    };
    // Show the element once its stylesheet is in (no flash of unstyled content).
    link.addEventListener("load", () => { this.#els.root.hidden = false; });
    link.addEventListener("error", () => { this.#els.root.hidden = false; });
    this.#buildControls();
    this.#wireToolbar();
  }

  connectedCallback() {
    liveElements.add(this);
    this.#resize ??= new ResizeObserver(() => this.#fitCanvases());
    this.#visibility ??= new IntersectionObserver((entries) => {
      const visible = entries.some((e) => e.isIntersecting);
      if (visible && !this.#visible) this.#redrawSoon();
      this.#visible = visible;
    });
    this.#visibility.observe(this);
    for (const c of this.#allCanvases()) this.#resize.observe(c);
    this.#applyUiAttributes();
    if (fatalMessage) { this.#showFatal(fatalMessage); return; }
    loadWasm().then(
      () => {
        if (!this.isConnected) return;
        this.#flushSettings();
        if (this.hasAttribute("autoplay") && !this.#everStarted) this.play();
        this.#redrawAll();
      },
      (e) => this.#showFatal(`Could not load the WebAssembly module (${e && e.message ? e.message : e}).`),
    );
  }

  disconnectedCallback() {
    liveElements.delete(this);
    this.#resize?.disconnect();
    this.#visibility?.disconnect();
    this.#stopLoop();
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

  #everStarted = false;

  /** Starts (or resumes) training in the animation loop. */
  play() {
    this.#everStarted = true;
    if (fatalMessage) return;
    this.#flushSettings();
    if (this.#sb && this.#guard(() => this.#sb.finished())) {
      this.#setStatus(this.#finishedText());
      return;
    }
    this.#playing = true;
    this.#updatePlayButton();
    this.#startLoop();
  }

  pause() {
    this.#playing = false;
    this.#updatePlayButton();
    this.#emitMetrics();
    // The loop goes on while the landscape and sharpness views catch up, then stops by itself.
    this.#dirty.landscape = true;
    if (this.#sb) this.#startLoop();
  }

  /**
   * `n` optimiser steps on both sides (default 1, at most 100,000), then a
   * redraw. Synchronous, so metrics() right after sees them; for long
   * training use play(), which never blocks the page.
   */
  step(n = 1) {
    this.#flushSettings();
    if (!this.#sb || fatalMessage) return;
    const count = Math.max(0, Math.min(MAX_STEP_CALL, Math.floor(Number(n) || 0)));
    this.#guard(() => this.#sb.step(count));
    this.#redrawAll();
  }

  /** Both runs back to step 0 (same data and initial weights). */
  reset() {
    this.#flushSettings();
    if (!this.#sb || fatalMessage) return;
    this.#guard(() => this.#sb.reset());
    this.#redrawAll();
  }

  /** The current metrics as plain JSON (see the README), or null before the wasm has loaded. */
  metrics() {
    this.#flushSettings();
    if (!this.#sb || fatalMessage) return this.#metrics;
    const text = this.#guard(() => this.#sb.metricsJson());
    if (text !== undefined) this.#metrics = JSON.parse(text);
    return this.#metrics;
  }

  /**
   * What the landscape view shows, as plain JSON (null before the first one):
   * {kind, grid, points, note, progress, complete, steps, left, right}; each side
   * has step, eigenvalues or explained_variance of its plane, and train/ood
   * {at_solution, mean_rise} (the mean of L - L(w) over the surface).
   */
  landscape() {
    this.#flushSettings();
    if (!this.#sb || fatalMessage) return null;
    return JSON.parse(this.#guard(() => this.#sb.landscapeJson(false)) ?? "null");
  }

  /**
   * Trains `replicas` seeds of each side (default ${STUDY_REPLICAS}: twice as many networks)
   * for `steps` steps each (default ${STUDY_STEPS}) with the current settings, and
   * resolves to the report: {backend, replicas, steps, ms, left, right, paired}
   * (see the README). On the GPU when it is in use, else on the CPU a few ms per
   * frame (the page stays responsive). Rejects on counts out of range (or too many
   * parameters in all), and with an Error named "AbortError" when a newer study
   * replaces this one.
   */
  async study({ replicas = STUDY_REPLICAS, steps = STUDY_STEPS } = {}) {
    await loadWasm();
    this.#flushSettings();
    if (!this.#sb || fatalMessage) throw new Error(fatalMessage || "the sandbox is not ready");
    // The limits of src/study.rs (PAGE_MAX_REPLICAS, PAGE_MAX_STEPS), checked here so that a
    // bad count is reported as such rather than as a GPU failure.
    for (const [name, value, max] of [["replicas", replicas, 4096], ["steps", steps, 100_000]]) {
      if (!Number.isInteger(value) || value < 1 || value > max) throw new RangeError(`${name}: expected an integer from 1 to ${max}, got ${value}`);
    }
    const token = ++this.#studyToken;
    const stale = () => token !== this.#studyToken || fatalMessage || !this.isConnected;
    const replaced = () => Object.assign(new Error("the study was replaced by a newer one or the element was removed"), { name: "AbortError" });
    // The study is fixed here: the CPU's job (which also checks the counts against the
    // network's size) and the settings the GPU gets, so a fallback trains the same one.
    const query = this.#sb.settingsQuery();
    this.#sb.studyStart(replicas, steps);
    const gpu = this.#backend.gpu;
    this.#showStudy({ running: true, progress: 0, backend: gpu ? "GPU" : "CPU", replicas });
    let report = null;
    let note = "";
    if (gpu) {
      try {
        report = JSON.parse(await untilGpuCrash(gpu.study(query, replicas, steps)));
      } catch (e) {
        if (stale()) throw replaced();
        note = `the GPU could not train it (${errorText(e)}); the CPU did`;
        if (gpuCrash() || gpu.problem()) this.#gpuFailed(e);
      }
    }
    if (!report) {
      this.#showStudy({ running: true, progress: 0, backend: "CPU", replicas });
      for (;;) {
        await new Promise((resolve) => requestAnimationFrame(resolve));
        if (stale()) throw replaced();
        const progress = this.#guard(() => this.#sb.studyAdvance(STUDY_BUDGET_MS * FlatminimaSandbox.#frameShare(performance.now())));
        if (progress === undefined) throw new Error(fatalMessage);
        this.#showStudy({ running: true, progress, backend: "CPU", replicas });
        if (progress >= 1) break;
      }
      report = JSON.parse(this.#sb.studyResultJson());
    }
    if (stale()) throw replaced();
    this.#sb.studyCancel(); // this study's CPU job (a newer study would have replaced it)
    if (note) report.note = note;
    this.#showStudy(report);
    return report;
  }

  /** The non-default settings as a URL query (no "?"), UI attributes included. */
  settingsQuery() {
    this.#flushSettings();
    const parts = [];
    const q = this.#sb && !fatalMessage ? this.#guard(() => this.#sb.settingsQuery()) : "";
    if (q) parts.push(q);
    if (this.#speed !== DEFAULT_SPEED) parts.push(`speed=${this.#speed}`);
    if (!this.#els.ood.checked) parts.push("show-ood=false");
    const backend = this.getAttribute("backend");
    if (backend && backend !== "auto" && BACKENDS.includes(backend)) parts.push(`backend=${backend}`);
    if (!this.#landscapeOn) parts.push("landscape=off");
    if (this.#els.directions.value !== DIRECTIONS[0]) parts.push(`directions=${this.#els.directions.value}`);
    if (this.#els.surface.value !== SURFACES[0]) parts.push(`surface=${this.#els.surface.value}`);
    return parts.join("&");
  }

  /** The full run config as JSON: `flatminima train --config` replays it. */
  configJson() {
    this.#flushSettings();
    return this.#sb && !fatalMessage ? this.#guard(() => this.#sb.configJson()) : null;
  }

  /** Size of the shared wasm heap in bytes (for memory tests). */
  wasmMemoryBytes() {
    return wasm ? wasm.memory.buffer.byteLength : 0;
  }

  /** Bytes Rust has allocated and not freed (a leak shows here; the heap size only grows). */
  wasmLiveBytes() {
    return wasm ? wasmLiveBytes() : 0;
  }

  /** Test hook: a deliberate Rust panic, to check that it shows as an error here. */
  panicForTests() {
    this.#guard(() => panicForTests());
  }

  // ----- settings ---------------------------------------------------------

  /** Applies pending attribute changes: a new run, or the OOD set moved in place. */
  #flushSettings() {
    if (!this.#settingsPending || !wasm || fatalMessage) return;
    this.#settingsPending = false;
    const settings = new URLSearchParams();
    for (const name of SETTINGS) if (this.hasAttribute(name)) settings.append(name, this.getAttribute(name));
    const query = settings.toString();
    this.#guard(() => {
      if (this.#sb) this.#sb.reconfigure(query);
      else {
        this.#sb = Sandbox.fromSettings(query);
        this.#configureLandscape();
        if (this.#backend.gpu) this.#sb.setGpu(this.#backend.gpu.description());
      }
      this.#messages.settings = JSON.parse(this.#sb.errorsJson()).map((e) => `${e.setting}: ${e.message}`);
    });
    if (fatalMessage) return;
    this.#renderMessages();
    this.#syncControls();
    this.#dirty.boundary = this.#dirty.curves = true;
    this.#redrawAll();
    this.dispatchEvent(new CustomEvent("settingschange", { detail: { query: this.settingsQuery() } }));
  }

  /** backend, speed, show-ood, controls, autoplay: element-only state. */
  #applyUiAttributes() {
    const ui = [];
    const rawBackend = (this.getAttribute("backend") ?? "auto").trim() || "auto";
    if (!BACKENDS.includes(rawBackend)) ui.push(`backend: must be auto, cpu or gpu, got "${rawBackend}"; using auto`);
    const backend = BACKENDS.includes(rawBackend) ? rawBackend : "auto";
    if (backend !== this.#backend.choice) this.#chooseBackend(backend);

    const speed = this.getAttribute("speed");
    if (speed !== null && !SPEEDS.includes(speed.trim())) {
      ui.push(`speed: must be one of ${SPEEDS.join(", ")}, got "${speed}"; using ${DEFAULT_SPEED}`);
      this.#speed = DEFAULT_SPEED;
    } else {
      this.#speed = speed === null ? DEFAULT_SPEED : speed.trim();
    }
    this.#els.speed.value = this.#speed;

    const ood = this.getAttribute("show-ood");
    if (ood !== null && !["true", "false", ""].includes(ood.trim())) {
      ui.push(`show-ood: must be true or false, got "${ood}"; using true`);
    }
    const showOod = ood === null || ood.trim() !== "false";
    if (this.#els.ood.checked !== showOod) {
      this.#els.ood.checked = showOod;
      this.#dirty.boundary = true;
    }
    const landscape = (this.getAttribute("landscape") ?? "on").trim();
    if (!["on", "off", ""].includes(landscape)) ui.push(`landscape: must be on or off, got "${landscape}"; using on`);
    this.#landscapeOn = landscape !== "off";
    this.#els.landscape.hidden = !this.#landscapeOn;
    for (const [name, allowed, select] of [["directions", DIRECTIONS, this.#els.directions], ["surface", SURFACES, this.#els.surface]]) {
      const raw = this.getAttribute(name);
      const value = raw === null ? allowed[0] : raw.trim();
      if (!allowed.includes(value)) ui.push(`${name}: must be ${allowed.join(", ")}, got "${raw}"; using ${allowed[0]}`);
      select.value = allowed.includes(value) ? value : allowed[0];
    }
    this.#configureLandscape();
    this.#els.controls.hidden = !this.hasAttribute("controls");
    this.#els.root.classList.toggle("fm-with-controls", this.hasAttribute("controls"));
    this.#messages.ui = ui;
    this.#renderMessages();
    this.#redrawSoon();
    if (this.#sb) this.dispatchEvent(new CustomEvent("settingschange", { detail: { query: this.settingsQuery() } }));
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

  #buildControls() {
    const form = this.#els.controls;
    form.addEventListener("submit", (e) => e.preventDefault());
    for (const [title, items] of CONTROL_GROUPS) {
      const fieldset = document.createElement("fieldset");
      fieldset.innerHTML = `<legend>${escapeHtml(title)}</legend>`;
      for (const c of items) fieldset.append(this.#control(c));
      form.append(fieldset);
    }
  }

  /** One labelled control; changing it sets the attribute of the same name. */
  #control(c) {
    const row = document.createElement("label");
    row.className = "fm-field";
    row.dataset.for = c.name;
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
      slider.min = c.log[0];
      slider.max = c.log[1];
      slider.step = 0.01;
      slider.className = "fm-log";
      slider.setAttribute("aria-label", `${c.label} (log scale)`);
      slider.addEventListener("input", () => { input.value = String(Number((10 ** Number(slider.value)).toPrecision(2))); });
      slider.addEventListener("change", commit);
      input.addEventListener("input", () => { if (Number(input.value) > 0) slider.value = Math.log10(Number(input.value)); });
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
    const effective = JSON.parse(this.#guard(() => this.#sb.effectiveSettingsJson()) ?? "{}");
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
  }

  #wireToolbar() {
    const e = this.#els;
    e.play.addEventListener("click", () => (this.#playing ? this.pause() : this.play()));
    e.step.addEventListener("click", () => { this.pause(); this.step(STEP_BUTTON_STEPS); });
    e.reset.addEventListener("click", () => this.reset());
    e.speed.addEventListener("change", () => this.setAttribute("speed", e.speed.value));
    e.ood.addEventListener("change", () => this.setAttribute("show-ood", String(e.ood.checked)));
    e.directions.addEventListener("change", () => this.setAttribute("directions", e.directions.value));
    e.surface.addEventListener("change", () => this.setAttribute("surface", e.surface.value));
    // A study replaced by a newer one is not a failure: the newer one shows its own progress.
    e.studyRun.addEventListener("click", () => this.study().catch((err) => err.name === "AbortError" || this.#showStudy({ error: errorText(err) })));
    this.#wireRotation();
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
    this.#view3d.yaw += dYaw;
    this.#view3d.pitch = Math.max(-1.45, Math.min(1.45, this.#view3d.pitch + dPitch));
    this.#dirty.landscape = true;
    this.#last.landscape = -Infinity;
    this.#startLoop();
  }

  /** Tells the wasm side which plane to slice along; a change cancels the work under way. */
  #configureLandscape() {
    if (!this.#sb || fatalMessage) return;
    const problem = this.#guard(() => this.#sb.landscapeConfigure(this.#els.directions.value, LANDSCAPE_GRID, LANDSCAPE_POINTS));
    if (problem) console.warn(`flatminima-sandbox: ${problem}`);
    this.#dirty.landscape = true;
    this.#redrawSoon();
  }

  /** The landscape and sharpness computations' share of a frame. */
  #landscapeWork() {
    // Off screen, nobody sees it: the work waits (the loop resumes when the element scrolls into view).
    if (!this.#landscapeOn || !this.#sb || !this.#visible) return false;
    const share = FlatminimaSandbox.#frameShare(performance.now());
    const budget = (this.#playing ? LANDSCAPE_BUDGET_MS.playing : LANDSCAPE_BUDGET_MS.paused) * share;
    const progress = this.#guard(() => this.#sb.landscapeAdvance(budget));
    const measured = this.#guard(() => this.#sb.sharpnessAdvance(SHARPNESS_BUDGET_MS * share, !this.#playing));
    if (fatalMessage) return false;
    this.#els.landProgress.value = progress;
    const busy = progress < 1 || this.#guard(() => this.#sb.sharpnessBusy(!this.#playing));
    if (busy || measured || progress !== this.#lastProgress) this.#dirty.landscape = true;
    this.#lastProgress = progress;
    this.#landscapeBusy = busy;
    if (busy) this.#lastWorkAt = performance.now();
    return busy;
  }

  #lastProgress = -1;

  // ----- backend: the GPU module where there is one -----------------------

  /** "auto" and "gpu" open the GPU (shared by every element); "cpu" and any failure stay on the CPU. */
  #chooseBackend(choice) {
    this.#backend.choice = choice;
    this.#useGpu(null, "", choice === "cpu" ? "" : "looking for WebGPU…");
    if (choice === "cpu") return;
    openGpu(choice).then((kernels) => {
      if (this.#backend.choice !== choice) return;
      const problem = kernels.problem();
      if (problem) {
        gpuOpening = null; // a lost device: the next choice opens a new one
        throw new Error(problem);
      }
      // (Where the browser does not say which adapters are fallbacks, wgpu does.)
      if (choice === "auto" && kernels.isSoftware()) {
        throw new Error(`WebGPU's only adapter here is a software emulation (${kernels.description()}), slower than the CPU path; backend="gpu" uses it anyway`);
      }
      this.#useGpu(kernels, "", "");
    }).catch((e) => {
      if (this.#backend.choice !== choice) return;
      const why = errorText(e);
      // Asked for by name: a notice in the list; auto: the badge says it.
      this.#useGpu(null, choice === "gpu" ? `backend: the GPU backend was requested but ${why}; using the CPU` : "", `no GPU: ${why}`);
    });
  }

  /** Moves the GPU's work to `kernels`, or back to the CPU (null), and says so. */
  #useGpu(kernels, notice, note) {
    const was = this.#backend.gpu ? "gpu" : "cpu";
    const now = kernels ? "gpu" : "cpu";
    Object.assign(this.#backend, { gpu: kernels, note });
    this.#gpuBusy = { boundary: false, surfaces: 0 };
    this.#gpuEpoch++;
    if (this.#sb && !fatalMessage) this.#guard(() => this.#sb.setGpu(kernels ? kernels.description() : ""));
    this.#messages.backend = notice ? [notice] : [];
    this.#renderMessages();
    const badge = this.#els.backend;
    badge.textContent = kernels ? "GPU" : note && !note.startsWith("looking") ? "CPU (no GPU)" : "CPU";
    badge.classList.toggle("fm-gpu", !!kernels);
    badge.title = kernels
      ? `WebGPU (${kernels.description()}) computes the decision boundaries, the loss surfaces and studies; training steps run on the CPU`
      : `Training and drawing run on the CPU (WebAssembly)${note ? `: ${note}` : ""}`;
    if (was !== now || notice) this.dispatchEvent(new CustomEvent("backendchange", { detail: { backend: now, notice: notice || note } }));
    this.#redrawSoon();
  }

  /** A GPU call failed: the CPU takes over for good (until the backend attribute changes). */
  #gpuFailed(e) {
    const gpu = this.#backend.gpu;
    if (!gpu) return;
    const problem = gpu.problem();
    const why = errorText(e) + (problem && !errorText(e).includes(problem) ? `; ${problem}` : "");
    if (problem) gpuOpening = null;
    this.#useGpu(null, `backend: the GPU failed (${why}); using the CPU from here on`, "the GPU failed");
  }

  /**
   * Sends the GPU what is due (both decision boundaries; the landscape's surfaces),
   * at most one of each in flight. Answers arrive in later frames and are drawn then.
   */
  #gpuWork() {
    const gpu = this.#backend.gpu;
    if (!gpu || !this.#sb || fatalMessage) return;
    // A panic in the GPU module leaves its promises unsettled: notice it here.
    if (gpuCrash()) { this.#gpuFailed(new Error(`the GPU module crashed: ${gpuCrash()}`)); return; }
    // Every element shares one GpuKernels, so "the same kernels" does not mean "the same choice".
    const epoch = this.#gpuEpoch;
    const answered = (busy, answer) => (result) => {
      if (this.#gpuEpoch !== epoch) return; // the backend was chosen again meanwhile
      busy();
      const problem = this.#guard(() => answer(result));
      if (problem) this.#gpuFailed(new Error(problem));
      this.#startLoop();
    };
    const failed = (busy) => (e) => {
      if (this.#gpuEpoch !== epoch) return;
      busy();
      this.#gpuFailed(e);
    };
    if (!this.#gpuBusy.boundary) {
      const request = this.#guard(() => this.#sb.boundaryRequest());
      if (request) {
        this.#gpuBusy.boundary = true;
        const done = () => { this.#gpuBusy.boundary = false; this.#dirty.boundary = true; };
        gpu.boundaryGrid(request).then(answered(done, (probs) => this.#sb.boundaryAnswer(probs)), failed(done));
      }
    }
    // Off screen, the surfaces wait, as the CPU's landscape work does.
    if (!this.#landscapeOn || !this.#visible) return;
    for (let request; (request = this.#guard(() => this.#sb.surfaceRequest()));) {
      const { tag } = JSON.parse(request);
      this.#gpuBusy.surfaces++;
      const done = () => { this.#gpuBusy.surfaces--; this.#dirty.landscape = true; };
      gpu.surface(request).then(answered(done, (values) => this.#sb.surfaceAnswer(tag.generation, tag.side, values)), failed(done));
    }
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

  #updatePlayButton() {
    this.#els.play.textContent = this.#playing ? "❚❚ Pause" : "▶ Play";
    this.#els.play.setAttribute("aria-pressed", String(this.#playing));
  }

  // ----- animation loop ---------------------------------------------------

  #startLoop() {
    if (!this.#raf) this.#raf = requestAnimationFrame((t) => this.#frame(t));
  }

  #stopLoop() {
    if (this.#raf) cancelAnimationFrame(this.#raf);
    this.#raf = 0;
  }

  /** One animation frame: train within the budget, redraw what is due. */
  #frame(now) {
    this.#raf = 0;
    if (fatalMessage || !this.isConnected) return;
    if (this.#playing && this.#sb) {
      const max = this.#speed === "max" ? 0xffffffff : Number(this.#speed);
      const done = this.#guard(() => this.#sb.trainFor(max, TRAIN_BUDGET_MS * FlatminimaSandbox.#frameShare(now)));
      this.#lastWorkAt = now;
      if (fatalMessage) return;
      if (done > 0) this.#dirty.boundary = this.#dirty.curves = true;
      if (this.#guard(() => this.#sb.finished())) {
        this.#playing = false;
        this.#updatePlayButton();
        this.#redrawAll();
        return;
      }
    }
    this.#gpuWork();
    this.#landscapeWork();
    if (fatalMessage) return;
    if (this.#dirty.boundary && now - this.#last.boundary >= BOUNDARY_EVERY_MS) {
      this.#last.boundary = now;
      this.#drawBoundaries();
    }
    // Curves, numbers and labels together, a few times a second: digits
    // changing faster than that cannot be read anyway.
    if (this.#dirty.curves && now - this.#last.curves >= CURVES_EVERY_MS) {
      this.#last.curves = now;
      this.#drawCurves();
      this.#updateText();
    }
    if (this.#dirty.landscape && now - this.#last.landscape >= LANDSCAPE_EVERY_MS) {
      this.#last.landscape = now;
      this.#drawLandscape();
    }
    if (now - this.#last.event >= EVENT_EVERY_MS) {
      this.#last.event = now;
      this.#emitMetrics();
    }
    if (this.#playing || this.#dirty.boundary || this.#dirty.curves || this.#dirty.landscape || this.#landscapeBusy) this.#startLoop();
  }

  /** Redraw at the next frame (cheap to call often). */
  #redrawSoon() {
    this.#dirty.boundary = this.#dirty.curves = this.#dirty.landscape = true;
    this.#last.boundary = this.#last.curves = this.#last.landscape = -Infinity;
    if (this.#sb) this.#startLoop();
  }

  /** Everything now: after a step, a reset or new settings. */
  #redrawAll() {
    if (!this.#sb || fatalMessage) return;
    this.#drawBoundaries();
    this.#drawCurves();
    this.#updateText();
    this.#emitMetrics();
    // The landscape catches up over the next frames (it is computed a little at a time).
    this.#dirty.landscape = true;
    this.#startLoop();
  }

  #drawBoundaries() {
    this.#dirty.boundary = false;
    const scale = window.devicePixelRatio || 1;
    this.#els.panels.forEach((p, side) => {
      // true: a big net's newer field is still being computed, a band of rows per call.
      if (p.canvas.width > 0 && this.#guard(() => this.#sb.drawBoundary(side, p.canvas, this.#els.ood.checked, scale))) this.#dirty.boundary = true;
    });
  }

  #drawCurves() {
    this.#dirty.curves = false;
    if (this.#els.loss.width > 0) {
      this.#guard(() => this.#sb.drawCurves(this.#els.loss, this.#els.acc, window.devicePixelRatio || 1));
    }
  }

  #drawLandscape() {
    this.#dirty.landscape = false;
    if (!this.#landscapeOn || !this.#sb || fatalMessage) return;
    const scale = window.devicePixelRatio || 1;
    const e = this.#els;
    const split = e.surface.value;
    e.landSides.forEach((s, side) => {
      if (s.contour.width > 0) {
        this.#guard(() => this.#sb.drawSurface(side, s.contour, s.surface3d, split, this.#view3d.yaw, this.#view3d.pitch, scale));
      }
      if (s.slice.width > 0) this.#guard(() => this.#sb.drawSlice(side, s.slice, scale));
    });
    if (e.interp.width > 0) this.#guard(() => this.#sb.drawInterpolation(e.interp, scale));
    if (e.lambda.width > 0) this.#guard(() => this.#sb.drawSharpness(e.lambda, e.spectrum, scale));
    this.#updateLandscapeText();
  }

  #updateLandscapeText() {
    const e = this.#els;
    const land = JSON.parse(this.#guard(() => this.#sb.landscapeJson(false)) ?? "null");
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
    e.sharpBody.innerHTML = [...SHARP_ROWS, ["measured at step", "step"]].map(([title, key]) => {
      const [a, b] = [m.left.sharpness, m.right.sharpness].map((s) => (s ? s[key] : null));
      const fmt = key === "step" ? (v) => (v == null ? "–" : String(v)) : formatNumber;
      const lower = key !== "step" && key !== "edge_of_stability" && a != null && b != null && a !== b ? (a < b ? 0 : 1) : -1;
      return `<tr><th scope="row">${title}</th>${[a, b].map((v, i) => `<td class="${lower === i ? "fm-better" : ""}">${fmt(v)}</td>`).join("")}</tr>`;
    }).join("");
  }

  /** Canvas pixels follow their CSS size (times the device pixel ratio). */
  #fitCanvases() {
    const dpr = window.devicePixelRatio || 1;
    let changed = false;
    for (const c of this.#allCanvases()) {
      const w = Math.round(c.clientWidth * dpr), h = Math.round(c.clientHeight * dpr);
      if (w > 0 && h > 0 && (c.width !== w || c.height !== h)) {
        c.width = w;
        c.height = h;
        changed = true;
      }
    }
    if (changed && this.#sb && !fatalMessage) {
      // Resizing clears a canvas: redraw in this same frame, before it is painted.
      this.#drawBoundaries();
      this.#drawCurves();
      this.#drawLandscape();
    }
  }

  #allCanvases() {
    const e = this.#els;
    return [...e.panels.map((p) => p.canvas), e.loss, e.acc,
      ...e.landSides.flatMap((s) => [s.contour, s.surface3d, s.slice]), e.interp, e.lambda, e.spectrum];
  }

  // ----- text: labels, table, status, divergence --------------------------

  #updateText() {
    const m = this.metrics();
    if (!m) return;
    const e = this.#els;
    const sides = [m.left, m.right];
    sides.forEach((s, i) => {
      const p = e.panels[i];
      p.label.textContent = s.label;
      p.quick.innerHTML = `train <b>${formatAcc(s.train_acc)}</b> · ID <b>${formatAcc(s.id_acc)}</b> · OOD <b>${formatAcc(s.ood_acc)}</b>`;
      p.diverged.hidden = !s.diverged;
      if (s.diverged) p.divergedText.textContent = `Diverged at step ${s.diverged_step}: ${s.diverged_reason}`;
    });
    e.thLeft.textContent = e.legendLeft.textContent = `Left: ${m.left.label}`;
    e.thRight.textContent = e.legendRight.textContent = `Right: ${m.right.label}`;

    e.tbody.innerHTML = ROWS.map(([title, key, kind]) => {
      const [a, b] = sides.map((s) => s[key]);
      const fmt = kind === "loss" ? formatLoss : kind === "acc" ? formatAcc : formatGap;
      // Mark the better side: lower loss or gap, higher accuracy.
      const better = a == null || b == null || a === b ? -1 : (kind === "acc" ? a > b : a < b) ? 0 : 1;
      const cell = (v, i) => `<td class="${better === i ? "fm-better" : ""}">${fmt(v)}</td>`;
      return `<tr class="fm-row-${kind}${key.startsWith("ood") ? " fm-ood" : ""}"><th scope="row">${title}</th>${cell(a, 0)}${cell(b, 1)}</tr>`;
    }).join("");

    const classes = palette.classes.slice(0, m.classes);
    const legend = `${classes.map((c, k) => `<span><span class="fm-dot" style="background:${c}"></span>class ${k}</span>`).join("")}
      <span><span class="fm-dot fm-dot-train"></span>training point</span>
      <span><span class="fm-cross" aria-hidden="true">×</span>OOD test point</span>
      <span><span class="fm-boundary-line"></span>decision boundary</span>
      <span class="fm-shift">OOD set: ${escapeHtml(m.shift)}</span>`;
    if (legend !== this.#legendHtml) e.legend.innerHTML = this.#legendHtml = legend;
    this.#setStatus(m.finished ? this.#finishedText(m) : `step ${m.step.toLocaleString("en-US")} / ${m.steps.toLocaleString("en-US")}`);
  }

  #finishedText(m = this.#metrics) {
    if (!m) return "";
    if (m.left.diverged && m.right.diverged) return "Both sides diverged: lower the learning rate, then Reset";
    return `Done: ${m.steps.toLocaleString("en-US")} steps (raise Steps to train longer)`;
  }

  #setStatus(text) {
    this.#els.status.textContent = text;
  }

  #emitMetrics() {
    const m = this.metrics();
    if (m) this.dispatchEvent(new CustomEvent("metrics", { detail: m }));
  }

  // ----- errors -----------------------------------------------------------

  /** Runs a call into wasm; an exception stops this element (and a panic, all of them). */
  #guard(fn) {
    if (fatalMessage) return undefined;
    try {
      return fn();
    } catch (e) {
      const message = describeError(e);
      if (e instanceof WebAssembly.RuntimeError || globalThis.__flatminimaPanic) {
        fatalMessage = message;
        for (const el of liveElements) el.#showFatal(message);
      }
      this.#showFatal(message);
      return undefined;
    }
  }

  #showFatal(message) {
    this.#playing = false;
    this.#stopLoop();
    this.#updatePlayButton();
    for (const b of [this.#els.play, this.#els.step, this.#els.reset]) b.disabled = true;
    this.#els.fatal.textContent = message;
    this.#els.fatal.hidden = false;
    this.#els.root.hidden = false;
  }
}

if (!customElements.get("flatminima-sandbox")) customElements.define("flatminima-sandbox", FlatminimaSandbox);
export { FlatminimaSandbox };
