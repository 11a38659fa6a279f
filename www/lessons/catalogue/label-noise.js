// @ts-check
import { sideBySide } from "../checks.js";

/** @type {import("../checks.js").Lesson} */
export default {
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
};
