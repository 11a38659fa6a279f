// @ts-check
import { num, lambda, divergence, answer } from "../checks.js";

/** @type {import("../checks.js").Lesson} */
export default {
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
};
