// @ts-check
// The lessons: each claim from the flat-minima literature as an experiment. A
// lesson's `check` turns the student's measured numbers into sentences; it may
// only say what those numbers say (including "the claim failed here"), never
// what the paper found.

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
const pct = (x) => `${(100 * x).toFixed(1)}%`;
/** Signed percentage points with one decimal. @param {number} x */
const pts = (x) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(1)} points`;
/** A number with 3 significant digits. @param {number} x */
const num = (x) => (Number.isFinite(x) ? x.toPrecision(3) : "not measured");

/** lambda_max of one side, or NaN. @param {any} side */
const lambda = (side) => side?.sharpness?.lambda_max ?? NaN;

/**
 * A sentence comparing the sharpness `a` of `aName` with `b` of `bName`:
 * "X's λmax was 3.1× lower than Y's (12.4 vs 38.2)."
 * @param {string} aName @param {number} a @param {string} bName @param {number} b
 */
function compareLambda(aName, a, bName, b) {
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
function divergence(m) {
  return ["left", "right"].filter((s) => m[s].diverged).map((s) =>
    `${m[s].label} diverged at step ${m[s].diverged_step} (${m[s].diverged_reason}); its numbers are not a solution.`);
}

/**
 * The OOD comparison of the right side against the left as a category for the
 * multiple-choice predictions: "higher" / "same" / "lower" with a 1-point band.
 * @param {number} diffPoints
 */
const category = (diffPoints) => (diffPoints > 1 ? "higher" : diffPoints < -1 ? "lower" : "same");

/**
 * Which of two sharpness values is lower: `ids[0]` (the first), `ids[1]`,
 * "same" (within 10%), or "unknown" when either was not measured.
 * @param {number} a @param {number} b @param {[string, string]} ids
 */
function flatter(a, b, ids) {
  if (!(a > 0 && b > 0)) return "unknown";
  return Math.abs(Math.log(a / b)) < Math.log(1.1) ? "same" : a < b ? ids[0] : ids[1];
}

/**
 * The sentence that answers the student's prediction.
 * @param {string} prediction @param {string} outcome @param {string} who "this run", "these runs"...
 */
function answer(prediction, outcome, who) {
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
function leftSides(results, prediction, names, ids) {
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
function sideBySide(results, prediction, metricKey = "ood_acc") {
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
function trainLossNote(x, y) {
  const [[flatName, flat], [, sharp]] = lambda(x[1]) < lambda(y[1]) ? [x, y] : [y, x];
  if (!(lambda(flat) > 0) || !(flat.train_loss * 3 < sharp.train_loss)) return [];
  return [`Note: ${flatName} also ended with a much lower train loss (${num(flat.train_loss)} vs ` +
    `${num(sharp.train_loss)}). With cross-entropy the curvature shrinks as the loss goes to zero, so part of ` +
    "its lower λmax says how far training went, not how wide the basin is."];
}

/** @type {Lesson[]} */
export const LESSONS = [
  {
    id: "sgd-vs-sam",
    title: "SGD vs SAM under a rotation",
    claim: [
      "Sharpness-aware minimisation (SAM) steers training towards **flat minima**, where the loss stays low when the " +
        "weights move a little. Flat minima are said to generalise better, and to hold up better when the data shifts.",
    ],
    source: "Foret et al. 2021, \"Sharpness-Aware Minimization for Efficiently Improving Generalization\" (ICLR). " +
      "Published: CIFAR-10, WideResNet, test error 3.20% with SGD vs 2.86% with SAM (davda54/sam's reproduction).",
    question: "Both networks start from the same weights and see the same batches. After 3000 steps, how will SAM's " +
      "accuracy on the rotated (OOD) moons compare with SGD's?",
    choices: [
      { id: "higher", text: "SAM's will be higher (by more than 1 point)" },
      { id: "same", text: "About the same (within 1 point)" },
      { id: "lower", text: "SAM's will be lower (by more than 1 point)" },
    ],
    setup: ["Two moons; the OOD test set is rotated by 45 degrees. Left: SGD with momentum. Right: SAM (ρ = 0.2) " +
      "over the same SGD."],
    runs: [{ label: "SGD (left) vs SAM (right)", attrs: { dataset: "moons", shift: "rotate", severity: "0.5", rho: "0.2" } }],
    steps: 3000,
    check: (results, prediction) => sideBySide(results, prediction),
    many: { replicas: 32 },
    next: [
      "Raise ρ to 1 (the rho control): does SAM still train at all?",
      "Change the shift to translate or noise: does the answer change with the kind of shift?",
      "Change the seed (a new data draw): does the same prediction hold?",
    ],
  },
  {
    id: "label-noise",
    title: "Label noise, where SAM's gain is largest",
    claim: [
      "With many training labels flipped, a network that can memorise them will. SAM resists memorising noisy " +
        "labels; its largest published gains are under label noise.",
    ],
    source: "Foret et al. 2021, label-noise experiments on CIFAR-10: with 40% of labels flipped, test accuracy " +
      "68.8% (SGD) vs 93.4% (SAM), as reported there.",
    question: "30% of the training labels are flipped (the test sets are clean). How will SAM's clean test accuracy " +
      "compare with SGD's?",
    choices: [
      { id: "higher", text: "SAM's will be higher (by more than 1 point)" },
      { id: "same", text: "About the same (within 1 point)" },
      { id: "lower", text: "SAM's will be lower (by more than 1 point)" },
    ],
    setup: ["Two moons, 30% of training labels flipped, a wider network (32, 32) that can memorise them. Watch the " +
      "in-distribution curve while it trains: does it peak and then fall (the case for early stopping)?"],
    runs: [{ label: "SGD (left) vs SAM (right)", attrs: { dataset: "moons", "label-noise": "0.3", hidden: "32,32", shift: "rotate", severity: "0.3", rho: "0.2" } }],
    steps: 3000,
    check: (results, prediction) => sideBySide(results, prediction, "id_acc"),
    many: { replicas: 32 },
    next: [
      "Set label noise to 0: how much of SAM's advantage was about the noise?",
      "Make the network smaller (hidden 8): can it still memorise the flipped labels?",
    ],
  },
  {
    id: "batch-size",
    title: "Large vs small batches",
    claim: [
      "Large-batch training converges to **sharp** minima and small batches to **flat** ones, and the sharp ones " +
        "generalise worse.",
      "Part of that gap is about the budget: with the same number of steps a small batch sees far fewer epochs, " +
        "and with the same epochs a large batch takes far fewer steps; a larger learning rate or longer training " +
        "closes much of the gap.",
    ],
    source: "Keskar et al. 2017, \"On Large-Batch Training for Deep Learning: Generalization Gap and Sharp Minima\" " +
      "(ICLR): e.g. CIFAR-10 network C1, test accuracy 80.04% (small batch) vs 77.26% (large batch). " +
      "Hoffer et al. 2017, \"Train longer, generalize better\" (NeurIPS).",
    question: "Same network, same 3000 SGD steps. Which ends in the flatter minimum (lower λmax)?",
    choices: [
      { id: "small", text: "Batches of 4" },
      { id: "same", text: "About the same (within 10%)" },
      { id: "large", text: "The full batch (200 points)" },
    ],
    setup: ["Two sandboxes, both on the same moons with the same initial weights: batches of 4 above, the whole " +
      "training set (200 points) in every step below. Compare the left (SGD) sides."],
    runs: [
      { label: "Batch 4", attrs: { dataset: "moons", "batch-size": "4", points: "200" } },
      { label: "Full batch (200)", attrs: { dataset: "moons", "batch-size": "200", points: "200" } },
    ],
    steps: 3000,
    check: (results, prediction) => {
      const lines = results.flatMap((r) => divergence(r.metrics));
      if (lines.length) return lines;
      lines.push(...leftSides(results, prediction, ["batch 4", "the full batch"], ["small", "large"]));
      lines.push(`Fairness: batch 4 saw ${(3000 * 4 / 200).toFixed(0)} epochs, the full batch 3000. One data draw, one ` +
        "seed; `flatminima study --vary batch-size=4,200 --data-seeds 8` repeats it over data draws.");
      return lines;
    },
    next: [
      "Give the full batch a larger learning rate (lr 0.5): does the gap close?",
      "Train the small batch for fewer steps, so both see the same number of epochs.",
    ],
  },
  {
    id: "edge-of-stability",
    title: "The learning rate and the edge of stability",
    claim: [
      "Full-batch gradient descent with learning rate η cannot stay where the top Hessian eigenvalue λmax is above " +
        "2/η. In practice λmax rises during training until it reaches about 2/η and then hovers there " +
        "(\"progressive sharpening\" and the \"edge of stability\"). So the learning rate, not only the data, " +
        "decides how sharp the solution is.",
    ],
    source: "Cohen et al. 2021, \"Gradient Descent on Neural Networks Typically Occurs at the Edge of Stability\" " +
      "(ICLR): λmax settles at 2/η for full-batch GD across architectures.",
    question: "Full-batch gradient descent (no momentum) with η = 0.5, so 2/η = 4. Where will the final λmax be?",
    choices: [
      { id: "below", text: "Well below 4 (under 3)" },
      { id: "near", text: "Near 4 (between 3 and 5)" },
      { id: "above", text: "Above 5" },
    ],
    setup: ["Plain gradient descent on all 200 points at η = 0.5 on the left, SAM over it on the right. The moons " +
      "are noisy (0.35), so the classes overlap and the loss cannot fall to zero (with separable data the " +
      "cross-entropy's curvature fades as the loss vanishes, and training leaves the edge). The sharpness panel " +
      "draws λmax over training with the 2/η line."],
    runs: [{ label: "GD (left) vs SAM (right)", attrs: { dataset: "moons", noise: "0.35", "batch-size": "200", points: "200", lr: "0.5", momentum: "0" } }],
    steps: 3000,
    check: (results, prediction) => {
      const m = results[0].metrics;
      const lines = divergence(m);
      const l = m.left;
      const threshold = l.sharpness?.edge_of_stability ?? 4;
      const a = lambda(l);
      if (!Number.isFinite(a)) return [...lines, "λmax was not measured for the left side; run again."];
      const outcome = a < 0.75 * threshold ? "below" : a > 1.25 * threshold ? "above" : "near";
      lines.push(`In your run GD's final λmax was **${num(a)}** against 2/η = ${num(threshold)} ` +
        `(${(100 * a / threshold).toFixed(0)}% of it); SAM's was ${num(lambda(m.right))}.`);
      lines.push(answer(prediction, outcome, "this run"));
      lines.push(outcome === "below"
        ? "The claim is about training that has reached the edge: this run stayed below it. A larger η, a longer run or a harder data set (spirals) gets closer."
        : "Look at the λmax curve: did it rise towards the line and stay there?");
      return lines;
    },
    next: [
      "Halve the learning rate (lr 0.25, so 2/η = 8): does λmax follow the line up?",
      "Switch momentum back on (0.9): the threshold becomes (2 + 2β)/η = 7.6.",
    ],
  },
  {
    id: "rescaling",
    title: "Dinh's rescaling: same function, different sharpness",
    claim: [
      "In a ReLU network, multiply one layer's weights and biases by α > 0 and the next layer's weights by 1/α: " +
        "since relu(αx) = α·relu(x), the network computes **exactly the same function**, so its loss is the same " +
        "everywhere, yet the curvature at the solution changes. \"Flat\" as λmax measures it depends on how the " +
        "same function is written down, so flatness alone cannot be what makes a solution generalise.",
      "Adaptive sharpness (ASAM's), which measures each perturbation relative to the size of its weight, is not " +
        "changed by this rescaling.",
    ],
    source: "Dinh et al. 2017, \"Sharp Minima Can Generalize For Deep Nets\" (ICML): for every α > 0 the rescaled " +
      "network is the same function, and λmax can be made as large as one likes. Kwon et al. 2021, \"ASAM\" (ICML): " +
      "adaptive sharpness is invariant to such rescalings.",
    question: "After training, SAM's solution (right) gets its first hidden layer multiplied by 5 and the second " +
      "divided by 5. What happens?",
    choices: [
      { id: "only λmax changes", text: "Accuracies stay exactly the same; λmax changes by more than 10%" },
      { id: "nothing changes", text: "Nothing changes: same accuracies, λmax within 10%" },
      { id: "the accuracies change", text: "The accuracies change too" },
    ],
    setup: ["Two moons with a rotated OOD set; a ReLU network (the rescaling needs a positively homogeneous " +
      "activation). Left: SGD, right: SAM. After training, the right side is rescaled with the page's " +
      "\"Rescale (Dinh)\" (under the metrics table), which pauses training and measures it before and after."],
    runs: [{ label: "SGD (left) vs SAM (right), ReLU", attrs: { dataset: "moons", activation: "relu", shift: "rotate", severity: "0.5", rho: "0.2" } }],
    steps: 2000,
    after: { rescale: { side: 1, layer: 0, alpha: 5 } },
    check: (results, prediction) => {
      const m = results[0].metrics;
      const lines = divergence(m);
      if (lines.length) return lines;
      const r = results[0].extra?.rescale;
      if (!r) return ["The rescaling did not run; run again."];
      const [b, a] = [r.before, r.after];
      const same = ["train_acc", "id_acc", "ood_acc"].every((k) => a[k] === b[k]);
      const ratio = a.lambda_max / b.lambda_max;
      const outcome = !same ? "the accuracies change" : Math.abs(Math.log(ratio)) > Math.log(1.1) ? "only λmax changes" : "nothing changes";
      lines.push(`In your run SAM's solution at step ${r.step} was rescaled: layer ${r.layer + 1} × ${r.alpha}, ` +
        `layer ${r.layer + 2} ÷ ${r.alpha}. The largest change of any output (logit) was ${num(r.max_logit_change)}; ` +
        `train / ID / OOD accuracy ${pct(b.train_acc)} / ${pct(b.id_acc)} / ${pct(b.ood_acc)} before and ` +
        `${pct(a.train_acc)} / ${pct(a.id_acc)} / ${pct(a.ood_acc)} after${same ? ": the same function" : ""}.`);
      lines.push(`Its λmax went from **${num(b.lambda_max)}** to **${num(a.lambda_max)}** (×${num(ratio)}), ` +
        `its Hessian trace from ${num(b.trace)} to ${num(a.trace)}, its adaptive sharpness from ` +
        `${num(b.adaptive_sharpness)} to ${num(a.adaptive_sharpness)}.`);
      const sgd = lambda(m.left);
      lines.push(`Against SGD (left, not rescaled): before, ${compareLambda("SAM", b.lambda_max, "SGD", sgd)} ` +
        `After, ${compareLambda("the rescaled SAM", a.lambda_max, "SGD", sgd)}`);
      lines.push(answer(prediction, outcome, "this run"));
      if (outcome === "only λmax changes") {
        lines.push("The function, and so every accuracy and loss, did not move; only the way it is written down did. " +
          "A flatness measure that moves with it says as much about the parametrisation as about the solution.");
      }
      return lines;
    },
    next: [
      "Rescale again with α = 0.2 (Layer and α under the metrics table): which way does λmax move?",
      "Rescale the SGD side (Side: Left): can you make either side look the flatter one?",
      "Set the activation to tanh: the Rescale button is disabled. Why?",
    ],
  },
  {
    id: "adam-vs-sgd",
    title: "Adam vs SGD: curvature",
    claim: [
      "Adaptive methods like Adam rescale each weight's step. They sit at an edge of stability too, but of the " +
        "*preconditioned* sharpness, so the plain λmax they end at can be far above what SGD tolerates; " +
        "and adaptive methods are reported to generalise worse than SGD on some tasks.",
    ],
    source: "Cohen et al. 2022, \"Adaptive Gradient Methods at the Edge of Stability\": the preconditioned sharpness " +
      "settles at 38/η for Adam with β1 = 0.9. Wilson et al. 2017, \"The Marginal Value of Adaptive Gradient Methods\".",
    question: "SGD with momentum on the left, Adam on the right, same learning rate 0.05. Which ends with the larger λmax?",
    choices: [
      { id: "adam", text: "Adam (more than 10% larger)" },
      { id: "same", text: "About the same (within 10%)" },
      { id: "sgd", text: "SGD (more than 10% larger)" },
    ],
    setup: ["Both sides train without SAM: the only difference is the optimiser."],
    runs: [{ label: "SGD (left) vs Adam (right)", attrs: { dataset: "moons", left: "plain", right: "plain", "left-optimizer": "sgd", "right-optimizer": "adam", lr: "0.05" } }],
    steps: 3000,
    check: (results, prediction) => {
      const m = results[0].metrics;
      const lines = divergence(m);
      if (lines.length) return lines;
      const [s, a] = [lambda(m.left), lambda(m.right)];
      // The choices name the side with the larger λmax: SGD flatter means "adam".
      const outcome = flatter(s, a, ["adam", "sgd"]);
      lines.push(`In your run: ${compareLambda("Adam", a, "SGD", s)}`);
      lines.push(`OOD accuracy ${pct(m.right.ood_acc)} (Adam) vs ${pct(m.left.ood_acc)} (SGD), ` +
        `${pts(100 * (m.right.ood_acc - m.left.ood_acc))}; train loss ${num(m.right.train_loss)} vs ${num(m.left.train_loss)}.`);
      lines.push(answer(prediction, outcome, "this run"));
      lines.push(...trainLossNote(["SGD", m.left], ["Adam", m.right]));
      return lines;
    },
    many: { replicas: 32 },
    next: ["Use SAM over Adam on the right (right = sam): does it lower Adam's λmax?"],
  },
  {
    id: "averaging",
    title: "Weight averaging and ensembles",
    claim: [
      "Averaging the weights visited at the end of SGD training (stochastic weight averaging, SWA) lands near the " +
        "centre of a wide, flat region, and is reported to generalise better than SGD's last weights.",
      "Averaging the *predictions* of networks trained from different seeds (a deep ensemble) is reported to be " +
        "more accurate than one network and to stay better calibrated when the data shift.",
    ],
    source: "Izmailov et al. 2018, \"Averaging Weights Leads to Wider Optima and Better Generalization\" (UAI): " +
      "CIFAR-100, PreResNet-164, test accuracy 78.49% (SGD) vs 80.35% (SWA, 1.5 budgets). Lakshminarayanan et al. " +
      "2017, \"Simple and Scalable Predictive Uncertainty Estimation using Deep Ensembles\" (NeurIPS): error and " +
      "log-likelihood improve as members are added, on MNIST, SVHN and ImageNet.",
    question: "SGD on moons with a rotated OOD set. At the end: its last weights, their SWA average over the last " +
      "quarter of training, and an ensemble of 5 SGD networks (seeds seed to seed + 4). Which has the highest OOD accuracy?",
    choices: [
      { id: "the last weights", text: "SGD's last weights" },
      { id: "the SWA average", text: "The SWA average" },
      { id: "the ensemble", text: "The ensemble of 5" },
      { id: "all within 1 point", text: "All three within 1 point of each other" },
    ],
    setup: ["Left: SGD, right: SAM, both keeping an SWA average of their weights after step 1500 (the table and the " +
      "panels show it: \"Panel shows\"). After training, the page trains four more SGD networks from other seeds and " +
      "averages the five networks' predicted probabilities."],
    runs: [{ label: "SGD (left) vs SAM (right), with SWA", attrs: { dataset: "moons", shift: "rotate", severity: "0.5", average: "swa", steps: "2000" } }],
    steps: 2000,
    after: { ensemble: { side: 0, k: 5 } },
    check: (results, prediction) => {
      const m = results[0].metrics;
      const lines = divergence(m);
      if (lines.length) return lines;
      const l = m.left;
      const avg = l.average;
      const en = results[0].extra?.ensemble;
      if (!avg || avg.train_loss == null || !en) return ["The average or the ensemble was not ready; run again."];
      const solutions = [["the last weights", l], ["the SWA average", avg], ["the ensemble", en]];
      lines.push(`In your run (SGD, the left side, step ${l.step}): OOD accuracy **${pct(l.ood_acc)}** (last weights), ` +
        `**${pct(avg.ood_acc)}** (SWA average of ${avg.n_averaged} weights), **${pct(en.ood_acc)}** (ensemble of ` +
        `${en.members}); in-distribution ${pct(l.id_acc)} / ${pct(avg.id_acc)} / ${pct(en.id_acc)}; OOD loss ` +
        `${num(l.ood_loss)} / ${num(avg.ood_loss)} / ${num(en.ood_loss)}.`);
      lines.push(`Flatness: ${compareLambda("SWA", avg.sharpness?.lambda_max ?? NaN, "SGD (last weights)", lambda(l))}`);
      const ood = en.member_ood_acc;
      lines.push(`The ensemble's ${en.members} members alone reached OOD accuracy ${pct(Math.min(...ood))} to ` +
        `${pct(Math.max(...ood))} (mean ${pct(en.member_mean.ood_acc)}): that spread is what one seed hides; ` +
        `the ensemble is ${pts(100 * (en.ood_acc - en.member_mean.ood_acc))} against its members' mean.`);
      const accs = solutions.map(([, s]) => 100 * s.ood_acc);
      const best = accs.indexOf(Math.max(...accs));
      const outcome = Math.max(...accs) - Math.min(...accs) <= 1 ? "all within 1 point" : solutions[best][0];
      lines.push(answer(prediction, outcome, "this run"));
      if (m.right.average?.ood_acc != null) {
        lines.push(`SAM (right) for comparison: ${pct(m.right.ood_acc)} with its last weights, ` +
          `${pct(m.right.average.ood_acc)} with its SWA average.`);
      }
      lines.push("One data draw: the members' spread is over seeds only. Change the seed to draw other data.");
      return lines;
    },
    next: [
      "Set the weight average to EMA (and its decay) and compare it with SWA.",
      "Train an ensemble of the SAM side (Side: Right, under the metrics table) and compare it with SGD's.",
      "Start SWA earlier (SWA start 500): is the average better or worse?",
    ],
  },
  {
    id: "regularisers",
    title: "Regularisers: dropout",
    claim: [
      "Dropout (randomly silencing hidden units while training) regularises a network: it is reported to improve " +
        "test accuracy and is often explained as pushing training towards flatter, more robust solutions.",
    ],
    source: "Srivastava et al. 2014, \"Dropout: A Simple Way to Prevent Neural Networks from Overfitting\" (JMLR): " +
      "MNIST test error from 1.60% (standard net) to 1.25% (dropout with max-norm), their Table 2.",
    question: "Same network and data, SGD on both: one without dropout, one with dropout 0.3 after each hidden layer. " +
      "Which ends in the flatter minimum (lower λmax, measured without dropout)?",
    choices: [
      { id: "dropout", text: "With dropout (more than 10% lower)" },
      { id: "same", text: "About the same (within 10%)" },
      { id: "plain", text: "Without dropout" },
    ],
    setup: ["Two sandboxes on the same moons with the same initial weights and batches. Compare their left (SGD) " +
      "sides: the second drops 30% of the hidden units at every training step (never when measuring)."],
    runs: [
      { label: "No dropout", attrs: { dataset: "moons", hidden: "32,32" } },
      { label: "Dropout 0.3", attrs: { dataset: "moons", hidden: "32,32", dropout: "0.3" } },
    ],
    steps: 3000,
    check: (results, prediction) => {
      const lines = results.flatMap((r) => divergence(r.metrics));
      if (lines.length) return lines;
      lines.push(...leftSides([results[1], results[0]], prediction, ["dropout 0.3", "no dropout"], ["dropout", "plain"]));
      lines.push("One data draw, one seed: try other seeds before concluding.");
      return lines;
    },
    next: ["Try dropout 0.6: does the network still fit the moons?", "Add weight decay (weight-decay 0.001) instead of dropout."],
  },
  {
    id: "spurious",
    title: "A spurious feature",
    claim: [
      "When a feature agrees with the label during training but not at test time, networks trained by empirical " +
        "risk minimisation latch onto it. Flatness is not designed to help here: the flat solution can be the " +
        "spurious one.",
    ],
    source: "Arjovsky et al. 2019, \"Invariant Risk Minimization\": on Colored MNIST, ERM reaches 87.4% train " +
      "accuracy and 17.1% test accuracy once the colour flips (IRM: 70.8% / 66.9%).",
    question: "The second input agrees with the class in training and is flipped in the OOD set. How will SAM's OOD " +
      "accuracy compare with SGD's?",
    choices: [
      { id: "higher", text: "SAM's will be higher (by more than 1 point)" },
      { id: "same", text: "About the same (within 1 point)" },
      { id: "lower", text: "SAM's will be lower (by more than 1 point)" },
    ],
    setup: ["The spurious data set: the first input carries the class but with a lot of noise; the second carries " +
      "it cleanly and agrees with the class for most training points. The OOD set flips the second."],
    runs: [{ label: "SGD (left) vs SAM (right)", attrs: { dataset: "spurious", shift: "spurious_flip", severity: "1" } }],
    steps: 3000,
    check: (results, prediction) => sideBySide(results, prediction),
    many: { replicas: 32 },
    next: ["Lower the severity to 0.5: how much of the OOD loss is the flip?", "Raise ρ: does a flatter solution rely less on the spurious input?"],
  },
  {
    id: "flatness-predicts",
    title: "Does flatness predict OOD robustness?",
    claim: [
      "If flat minima are robust, then across many trained networks the flatter ones (lower λmax) should be the ones " +
        "that keep their accuracy under the shift: a negative rank correlation between λmax and OOD accuracy.",
      "Large studies disagree about how well sharpness predicts generalisation, and report that it can follow the " +
        "learning rate more than the outcome, or even go the wrong way out of distribution.",
    ],
    source: "Jiang et al. 2020, \"Fantastic Generalization Measures and Where to Find Them\" (ICLR): sharpness-based " +
      "measures among the best predictors, over more than 10,000 trained networks. Andriushchenko et al. 2023, " +
      "\"A Modern Look at the Relationship between Sharpness and Generalization\".",
    question: "Three learning rates, four draws of the data, two seeds each, SGD and SAM: 48 networks. Will the ones " +
      "with lower λmax have higher OOD accuracy (Kendall's τ below zero, its interval excluding zero)?",
    choices: [
      { id: "negative", text: "Yes: flatter goes with more robust" },
      { id: "none", text: "No clear relation (the interval includes zero)" },
      { id: "positive", text: "The opposite: flatter goes with less robust" },
    ],
    setup: ["A study, as the study panel runs it: every run trained 1000 steps and measured at the end. The " +
      "sandbox's own panels stay at step 0; the answer is in the numbers below (and in the panel under the table)."],
    runLabel: "Run the study (48 networks)",
    runs: [{ label: "The study's settings", attrs: { dataset: "moons", shift: "rotate", severity: "0.5", steps: "1000" } }],
    study: { axes: "lr=0.05,0.1,0.2", dataSeeds: 4, seeds: 2 },
    steps: 1000,
    check: (results, prediction) => {
      const result = results[0].study;
      const ev = result?.stats?.evaluations?.[0];
      const row = (/** @type {string} */ mode) => ev?.tau?.find((t) => t.predictor === "lambda_max" && t.target === "ood_acc" && t.mode === mode);
      const raw = row("raw");
      if (!raw || raw.tau == null) return ["The study gave no τ for λmax against OOD accuracy (too few runs finished?)."];
      const ci = raw.lo != null ? ` [${num(raw.lo)}, ${num(raw.hi)}]` : "";
      const outcome = raw.hi != null && raw.hi < 0 ? "negative" : raw.lo != null && raw.lo > 0 ? "positive" : "none";
      const lines = [`Over **${raw.runs} runs**, Kendall's τ between λmax and OOD accuracy was **${num(raw.tau)}**${ci} ` +
        `(95% interval, resampling data draws).`];
      lines.push(outcome === "negative" ? "Below zero with the interval excluding it: here the flatter runs were the more robust ones."
        : outcome === "positive" ? "Above zero with the interval excluding it: here the flatter runs were the less robust ones."
          : "The interval includes zero: these runs show no clear relation between flatness and robustness.");
      const binned = row("binned") ?? row("matched");
      if (binned && binned.tau != null) {
        const binnedClear = binned.lo != null && (binned.hi < 0 || binned.lo > 0);
        lines.push(`Compared only between runs of similar train loss (${binned.mode}), τ was ${num(binned.tau)}` +
          `${binned.lo != null ? ` [${num(binned.lo)}, ${num(binned.hi)}]` : ""}` +
          (outcome !== "none" && !binnedClear ? ": the relation vanishes there, so it was about how far training went, not flatness." : "."));
      }
      if (ev.verdict) lines.push(`SAM against SGD: ${ev.verdict}.`);
      for (const w of result.stats.warnings ?? []) lines.push(`Warning: ${w}`);
      lines.push(answer(prediction, outcome, "this study"));
      return lines;
    },
    next: ["On the main page, open the study panel: colour the scatter by lr and see whether λmax mostly sorts the learning rates.",
      "Switch the study to matched loss (stop at a train loss) and compare τ."],
  },
];
