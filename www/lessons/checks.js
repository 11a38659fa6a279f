// @ts-check
// What every lesson's `check` is written with: the types of a lesson and of a
// measured run, and the sentences that turn the student's measured numbers into
// text. A check may only say what those numbers say (including "the claim
// failed here"), never what the paper found. The lessons themselves are in
// catalogue/, one module each, so a lesson page downloads only its own.

/**
 * @typedef {{ label: string, metrics: any, study?: any, extra?: any }} RunResult  one sandbox's final metrics (el.metrics()), its grid study's result for a study lesson, and what `after` measured (`extra.ensemble`: el.ensemble()'s answer; `extra.rescale`: el.rescale()'s)
 * @typedef {{
 *   id: string, title: string, claim: string[], source: string,
 *   question: string, choices: { id: string, text: string }[],
 *   setup: string[], runLabel?: string,
 *   runs: { label: string, attrs: Record<string, string> }[],
 *   steps: number,
 *   check: (results: RunResult[], prediction: string) => string[],
 *   many?: { replicas: number, sandbox?: number },
 *   study?: { axes: string, dataSeeds: number, seeds: number },
 *   after?: { ensemble?: { side: number, k: number }, rescale?: { side: number, layer: number, alpha: number } },
 *   next: string[],
 * }} Lesson
 */

/** A fraction as a percentage with one decimal. @param {number} x */
export const pct = (x) => `${(100 * x).toFixed(1)}%`;
/** Signed percentage points with one decimal. @param {number} x */
export const pts = (x) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(1)} points`;
/** A number with 3 significant digits. @param {number} x */
export const num = (x) => (Number.isFinite(x) ? x.toPrecision(3) : "not measured");

/** lambda_max of one side, or NaN. @param {any} side */
export const lambda = (side) => side?.sharpness?.lambda_max ?? NaN;

/**
 * A sentence comparing the sharpness `a` of `aName` with `b` of `bName`:
 * "X's λmax was 3.1× lower than Y's (12.4 vs 38.2)."
 * @param {string} aName @param {number} a @param {string} bName @param {number} b
 */
export function compareLambda(aName, a, bName, b) {
  if (!(a > 0 && b > 0)) {
    return `The sharpness (λmax) of ${aName} and ${bName} was not measured in time (${num(a)}, ${num(b)}): ` +
      "the page measures it while the sandbox is on screen; run again to compare it.";
  }
  const r = a / b;
  const how = Math.abs(Math.log(r)) < Math.log(1.1) ? "about the same as"
    : r < 1 ? `${(1 / r).toFixed(1)}× lower than` : `${r.toFixed(1)}× higher than`;
  return `${aName}'s λmax was ${how} ${bName}'s (${num(a)} vs ${num(b)}).`;
}

/** Sentences for a side that diverged, or [] when neither did. @param {any} m */
export function divergence(m) {
  return ["left", "right"].filter((s) => m[s].diverged).map((s) =>
    `${m[s].label} diverged at step ${m[s].diverged_step} (${m[s].diverged_reason}); its numbers are not a solution.`);
}

/**
 * The OOD comparison of the right side against the left as a category for the
 * multiple-choice predictions: "higher" / "same" / "lower" with a 1-point band.
 * @param {number} diffPoints
 */
export const category = (diffPoints) => (diffPoints > 1 ? "higher" : diffPoints < -1 ? "lower" : "same");

/**
 * Which of two sharpness values is lower: `ids[0]` (the first), `ids[1]`,
 * "same" (within 10%), or "unknown" when either was not measured.
 * @param {number} a @param {number} b @param {[string, string]} ids
 */
export function flatter(a, b, ids) {
  if (!(a > 0 && b > 0)) return "unknown";
  return Math.abs(Math.log(a / b)) < Math.log(1.1) ? "same" : a < b ? ids[0] : ids[1];
}

/**
 * The sentence that answers the student's prediction.
 * @param {string} prediction @param {string} outcome @param {string} who "this run", "these runs"...
 */
export function answer(prediction, outcome, who) {
  return prediction === outcome ? `You predicted that; ${who} ${who === "these runs" ? "agree" : "agrees"}.`
    : `You predicted "${prediction}"; ${who} ${who === "these runs" ? "say" : "says"} "${outcome}".`;
}

/**
 * The check of a lesson with two sandboxes, compared on their left (SGD) sides:
 * which is flatter (the prediction's `ids`), OOD and in-distribution accuracy,
 * and the train-loss caveat. Null when a run diverged (then `divergence` says so).
 * @param {RunResult[]} results @param {string} prediction
 * @param {[string, string]} names how the text names the two runs
 * @param {[string, string]} ids the choices "the first is flatter", "the second is"
 */
export function leftSides(results, prediction, names, ids) {
  const [x, y] = results.map((r) => r.metrics.left);
  const [a, b] = [lambda(x), lambda(y)];
  return [
    `In your runs (SGD, the left sides): ${compareLambda(names[0], a, names[1], b)}`,
    `OOD accuracy: **${pct(x.ood_acc)}** (${names[0]}) vs **${pct(y.ood_acc)}** (${names[1]}), ` +
      `${pts(100 * (x.ood_acc - y.ood_acc))}; in-distribution ${pct(x.id_acc)} vs ${pct(y.id_acc)}; ` +
      `train loss ${num(x.train_loss)} vs ${num(y.train_loss)}.`,
    answer(prediction, flatter(a, b, ids), "these runs"),
    ...trainLossNote([names[0], x], [names[1], y]),
  ];
}

/**
 * The usual check of a left-vs-right lesson: curvature, OOD accuracy, the
 * prediction against the outcome, and the underfitting warning.
 * @param {RunResult[]} results @param {string} prediction @param {string} metricKey
 */
export function sideBySide(results, prediction, metricKey = "ood_acc") {
  const m = results[0].metrics;
  const [l, r] = [m.left, m.right];
  const lines = divergence(m);
  if (lines.length) return [...lines, "Try a smaller learning rate (or rho) and run again."];
  const d = 100 * (r[metricKey] - l[metricKey]);
  const what = metricKey === "ood_acc" ? "OOD accuracy" : "in-distribution test accuracy";
  lines.push(`In your run (step ${r.step}): ${compareLambda(r.label, lambda(r), l.label, lambda(l))}`);
  lines.push(`Its ${what} was **${pct(r[metricKey])}** against **${pct(l[metricKey])}**: ${pts(d)}.`);
  const outcome = category(d);
  lines.push(answer(prediction, outcome, "this run") + (prediction === outcome ? "" : " (A band of ±1 point counts as the same.)"));
  const trainGap = 100 * (r.train_acc - l.train_acc);
  if (d > 1 && trainGap < -2) {
    lines.push(`Careful: ${r.label} also fits the training data worse (train accuracy ${pts(trainGap)}). ` +
      `A gain out of distribution that comes with underfitting is not robustness.`);
  }
  lines.push(...trainLossNote([l.label, l], [r.label, r]));
  lines.push(`This is one run on one data draw. Press the button below to see the spread over seeds.`);
  return lines;
}

/**
 * With cross-entropy the curvature shrinks as the train loss goes to zero, so
 * when the flatter side also has a much lower train loss, its lower λmax is
 * partly "trained further", not "a wider basin". Says so when that is the case.
 * @param {[string, any]} x a run's name and left or right metrics @param {[string, any]} y the other's
 */
export function trainLossNote(x, y) {
  const [[flatName, flat], [, sharp]] = lambda(x[1]) < lambda(y[1]) ? [x, y] : [y, x];
  if (!(lambda(flat) > 0) || !(flat.train_loss * 3 < sharp.train_loss)) return [];
  return [`Note: ${flatName} also ended with a much lower train loss (${num(flat.train_loss)} vs ` +
    `${num(sharp.train_loss)}). With cross-entropy the curvature shrinks as the loss goes to zero, so part of ` +
    "its lower λmax says how far training went, not how wide the basin is."];
}
