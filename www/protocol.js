// @ts-check
// The messages between a <flatminima-sandbox> element (the page's main thread,
// www/flatminima-sandbox.js) and its worker (www/flatminima-worker.js).
//
// They are declared once, in Rust (src/protocol.rs: `enum Request`, `enum Reply`
// and the records they carry); wasm-bindgen writes their TypeScript declarations
// into www/pkg/flatminima.d.ts (`make build`), and this file only names them for
// the JavaScript. `make lint` type-checks both sides against them (tsc --noEmit
// with checkJs), so a message one side sends and the other does not understand
// is a lint error, not a silent no-op.

/** Page -> worker. @typedef {import("./pkg/flatminima.js").Request} Request */
/** Worker -> page. @typedef {import("./pkg/flatminima.js").Reply} Reply */
/** A change of the views. @typedef {import("./pkg/flatminima.js").ViewChange} ViewChange */
/** All of the views' state, as the worker keeps it. @typedef {Required<ViewChange>} ViewState */
/** What a revision's settings turned into. @typedef {import("./pkg/flatminima.js").SettingsEcho} SettingsEcho */
/** The answer to an "import" request. @typedef {import("./pkg/flatminima.js").Imported} Imported */
/** A snapshot of the worker's runs. @typedef {Extract<Reply, {type: "state"}>} State */
/** One of the student's own points: `[x, y, class]` or `[x, y, class, "train" | "ood"]`. @typedef {import("./pkg/flatminima.js").MyPoint} MyPoint */
/** To the study helper (a second worker): a grid study and the units dealt to it. @typedef {import("./pkg/flatminima.js").StudyHelperRequest} StudyHelperRequest */
/** From the study helper: progress, its finished units' runs, or why it failed. @typedef {import("./pkg/flatminima.js").StudyHelperMessage} StudyHelperMessage */
/** A grid study request. @typedef {Extract<Request, {type: "grid"}>} GridRequest */
/**
 * A request answered by a reply of the same id, as the element writes it (the id is added when it is sent).
 * @typedef {Extract<Request, {id: number}> extends infer R ? R extends {id: number} ? Omit<R, "id"> : never : never} Ask
 */

export {};
