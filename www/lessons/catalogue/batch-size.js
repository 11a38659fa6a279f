// @ts-check
import { divergence, leftSides } from "../checks.js";

/** @type {import("../checks.js").Lesson} */
export default {
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
};
