// @ts-check
import { num, answer } from "../checks.js";

/** @type {import("../checks.js").Lesson} */
export default {
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
};
