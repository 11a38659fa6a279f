// A worker for bench.html's two-worker measurement (issue 10): does training the
// two sides of a pair in two workers, one side each, pay on this machine? The
// worker trains the sides it is given (benchTrain: the core's step loop, no
// metrics, no pictures) in turns of `steps` steps until `ms` have passed, and
// answers with the steps done per side and the wall-clock time.
import init, { benchTrain } from "./pkg-bench/flatminima.js";

const ready = init();

self.onmessage = async (e) => {
  await ready;
  const { settings, sides, ms, steps } = e.data;
  const done = { left: 0, right: 0 };
  benchTrain(settings, sides[0], 0, 1); // compile and warm up before the clock starts
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    for (const side of sides) {
      benchTrain(settings, side, 0, steps);
      done[side] += steps;
    }
  }
  postMessage({ elapsed: performance.now() - t0, done });
};
