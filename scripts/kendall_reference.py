#!/usr/bin/env python3
"""Reference values for the study statistics, from scipy, written to
tests/data/kendall_reference.json (committed: the Rust tests need no Python).

- Kendall's tau-b (scipy.stats.kendalltau, variant='b'), on cases with and
  without ties, small and large, including undefined ones (constant x: NaN,
  written as null).
- Student's t 0.975 quantiles (scipy.stats.t.ppf), for the intervals over draws.
- Two-sided exact sign tests (scipy.stats.binomtest with p = 0.5).

Regenerate with:  pip install scipy && python3 scripts/kendall_reference.py
"""
import json
import math
import os

import numpy as np
import scipy
from scipy import stats

rng = np.random.default_rng(20261130)


def case(name, x, y):
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    tau = stats.kendalltau(x, y, variant="b").statistic
    return {"name": name, "x": x, "y": y, "tau_b": None if math.isnan(tau) else float(tau)}


cases = [
    case("perfect", [1, 2, 3, 4, 5], [2, 4, 6, 8, 10]),
    case("reversed", [1, 2, 3, 4, 5], [5, 4, 3, 2, 1]),
    case("ties in x", [1, 1, 2, 2, 3, 3, 4], [0.5, 0.1, 0.9, 0.3, 0.2, 0.8, 0.7]),
    case("ties in both", [1, 1, 1, 2, 2, 3, 3, 3, 4], [2, 2, 1, 1, 3, 3, 2, 5, 5]),
    case("joint ties", [0, 0, 0, 1, 1, 1], [1, 1, 0, 1, 1, 0]),
    case("constant x", [3, 3, 3, 3], [1, 2, 3, 4]),
    case("two points", [0.1, 0.2], [0.3, 0.1]),
    case("negative zero", [-0.0, 0.0, 1.0, 2.0], [1.0, 2.0, 0.0, 3.0]),
]
for n, levels in [(50, 3), (200, 10), (1000, 50), (1500, None)]:
    if levels is None:
        x = rng.normal(size=n)
        y = 0.3 * x + rng.normal(size=n)
    else:
        x = rng.integers(0, levels, size=n) * 0.25
        y = np.round(0.5 * x + rng.normal(size=n), 1)
    cases.append(case(f"random n={n} levels={levels}", x, y))

t_quantiles = [{"df": df, "q975": float(stats.t.ppf(0.975, df))} for df in [1, 2, 3, 4, 7, 15, 31, 100, 1000]]
sign_tests = [
    {"wins": w, "losses": l, "p": float(stats.binomtest(w, w + l, 0.5).pvalue)}
    for w, l in [(1, 9), (0, 5), (5, 5), (31, 1), (200, 150), (12, 20), (3, 0)]
]

out = {
    "generator": "scripts/kendall_reference.py",
    "scipy": scipy.__version__,
    "kendall_tau_b": cases,
    "t_quantiles": t_quantiles,
    "sign_tests": sign_tests,
}
path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "kendall_reference.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print(f"wrote {os.path.normpath(path)}")
