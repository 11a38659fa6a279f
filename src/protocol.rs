//! The messages between a `<flatminima-sandbox>` element (the page's main thread,
//! `www/flatminima-sandbox.js`) and its worker (`www/flatminima-worker.js`),
//! declared once, here: [`Request`] (element -> worker) and [`Reply`] (worker ->
//! element), with the plain records they carry.
//!
//! Both ends are JavaScript (the main thread loads no wasm), so these types are
//! never built in the page: they are its contract. On wasm32 each derives
//! `Tsify`, so wasm-bindgen writes a TypeScript declaration of it into
//! `www/pkg/flatminima.d.ts`; `www/protocol.js` imports those, and `make lint`
//! (tsc --noEmit with checkJs) checks every `postMessage` and every `switch` on a
//! message's `type` of both sides against them. Only the declarations are
//! derived (no `into_wasm_abi`/`from_wasm_abi`): nothing here is compiled into
//! the module (wasm-bindgen strips the custom section the declarations travel
//! in), and the serde derives are for the native test that every message
//! serialises (`tests/protocol.rs`).
//!
//! A field whose value is a browser object (an `ImageBitmap` moved with the
//! message) or JSON that the core writes (the metrics snapshot) is declared
//! with its TypeScript type; its Rust type is a stand-in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
#[cfg(target_arch = "wasm32")]
use tsify::Tsify;

/// Element -> worker. Requests with an `id` are answered by a [`Reply::Answer`]
/// with the same `id`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
#[serde(tag = "type", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum Request {
    /// The page's wasm module, compiled once by the element for every sandbox on the
    /// page, so that several sandboxes download and compile it once; the worker loads
    /// nothing before it. Null where the element could not compile it: the worker then
    /// fetches the module itself (and says what went wrong).
    Module {
        /// A `WebAssembly.Module` (structured-cloned with the message), or null.
        #[cfg_attr(target_arch = "wasm32", tsify(type = "WebAssembly.Module | null"))]
        module: Transferred,
    },
    /// New settings: every result the worker sends from now on says which revision it belongs to.
    Configure {
        /// The element's settings revision, bumped on every change of what the runs are
        /// (settings here; a reset, pinned weights or points in those requests).
        revision: u32,
        /// All settings as a URL query (`settings::parse_query` reads it).
        query: String,
    },
    /// A change of how the views are shown (not of the runs): only the fields that changed.
    View {
        /// The changed fields.
        view: ViewChange,
    },
    /// The canvases' sizes changed (layout, zoom).
    Resize {
        /// Each canvas's CSS size, `[width, height]`, by the element's canvas names.
        #[cfg_attr(target_arch = "wasm32", tsify(type = "Record<string, [number, number]>"))]
        sizes: BTreeMap<String, (f64, f64)>,
        /// The device pixel ratio the canvases are sized with.
        dpr: f64,
    },
    /// Train (at the view's speed) until paused or done.
    Play,
    /// Stop training.
    Pause,
    /// Start the runs again from step 0 with the same settings.
    Reset {
        /// The element's next settings revision (results from before are stale).
        revision: u32,
    },
    /// Train `n` pairs of steps, then answer.
    Step {
        /// The request's id.
        id: u32,
        /// Pairs of steps.
        n: u32,
    },
    /// Answer once everything sent before has been applied (with a fresh snapshot first).
    Settle {
        /// The request's id.
        id: u32,
    },
    /// A study of the current settings: `replicas` seeds per side, `steps` each.
    Study {
        /// The request's id.
        id: u32,
        /// Seeds per side.
        replicas: u32,
        /// Steps per run.
        steps: u32,
    },
    /// A grid study of the current settings (the study panel; `el.study({dataSeeds, ...})`),
    /// answered with the study's JSON (`flatminima study`'s output) plus `ms` and `longest_piece_ms`.
    Grid {
        /// The request's id.
        id: u32,
        /// The axes over settings, `lr=0.01,0.1; batch-size=8,32` ("" for none).
        axes: String,
        /// Data draws.
        data_seeds: u32,
        /// Init/batch-order seeds per draw.
        seeds: u32,
        /// The matched-loss target, or null for the page's fixed steps.
        #[cfg_attr(target_arch = "wasm32", tsify(type = "number | null"))]
        until_train_loss: Option<f64>,
        /// Steps between two checks of the train loss.
        check_every: u32,
        /// Workers to split it over (the element's and helpers), or null for one per core
        /// (leaving one to the page where there are more than two, at most four).
        #[serde(default)]
        #[cfg_attr(target_arch = "wasm32", tsify(type = "number | null"))]
        workers: Option<u32>,
    },
    /// Drop the grid study under way (its request is answered with an `AbortError`).
    #[serde(rename = "gridCancel")]
    GridCancel,
    /// Choose the backend of the boundaries, surfaces and studies.
    Backend {
        /// `auto` (a hardware GPU where there is one), `cpu` or `gpu`.
        choice: BackendChoice,
    },
    /// Answer with the run record (JSON) or the curves (CSV).
    Export {
        /// The request's id.
        id: u32,
        /// Which export.
        what: Export,
    },
    /// Restart the runs from a run record; answered with an [`Imported`].
    Import {
        /// The request's id.
        id: u32,
        /// The element's next settings revision (the runs are replaced).
        revision: u32,
        /// The record's JSON text.
        record: String,
    },
    /// Forget the imported weights and points (the settings stay).
    ClearPinned {
        /// The request's id.
        id: u32,
        /// The element's next settings revision (the runs are replaced).
        revision: u32,
    },
    /// Add a point of the student's own where they clicked a decision panel.
    AddPoint {
        /// The request's id.
        id: u32,
        /// The element's next settings revision (the runs are replaced).
        revision: u32,
        /// Which side's panel: 0 left, 1 right.
        side: u32,
        /// The click, in the canvas's pixels.
        x: f64,
        /// The click, in the canvas's pixels.
        y: f64,
        /// The point's class.
        label: u32,
        /// Which set it joins (absent: training).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(target_arch = "wasm32", tsify(optional))]
        split: Option<Split>,
    },
    /// Train on these points (empty: the data set's own again).
    SetPoints {
        /// The request's id.
        id: u32,
        /// The element's next settings revision (the runs are replaced).
        revision: u32,
        /// `[x, y, class]` (training) or `[x, y, class, "ood"]` each, in data coordinates.
        points: Vec<MyPoint>,
    },
    /// Show a side's current weights, its weight average or its ensemble in its panel.
    Show {
        /// Which side: 0 left, 1 right.
        side: u32,
        /// Which of the side's solutions.
        which: Solution,
    },
    /// Train an ensemble of `k` members of a side (seeds seed + i); answered when trained.
    Ensemble {
        /// The request's id.
        id: u32,
        /// Which side: 0 left, 1 right.
        side: u32,
        /// Members.
        k: u32,
    },
    /// Dinh et al.'s rescaling of a side's current weights: layer `layer` times
    /// `alpha`, the next one divided by it; answered with the before/after measures.
    Rescale {
        /// The request's id.
        id: u32,
        /// Which side: 0 left, 1 right.
        side: u32,
        /// The hidden layer multiplied by `alpha` (0: the first).
        layer: u32,
        /// The factor.
        alpha: f64,
    },
    /// Panic in the worker's wasm on purpose (tests of the error path).
    Panic,
}

/// Worker -> element.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
#[serde(tag = "type", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum Reply {
    /// The module is loaded: what the element builds its legends and controls from.
    Ready {
        /// The canvases' colours.
        palette: Palette,
        /// The settings schema and the page's limits.
        schema: Schema,
    },
    /// A snapshot of the worker's runs.
    State(State),
    /// Freshly drawn canvases.
    Frame {
        /// The settings revision they show.
        revision: u32,
        /// One bitmap per redrawn canvas, by the element's canvas names, transferred with the message.
        #[cfg_attr(target_arch = "wasm32", tsify(type = "Record<string, ImageBitmap>"))]
        bitmaps: BTreeMap<String, Transferred>,
    },
    /// The backend in use changed.
    Backend {
        /// Where the boundaries, surfaces and studies are computed.
        backend: Device,
        /// A message for the element's notices ("" for none).
        notice: String,
        /// A short note for the backend badge.
        note: String,
        /// The GPU adapter ("" on the CPU).
        description: String,
    },
    /// A study's progress.
    Study {
        /// Done, from 0 to 1.
        progress: f64,
        /// "GPU" or "CPU".
        backend: String,
        /// Seeds per side.
        replicas: u32,
    },
    /// A grid study's progress.
    Grid {
        /// Done, from 0 to 1.
        progress: f64,
        /// Runs finished.
        runs: u32,
        /// Runs in all (0 until known).
        total: u32,
    },
    /// The progress of a side's ensemble and of a rescaling's measurements (0 to 1 each).
    Extras {
        /// The ensemble's training, done from 0 to 1.
        ensemble: f64,
        /// The rescaling's measurements, done from 0 to 1.
        rescale: f64,
    },
    /// The answer to the request with this `id`: a value, or an error.
    #[serde(rename = "reply")]
    Answer {
        /// The request's id.
        id: u32,
        /// What the request asked for (its shape depends on the request).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(target_arch = "wasm32", tsify(type = "any"))]
        value: Option<Value>,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The error's name (`RangeError`, `AbortError`; absent: `Error`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// The worker stopped (a panic or a failed load): the element shows the message.
    Fatal {
        /// What happened.
        message: String,
    },
}

/// What the element tells the worker about the views; a "view" request carries
/// only what changed, the worker keeps all of it (`Required<ViewChange>`).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
#[serde(rename_all = "camelCase")]
pub struct ViewChange {
    /// Training steps per display frame: "1", "10", "100", "1000" or "max".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<String>,
    /// Draw the OOD test points on the boundary panels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_ood: Option<bool>,
    /// Compute and draw the landscape and sharpness views.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landscape: Option<bool>,
    /// The landscape's plane: "random", "hessian" or "pca".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directions: Option<String>,
    /// Which loss the surfaces show: "train" or "ood".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surface: Option<String>,
    /// Any of the element is on screen (landscape work waits while not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible: Option<bool>,
    /// The 3D view's yaw (radians).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yaw: Option<f64>,
    /// The 3D view's pitch (radians).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitch: Option<f64>,
    /// The device pixel ratio the canvases are sized with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpr: Option<f64>,
}

/// A snapshot of the worker's runs ([`Reply::State`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The settings revision these show.
    pub revision: u32,
    /// Whether the runs are training.
    pub playing: bool,
    /// The element's `metrics()` (see the README), as the sandbox's JSON.
    #[cfg_attr(target_arch = "wasm32", tsify(type = "any"))]
    pub metrics: Value,
    /// The element's `landscape()`, or null.
    #[cfg_attr(target_arch = "wasm32", tsify(type = "any"))]
    pub landscape: Value,
    /// How much of the landscape is computed, from 0 to 1.
    pub landscape_progress: f64,
    /// The worker's memory.
    pub memory: Memory,
    /// What the settings turned into, sent when they changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<SettingsEcho>,
}

/// The worker's memory, for the leak tests.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
pub struct Memory {
    /// The wasm heap's size in bytes.
    pub heap: f64,
    /// Live Rust bytes (`live_bytes`).
    pub live: f64,
}

/// What the settings of a revision turned into.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
pub struct SettingsEcho {
    /// Rejected settings (their defaults are used).
    pub errors: Vec<SettingError>,
    /// Every setting's value as the run uses it.
    #[cfg_attr(target_arch = "wasm32", tsify(type = "Record<string, string>"))]
    pub effective: BTreeMap<String, String>,
    /// The non-default settings as a URL query.
    pub query: String,
    /// The run config as JSON (`flatminima train --config` replays it).
    pub config: String,
}

/// A rejected setting and why.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
pub struct SettingError {
    /// The setting's name.
    pub setting: String,
    /// What is wrong with its value.
    pub message: String,
}

/// The answer to an "import" request (a reply's value): the record's settings as a
/// URL query (the element takes them as its attributes) and what did not fit.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
pub struct Imported {
    /// The record's settings as a URL query.
    pub settings: String,
    /// What did not carry over.
    pub problems: Vec<String>,
}

/// The colours the canvases use, as CSS hex strings (`paletteJson`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
pub struct Palette {
    /// One per class.
    pub classes: Vec<String>,
    /// Left, right.
    pub sides: Vec<String>,
}

/// The settings schema (`settingsSpecJson`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
pub struct Schema {
    /// `settings::SETTINGS` as JSON: name, label, group, kind, default, help.
    #[cfg_attr(target_arch = "wasm32", tsify(type = "any[]"))]
    pub settings: Vec<Value>,
    /// The groups in order.
    pub groups: Vec<SchemaGroup>,
    /// The page's limits.
    pub limits: Limits,
}

/// A group of settings in the controls.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
pub struct SchemaGroup {
    /// Its name in the schema.
    pub id: String,
    /// Its title in the controls.
    pub title: String,
}

/// The page's limits on a study.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
pub struct Limits {
    /// Most replicas per side.
    pub study_replicas: u32,
    /// Most steps per run.
    pub study_steps: u32,
    /// Most replicas x parameters per side.
    pub study_params: u32,
}

/// The backend an element asks for.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// A hardware GPU where WebGPU has one, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// The GPU, even a software one.
    Gpu,
}

/// Where the work is done.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// WebGPU.
    Gpu,
    /// The CPU.
    Cpu,
}

/// What an "export" request asks for.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
#[serde(rename_all = "lowercase")]
pub enum Export {
    /// The run record (JSON, `flatminima train --out`'s format).
    Record,
    /// The curves (CSV).
    Curves,
}

/// The element's worker -> its study helper (`www/flatminima-study-helper.js`,
/// a worker on another core): first `start`, then the grid study's units
/// dealt one at a time as the helper frees up (`train-here`, or `trained`
/// with the weights the GPU trained), and `drop` for a unit whose copy was
/// finished elsewhere first. The element's worker deals to whichever worker
/// is free, itself included, so every core works until the last unit.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum StudyHelperRequest {
    /// Set up the study (no unit yet).
    #[serde(rename_all = "camelCase")]
    Start {
        /// The page's settings as a URL query.
        query: String,
        /// The study's axes, `lr=0.01,0.1; batch-size=8,32` ("" for none).
        axes: String,
        /// Data draws.
        data_seeds: u32,
        /// Init/batch-order seeds per draw.
        seeds: u32,
        /// The matched-loss target, or null for fixed steps.
        until_train_loss: Option<f64>,
        /// Steps between two checks of the train loss.
        check_every: u32,
    },
    /// A unit's runs trained on the GPU: their final weights, run after run
    /// (the GPU module's `gridUnits`, for `GridStudy.deal`), to measure.
    Trained {
        /// The unit (cell x data draw).
        unit: u32,
        /// The weights.
        #[cfg_attr(target_arch = "wasm32", tsify(type = "Float64Array"))]
        weights: Vec<f64>,
    },
    /// A unit to train and measure here (`GridStudy.deal` with no weights).
    TrainHere {
        /// The unit.
        unit: u32,
    },
    /// Drop this unit if it is not finished: another worker finished it.
    Drop {
        /// The unit.
        unit: u32,
    },
}

/// The study helper -> the element's worker.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum StudyHelperMessage {
    /// How far it is.
    Progress {
        /// How far its unit under way is, from 0 to 1.
        progress: f64,
        /// Its longest piece so far (ms).
        longest: f64,
    },
    /// The runs of the units it finished since its last `runs` message, as
    /// plain numbers (`GridStudy.takeRuns`, for `GridStudy.addRuns`).
    Runs {
        /// The runs, `RunResult::to_numbers` each, moved with the message.
        #[cfg_attr(target_arch = "wasm32", tsify(type = "Float64Array"))]
        numbers: Vec<f64>,
        /// Its longest piece so far (ms).
        longest: f64,
    },
    /// Why it stopped.
    Error {
        /// What happened.
        message: String,
    },
}

/// Which set a point of the student's own joins.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The training set.
    Train,
    /// The OOD test set the run is scored on.
    Ood,
}

/// One of the student's own points ("Your own data"): `[x, y, class]` (a
/// training point) or `[x, y, class, split]`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
#[serde(untagged)]
pub enum MyPoint {
    /// A training point.
    Train(f64, f64, u32),
    /// A point with the set it joins.
    With(f64, f64, u32, Split),
}

/// Which of a side's solutions its panel shows.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(Tsify))]
#[serde(rename_all = "lowercase")]
pub enum Solution {
    /// The weights the side is training.
    Weights,
    /// Its weight average (SWA or EMA).
    Average,
    /// Its ensemble.
    Ensemble,
}

/// A browser object sent with a message (an `ImageBitmap` moved, a
/// `WebAssembly.Module` cloned): Rust never holds one, so its Rust type is
/// this empty stand-in.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq)]
pub struct Transferred;
