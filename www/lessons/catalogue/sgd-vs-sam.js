// @ts-check
import { sideBySide } from "../checks.js";

/** @type {import("../checks.js").Lesson} */
export default {
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
};
