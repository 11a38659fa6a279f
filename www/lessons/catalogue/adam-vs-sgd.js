// @ts-check
import { pct, pts, num, lambda, compareLambda, divergence, flatter, answer, trainLossNote } from "../checks.js";

/** @type {import("../checks.js").Lesson} */
export default {
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
};
