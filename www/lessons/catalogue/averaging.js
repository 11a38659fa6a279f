// @ts-check
import { pct, pts, num, lambda, compareLambda, divergence, answer } from "../checks.js";

/** @type {import("../checks.js").Lesson} */
export default {
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
};
