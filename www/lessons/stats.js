// @ts-check
// Small statistics for the lessons' "over many seeds" summaries: the paired
// difference of two sides over seeds, its 95% t interval and an exact sign test.
// The core has the same (crates/core/src/stats.rs); the page's module does not
// export it, and these few lines are cheaper than a round trip to the worker.

/** Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom. */
const T95 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
  2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086,
  2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** The 97.5% quantile of t with `df` degrees of freedom (table to 30, then Cornish-Fisher). */
export function t975(df) {
  if (df < 1) return NaN;
  if (df <= 30) return T95[Math.floor(df) - 1];
  const z = 1.959964;
  // Cornish-Fisher expansion of t's quantile around the normal one: within 1e-4 for df > 30.
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df * df);
}

/**
 * Mean of `values` with its two-sided 95% t interval.
 * @param {number[]} values
 * @returns {{ mean: number, lo: number, hi: number, n: number }}
 */
export function meanInterval(values) {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(n, 1);
  if (n < 2) return { mean, lo: NaN, hi: NaN, n };
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
  const half = t975(n - 1) * Math.sqrt(variance / n);
  return { mean, lo: mean - half, hi: mean + half, n };
}

/**
 * Two-sided exact sign test: the probability, with no difference, of a split
 * of wins and losses at least as uneven as this one (ties left out).
 * @param {number} wins
 * @param {number} losses
 */
export function signTest(wins, losses) {
  const n = wins + losses;
  if (n === 0) return 1;
  const k = Math.min(wins, losses);
  let tail = 0;
  let term = Math.pow(0.5, n); // C(n, 0) / 2^n
  for (let i = 0; i <= k; i++) {
    tail += term;
    term *= (n - i) / (i + 1);
  }
  return Math.min(1, 2 * tail);
}

/**
 * The paired right-minus-left difference of `key` over the replicas of a study
 * (`el.study()`'s answer), in percentage points for accuracies; replicas where
 * either side diverged are left out.
 * @param {{ left: { replicas: any[] }, right: { replicas: any[] } }} study
 * @param {string} key
 * @param {number} scale 100 for accuracies (points), 1 for losses
 */
export function pairedDifference(study, key, scale = 100) {
  const diffs = [];
  let wins = 0;
  let losses = 0;
  study.left.replicas.forEach((l, i) => {
    const r = study.right.replicas[i];
    if (!r || l.diverged || r.diverged) return;
    const d = scale * (r[key] - l[key]);
    diffs.push(d);
    if (d > 0) wins++;
    else if (d < 0) losses++;
  });
  return { ...meanInterval(diffs), wins, losses, p: signTest(wins, losses) };
}
