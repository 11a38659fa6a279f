// @ts-check
import { divergence, leftSides } from "../checks.js";

/** @type {import("../checks.js").Lesson} */
export default {
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
};
