// @ts-check
// The messages between a <flatminima-sandbox> element (the page's main thread,
// www/flatminima-sandbox.js) and its worker (www/flatminima-worker.js). This
// file only declares their types; `make lint` type-checks both sides against it
// (tsc --noEmit with checkJs), so a message one side sends and the other does not
// understand is a lint error, not a silent no-op.

/**
 * What the element tells the worker about the views (not about the runs).
 * @typedef {object} ViewState
 * @property {string} speed       training steps per display frame: "1", "10", "100", "1000" or "max"
 * @property {boolean} showOod    draw the OOD test points on the boundary panels
 * @property {boolean} landscape  compute and draw the landscape and sharpness views
 * @property {string} directions  the landscape's plane: "random", "hessian" or "pca"
 * @property {string} surface     which loss the surfaces show: "train" or "ood"
 * @property {boolean} visible    any of the element is on screen (landscape work waits while not)
 * @property {number} yaw         3D view angles (radians)
 * @property {number} pitch
 * @property {number} dpr         device pixel ratio the canvases are sized with
 */

/**
 * Page -> worker.
 * @typedef {{type: "configure", revision: number, query: string}
 *   | {type: "view", view: Partial<ViewState>}
 *   | {type: "resize", sizes: Record<string, [number, number]>, dpr: number}
 *   | {type: "play"} | {type: "pause"} | {type: "reset"}
 *   | {type: "step", id: number, n: number}
 *   | {type: "settle", id: number}
 *   | {type: "study", id: number, replicas: number, steps: number}
 *   | GridRequest
 *   | {type: "gridCancel"}
 *   | {type: "backend", choice: "auto" | "cpu" | "gpu"}
 *   | {type: "export", id: number, what: "record" | "curves"}
 *   | {type: "import", id: number, record: string}
 *   | {type: "clear-pinned", id: number}
 *   | {type: "add-point", id: number, side: number, x: number, y: number, label: number}
 *   | {type: "set-points", id: number, points: [number, number, number][]}
 *   | {type: "panic"}} ToWorker
 */

/**
 * A grid study of the current settings (the study panel; `el.study({dataSeeds, ...})`):
 * axes over settings, data draws x seeds per draw, the page's steps, or the
 * matched-loss rule when `untilTrainLoss` is a number. Answered by a reply with
 * the study's JSON (`flatminima study`'s output) plus `ms` and `longest_piece_ms`.
 * @typedef {object} GridRequest
 * @property {"grid"} type
 * @property {number} id
 * @property {string} axes          `lr=0.01,0.1; batch-size=8,32` ("" for none)
 * @property {number} dataSeeds     data draws
 * @property {number} seeds         init/batch-order seeds per draw
 * @property {number | null} untilTrainLoss  the matched-loss target, or null for fixed steps
 * @property {number} checkEvery    steps between two checks of the train loss
 */

/**
 * To the study helper (www/flatminima-study-helper.js, a second worker on a second core):
 * train shard `index` of `count` of a grid study's units and answer with their runs.
 * @typedef {object} StudyHelperRequest
 * @property {string} query         the page's settings as a URL query
 * @property {string} axes
 * @property {number} dataSeeds
 * @property {number} seeds
 * @property {number | null} untilTrainLoss
 * @property {number} checkEvery
 * @property {number} index         the shard, from 0
 * @property {number} count         shards in all
 */

/**
 * From the study helper: progress (its shard's runs done, in all, its longest piece in ms),
 * its shard's runs as numbers when done (GridStudy.partRuns, for GridStudy.addPart), or why it failed.
 * @typedef {{type: "progress", progress: number, runs: number, total: number, longest: number}
 *   | {type: "done", index: number, numbers: Float64Array, runs: number, total: number, longest: number}
 *   | {type: "error", message: string}} StudyHelperMessage
 */

/**
 * What the settings of a revision turned into (sent when they changed).
 * @typedef {object} SettingsEcho
 * @property {{setting: string, message: string}[]} errors  rejected settings (their defaults are used)
 * @property {Record<string, string>} effective  every setting's value as the run uses it
 * @property {string} query   the non-default settings as a URL query
 * @property {string} config  the run config as JSON (`flatminima train --config` replays it)
 */

/**
 * A snapshot of the worker's runs.
 * @typedef {object} State
 * @property {"state"} type
 * @property {number} revision     the settings revision these show
 * @property {boolean} playing
 * @property {any} metrics         the element's metrics() (see the README)
 * @property {any} landscape       the element's landscape(), or null
 * @property {number} landscapeProgress
 * @property {{heap: number, live: number}} memory  wasm heap bytes and live Rust bytes
 * @property {SettingsEcho} [settings]
 */

/**
 * The answer to an "import" request (a reply's value): the record's settings as a
 * URL query (the element takes them as its attributes) and what did not fit.
 * @typedef {object} Imported
 * @property {string} settings
 * @property {string[]} problems
 */

/**
 * Worker -> page.
 * @typedef {{type: "ready", palette: {classes: string[], sides: string[]}, schema: {settings: any[], groups: {id: string, title: string}[], limits: {study_replicas: number, study_steps: number, study_params: number}}}
 *   | State
 *   | {type: "frame", revision: number, bitmaps: Record<string, ImageBitmap>}
 *   | {type: "backend", backend: "gpu" | "cpu", notice: string, note: string, description: string}
 *   | {type: "study", progress: number, backend: string, replicas: number}
 *   | {type: "grid", progress: number, runs: number, total: number}
 *   | {type: "reply", id: number, value?: any, error?: string, name?: string}
 *   | {type: "fatal", message: string}} FromWorker
 */

export {};
