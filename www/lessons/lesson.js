// @ts-check
// The lesson engine: turns one lesson of catalogue/ into a page a student works
// through. Claim (with its source and the published number), a prediction the
// student commits to, the run (one or more <flatminima-sandbox> elements with the
// lesson's preset), then a check written from what the run measured, never from
// what the paper says should happen; "over many seeds" repeats the run with other
// initial weights and batch orders and states the spread.
//
// The page's URL is the permalink: a lesson with one sandbox keeps its settings
// in the query (like the main page), so a student's changed run can be shared.

import { LESSON_IDS, loadLesson } from "./catalogue.js";
import { pairedDifference } from "./stats.js";

// This page's lesson, fetched while the element's module loads.
const id = document.getElementById("lesson")?.dataset.lesson ?? "";
const index = LESSON_IDS.indexOf(id);
const lessonLoading = index >= 0 ? loadLesson(id) : null;

// The element, minified by scripts/build-wasm.sh (flatminima-sandbox.min.js, as index.html
// loads it); imported by URL so that tsc checks this file against the element's source.
await import(new URL("../flatminima-sandbox.min.js", import.meta.url).href);

/** @typedef {import("./checks.js").Lesson} Lesson */
/** @typedef {import("./checks.js").RunResult} RunResult */

/** How long a check waits for the sharpness of the last step (ms). */
const SHARPNESS_WAIT_MS = 15_000;

/**
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 */
function h(tag, attrs = {}, children = []) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/** A paragraph of text whose `**...**` parts are bold. @param {string} text */
function para(text) {
  const p = document.createElement("p");
  text.split(/\*\*(.+?)\*\*/).forEach((part, i) => p.append(i % 2 ? h("strong", {}, [part]) : part));
  return p;
}

/**
 * Resolves once both sides' sharpness was measured at their current step (the
 * element measures the current step while paused), or after `ms` with whatever
 * was measured last.
 * @param {any} el
 * @param {number} ms
 */
async function sharpnessNow(el, ms) {
  const start = performance.now();
  for (;;) {
    const m = el.metrics();
    // A side's weight average, where it keeps one, is measured at the same step too.
    const averaged = (/** @type {any} */ a, /** @type {number} */ step) =>
      !a || a.n_averaged === 0 || (a.step === step && a.sharpness?.step === step);
    const fresh = m && ["left", "right"].every((s) => m[s].diverged ||
      (m[s].sharpness?.step === m[s].step && averaged(m[s].average, m[s].step)));
    if (fresh || performance.now() - start > ms) return m;
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** @param {Lesson} lesson @param {number} index */
function render(lesson, index) {
  document.title = `${lesson.title} · flatminima lessons`;
  const main = /** @type {HTMLElement} */ (document.getElementById("lesson"));
  main.replaceChildren();
  const n = LESSON_IDS.length;
  const nav = h("nav", { class: "crumbs", "aria-label": "Lessons" }, [
    h("a", { href: "./" }, ["All lessons"]), ` · lesson ${index + 1} of ${n}`,
    ...(index > 0 ? [" · ", h("a", { href: `${LESSON_IDS[index - 1]}.html` }, ["previous"])] : []),
    ...(index + 1 < n ? [" · ", h("a", { href: `${LESSON_IDS[index + 1]}.html` }, ["next"])] : []),
  ]);
  const claim = h("section", { class: "claim", "aria-labelledby": "claim-h" }, [
    h("h2", { id: "claim-h" }, ["The claim"]),
    ...lesson.claim.map(para),
    h("p", { class: "source" }, [lesson.source]),
  ]);

  // 1. The prediction: nothing runs before the student has committed to one.
  const choices = lesson.choices.map((c, i) =>
    h("label", { class: "choice" }, [
      h("input", { type: "radio", name: "prediction", value: c.id, ...(i === 0 ? { required: "" } : {}) }),
      " ", c.text,
    ]));
  const commit = h("button", { type: "submit", class: "primary" }, ["Commit my prediction"]);
  const form = h("form", { class: "predict" }, [
    h("fieldset", {}, [h("legend", {}, [lesson.question]), ...choices]),
    commit,
  ]);
  const predictionNote = h("p", { class: "committed", "aria-live": "polite" });

  // 2. The run.
  const sandboxes = lesson.runs.map((run) => {
    const el = /** @type {any} */ (document.createElement("flatminima-sandbox"));
    for (const [k, v] of Object.entries(run.attrs)) el.setAttribute(k, v);
    el.setAttribute("speed", "max");
    return { run, el };
  });
  if (sandboxes.length === 1) applyUrl(sandboxes[0].el);
  const runButton = h("button", { type: "button", class: "primary", disabled: "" }, [lesson.runLabel ?? "Run the experiment"]);
  const runStatus = h("p", { class: "status", role: "status" });
  const runSection = h("section", { class: "run", "aria-labelledby": "run-h" }, [
    h("h2", { id: "run-h" }, ["2. Run it"]),
    ...lesson.setup.map(para),
    h("p", {}, [runButton]),
    runStatus,
    ...sandboxes.map(({ run, el }) => h("figure", { class: "sandbox" }, [h("figcaption", {}, [run.label]), el])),
  ]);

  // 3. The check, written from the run's numbers.
  const check = h("div", { class: "check-text", "aria-live": "polite" });
  const many = h("button", { type: "button", disabled: "" }, [`Run over ${lesson.many?.replicas ?? 32} seeds`]);
  const manyText = h("div", { class: "many-text", "aria-live": "polite" });
  const checkSection = h("section", { class: "check", "aria-labelledby": "check-h" }, [
    h("h2", { id: "check-h" }, ["3. What your run says"]),
    check,
    ...(lesson.many ? [h("p", {}, [many]), manyText] : []),
  ]);

  const next = h("section", { class: "next", "aria-labelledby": "next-h" }, [
    h("h2", { id: "next-h" }, ["Try next"]),
    h("ul", {}, lesson.next.map((t) => h("li", {}, [t]))),
  ]);

  main.append(nav, h("h1", {}, [lesson.title]), claim,
    h("section", { class: "predict-section", "aria-labelledby": "predict-h" }, [
      h("h2", { id: "predict-h" }, ["1. Your prediction"]), form, predictionNote]),
    runSection, checkSection, next);

  /** @type {string | null} */
  let prediction = null;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const picked = /** @type {HTMLInputElement | null} */ (form.querySelector("input:checked"));
    if (!picked) return;
    prediction = picked.value;
    const text = lesson.choices.find((c) => c.id === prediction)?.text ?? prediction;
    predictionNote.textContent = `You predicted: ${text}`;
    form.querySelectorAll("input").forEach((i) => { i.disabled = true; });
    commit.setAttribute("disabled", "");
    runButton.removeAttribute("disabled");
    runButton.focus();
  });

  runButton.addEventListener("click", async () => {
    if (!prediction) return;
    runButton.setAttribute("disabled", "");
    check.replaceChildren();
    runStatus.textContent = `Training ${lesson.steps} steps…`;
    try {
      /** @type {RunResult[]} */
      const results = [];
      for (const { run, el } of sandboxes) {
        // In view: a sandbox off screen leaves its sharpness work, and the student should see the run.
        el.scrollIntoView({ block: "start" });
        await el.settled();
        await el.reset();
        if (lesson.study) {
          // A grid study (the study panel's): many runs over data draws and seeds, every one measured.
          runStatus.textContent = "Training and measuring every run of the study…";
          const study = await el.study(lesson.study);
          results.push({ label: run.label, metrics: el.metrics(), study });
          continue;
        }
        await el.step(lesson.steps);
        runStatus.textContent = "Measuring the sharpness of the final solutions…";
        const metrics = await sharpnessNow(el, SHARPNESS_WAIT_MS);
        // What some lessons do to the trained solutions, through the element's API.
        /** @type {any} */
        const extra = {};
        if (lesson.after?.ensemble) {
          runStatus.textContent = `Training an ensemble of ${lesson.after.ensemble.k} networks…`;
          extra.ensemble = await el.ensemble(lesson.after.ensemble);
          // Its decision boundary in that side's panel.
          el.showSolution(lesson.after.ensemble.side, "ensemble");
        }
        if (lesson.after?.rescale) {
          runStatus.textContent = "Rescaling the solution and measuring it before and after…";
          extra.rescale = await el.rescale(lesson.after.rescale);
        }
        results.push({ label: run.label, metrics, extra });
      }
      // For scripts (and the e2e tests): what the check was written from.
      /** @type {any} */ (main).lessonResults = results;
      runStatus.textContent = lesson.study ? "Done." : `Done: ${lesson.steps} steps.`;
      check.replaceChildren(...lesson.check(results, prediction).map(para));
      many.removeAttribute("disabled");
    } catch (err) {
      runStatus.textContent = `The run failed: ${err instanceof Error ? err.message : err}`;
    } finally {
      runButton.removeAttribute("disabled");
    }
  });

  many.addEventListener("click", async () => {
    if (!lesson.many) return;
    many.setAttribute("disabled", "");
    const { replicas } = lesson.many;
    const el = sandboxes[lesson.many.sandbox ?? 0].el;
    manyText.replaceChildren(para(`Training ${replicas} seeds of each side…`));
    try {
      const study = await el.study({ replicas, steps: lesson.steps });
      const ood = pairedDifference(study, "ood_acc");
      const id = pairedDifference(study, "id_acc");
      const train = pairedDifference(study, "train_acc");
      manyText.replaceChildren(...manySummary(study, ood, id, train).map(para));
    } catch (err) {
      manyText.replaceChildren(para(`The seeds did not finish: ${err instanceof Error ? err.message : err}`));
    } finally {
      many.removeAttribute("disabled");
    }
  });
}

/** Signed points with one decimal. @param {number} x */
const pts = (x) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(1)}`;

/**
 * What `replicas` seeds say, in words: the paired OOD difference with its
 * interval and sign test, and a warning when the right side's train or ID
 * accuracy is clearly lower (then an OOD "gain" is underfitting, not robustness).
 * @param {any} study
 * @param {ReturnType<typeof pairedDifference>} ood
 * @param {ReturnType<typeof pairedDifference>} id
 * @param {ReturnType<typeof pairedDifference>} train
 */
export function manySummary(study, ood, id, train) {
  const [l, r] = [study.left.label, study.right.label];
  const lines = [];
  if (ood.n < 2) {
    return [`Too few seeds trained without diverging (${ood.n}) to say anything.`];
  }
  lines.push(`Over **${ood.n} seeds** (same data, other initial weights and batch orders), ${r} minus ${l} ` +
    `in OOD accuracy: **${pts(ood.mean)} points**, 95% interval [${pts(ood.lo)}, ${pts(ood.hi)}]; ` +
    `${r} was better on ${ood.wins} seeds and worse on ${ood.losses} (sign test p = ${ood.p.toPrecision(2)}).`);
  const sure = ood.lo > 0 || ood.hi < 0;
  lines.push(sure
    ? `The interval excludes zero: over these seeds the difference is real, for this one data draw.`
    : `The interval includes zero: these seeds do not show a difference.`);
  if (train.mean < -2 || id.mean < -2) {
    lines.push(`Warning: ${r} is also worse where there is no shift (train ${pts(train.mean)}, ` +
      `in-distribution ${pts(id.mean)} points). An OOD "gain" that comes with a lower train accuracy is ` +
      `underfitting, not robustness.`);
  } else if (train.mean > 2 || id.mean > 2) {
    lines.push(`Note: ${l} underfits here (its train accuracy is ${pts(-train.mean)} points lower), so compare ` +
      `the OOD numbers with care.`);
  }
  lines.push(`All seeds share one draw of the data. Other draws can disagree: the study panel and ` +
    `\`flatminima study --data-seeds 32\` vary the data too.`);
  return lines;
}

/** The page's query (minus lesson keys) becomes the sandbox's attributes; its changes go back to the URL. */
function applyUrl(/** @type {any} */ el) {
  const known = new Set(/** @type {any} */ (customElements.get("flatminima-sandbox")).observedAttributes);
  for (const [name, value] of new URLSearchParams(location.search)) {
    if (known.has(name) && name !== "controls") el.setAttribute(name, value);
  }
  el.addEventListener("settingschange", (/** @type {CustomEvent} */ e) => {
    const query = e.detail.query;
    history.replaceState(null, "", query ? `?${query}` : location.pathname);
  });
}

if (lessonLoading) render(await lessonLoading, index);
else if (document.getElementById("lesson")) {
  /** @type {HTMLElement} */ (document.getElementById("lesson")).textContent = `No lesson named "${id}".`;
}
