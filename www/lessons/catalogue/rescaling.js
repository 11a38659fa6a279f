// @ts-check
import { pct, num, lambda, compareLambda, divergence, answer } from "../checks.js";

/** @type {import("../checks.js").Lesson} */
export default {
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
};
