// @ts-check
import { sideBySide } from "../checks.js";

/** @type {import("../checks.js").Lesson} */
export default {
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
};
