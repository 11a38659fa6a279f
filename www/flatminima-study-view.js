// @ts-check
// The study panel's view (issue 11): what a finished grid study shows in
// <flatminima-sandbox>, built as SVG from the study's JSON (a few hundred
// markers at most, no computation: the worker computed everything). Loaded by
// the element when the first grid study starts, so that a page that never runs
// one does not download it.

const escapeHtml = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
/** Sharpness measures of a grid study's runs (src/study_grid.rs RunSharpness) and their labels. */
const GRID_MEASURES = Object.fromEntries([["lambda_max", "λ_max"], ["trace", "Hessian trace"], ["eps_sharpness", "ε-sharpness"],
  ["rho_sharpness", "ρ-sharpness"], ["adaptive_sharpness", "adaptive sharpness"], ["average_sharpness", "average sharpness"]]);
/** Okabe-Ito, for colouring markers by an axis or a draw (the sides keep their own colours). */
const GRID_COLOURS = ["#0072b2", "#e69f00", "#cc79a7", "#56b4e9", "#d55e00", "#009e73", "#f0e442", "#000000"];


const signed = (v, digits = 2) => (v > 0 ? "+" : v < 0 ? "−" : "") + Math.abs(v).toFixed(digits);
/** About five round tick values over [lo, hi]. */
function ticks(lo, hi) {
  const step0 = (hi - lo) / 5 || 1, mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((k) => k >= step0) || step0;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}
/** A run's marker at (x, y): circle for the left side, triangle for the right (shape carries the side, not only colour). */
function marker(x, y, side, fill, filled) {
  const paint = filled ? `fill="${fill}" stroke="#1f2328" stroke-width="0.6"` : `fill="none" stroke="${fill}" stroke-width="1.2"`;
  return side === 0 ? `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3.4" ${paint}/>`
    : `<path d="M${x.toFixed(1)},${(y - 4.2).toFixed(1)}l3.8,6.6h-7.6z" ${paint}/>`;
}
const PLOT = { left: 52, right: 410, top: 10, bottom: 258 };
function axesSvg(xt, yt, sx, sy, xLabel, yLabel, fmtX = (v) => String(v)) {
  const { left, right, top, bottom } = PLOT;
  let svg = `<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#d6dadf"/>`;
  for (const t of xt) svg += `<line x1="${sx(t)}" x2="${sx(t)}" y1="${bottom}" y2="${bottom + 4}" stroke="#5b636b"/><text x="${sx(t)}" y="${bottom + 16}" text-anchor="middle">${fmtX(t)}</text>`;
  for (const t of yt) svg += `<line x1="${left - 4}" x2="${left}" y1="${sy(t)}" y2="${sy(t)}" stroke="#5b636b"/><text x="${left - 6}" y="${sy(t) + 4}" text-anchor="end">${t}</text>`;
  return svg + `<text x="${(left + right) / 2}" y="${bottom + 34}" text-anchor="middle">${xLabel}</text>` +
    `<text transform="translate(12 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${yLabel}</text>`;
}
/** Sharpness (log scale when it spans more than 20x) against OOD accuracy, one marker per run. */
function scatterSvg(runs, measure, used, colour) {
  if (!runs.length) return `<text x="210" y="150" text-anchor="middle">no run to plot (all diverged?)</text>`;
  const xs = runs.map((r) => r[measure]), ys = runs.map((r) => 100 * r.ood[0].acc);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const log = x0 > 0 && x1 / x0 > 20;
  const f = log ? Math.log10 : (v) => v;
  const pad = (a, b) => [a - 0.05 * (b - a || 1), b + 0.05 * (b - a || 1)];
  const [fx0, fx1] = pad(f(x0), f(x1)), [py0, py1] = pad(y0, y1);
  const { left, right, top, bottom } = PLOT;
  const sx = (v) => (left + ((v - fx0) / (fx1 - fx0)) * (right - left)).toFixed(1);
  const sy = (v) => (bottom - ((v - py0) / (py1 - py0)) * (bottom - top)).toFixed(1);
  // Log scale: ticks at 1, 2 and 5 times the powers of ten in range (just the powers when that is plenty).
  const logTicks = (steps) => Array.from({ length: Math.ceil(fx1) - Math.floor(fx0) + 1 }, (_, i) => Math.floor(fx0) + i)
    .flatMap((k) => steps.map((m) => Math.log10(m) + k)).filter((t) => t >= fx0 && t <= fx1);
  const xt = !log ? ticks(fx0, fx1) : logTicks([1]).length >= 3 ? logTicks([1]) : logTicks([1, 2, 5]);
  const fmtX = log ? (t) => String(Number((10 ** t).toPrecision(1))) : (t) => String(Number(t.toPrecision(3)));
  let svg = axesSvg(xt, ticks(py0, py1), sx, sy, `${measure}${log ? " (log scale)" : ""}`, "OOD accuracy (%)", fmtX);
  // Left-out runs first, under the others.
  for (const r of [...runs.filter((q) => !used(q)), ...runs.filter(used)]) {
    svg += marker(Number(sx(f(r[measure]))), Number(sy(100 * r.ood[0].acc)), r.side, used(r) ? colour(r) : "#888", used(r));
  }
  return svg;
}
/** The per-pair differences (points) as a histogram, with 0 (dashed), the mean and its interval over draws (band). */
function histogramSvg(diffs, d) {
  if (!diffs.length) return `<text x="210" y="150" text-anchor="middle">no pair where both sides trained</text>`;
  const marks = [0, 100 * d.mean, ...(d.lo != null && d.hi != null ? [100 * d.lo, 100 * d.hi] : [])].filter(Number.isFinite);
  let [lo, hi] = [Math.min(...diffs, ...marks), Math.max(...diffs, ...marks)];
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const bins = Math.min(24, Math.max(6, Math.ceil(Math.sqrt(diffs.length)) + 2)), width = (hi - lo) / bins;
  const counts = new Array(bins).fill(0);
  for (const v of diffs) counts[Math.min(bins - 1, Math.floor((v - lo) / width))]++;
  const top = Math.max(...counts);
  const { left, right, top: y0, bottom } = PLOT;
  const sx = (v) => (left + ((v - lo) / (hi - lo)) * (right - left)).toFixed(1);
  const sy = (v) => (bottom - (v / (top * 1.1)) * (bottom - y0)).toFixed(1);
  let svg = axesSvg(ticks(lo, hi), ticks(0, top * 1.1).filter(Number.isInteger), sx, sy, "right − left OOD accuracy (points)", "pairs",
    (t) => signed(t, Math.abs(t) < 10 && !Number.isInteger(t) ? 1 : 0));
  if (d.lo != null && d.hi != null) svg += `<rect x="${sx(100 * d.lo)}" y="${y0}" width="${(Number(sx(100 * d.hi)) - Number(sx(100 * d.lo))).toFixed(1)}" height="${bottom - y0}" fill="#0b5cad" opacity="0.15"/>`;
  counts.forEach((c, k) => { if (c) svg += `<rect x="${sx(lo + k * width)}" y="${sy(c)}" width="${Math.max(1, Number(sx(lo + (k + 1) * width)) - Number(sx(lo + k * width)) - 1).toFixed(1)}" height="${(bottom - Number(sy(c))).toFixed(1)}" fill="#5b636b"/>`; });
  svg += `<line x1="${sx(0)}" x2="${sx(0)}" y1="${y0}" y2="${bottom}" stroke="#1f2328" stroke-dasharray="4 3"/>`;
  if (Number.isFinite(d.mean)) svg += `<line x1="${sx(100 * d.mean)}" x2="${sx(100 * d.mean)}" y1="${y0}" y2="${bottom}" stroke="#0b5cad" stroke-width="2"/>`;
  return svg;
}

/**
 * Draws a finished grid study into the panel: scatter, histogram, sentence and
 * warnings, for the measure, colour and mode chosen in the panel.
 * @param {any} e the element's elements (its #els)
 * @param {any} out the study's JSON (study() resolves to it)
 * @param {{sides: string[]}} palette
 */
export function renderGrid(e, out, palette) {
  e.gridResults.hidden = false;
  const field = (name) => /** @type {any} */ (e.grid.querySelector(`[name="${name}"]`));
  const measure = field("grid-measure").value, label = GRID_MEASURES[measure];
  const matchedRule = out.spec.stop.kind === "train_loss";
  const mode = field("grid-matched").checked ? (matchedRule ? "matched" : "binned") : "raw";
  const ev = out.stats.evaluations[0];
  const row = ev.tau.find((t) => t.predictor === measure && t.target === "ood_acc" && t.mode === mode);
  const sides = [out.cells[0].left, out.cells[0].right];
  // Colour: the side, the data draw, or a training axis's value.
  const colourSelect = field("grid-colour");
  const axes = out.spec.axes.filter((a) => a.name !== "shift" && a.name !== "severity");
  const options = ["side", "draw", ...axes.map((a) => a.name)];
  if ([...colourSelect.options].map((o) => o.value).join() !== options.join()) {
    const was = colourSelect.value;
    colourSelect.replaceChildren(...options.map((o) => new Option(o === "draw" ? "data draw" : o, o)));
    colourSelect.value = options.includes(was) ? was : "side";
  }
  const by = colourSelect.value;
  const axis = axes.find((a) => a.name === by);
  const valueOf = (r) => axis ? axis.values.indexOf(out.cells[r.cell].settings.find(([n]) => n === by)[1]) : r.draw;
  const colour = (r) => (by === "side" ? palette.sides[r.side] : GRID_COLOURS[valueOf(r) % GRID_COLOURS.length]);
  const runs = out.runs.filter((r) => !r.diverged && Number.isFinite(r[measure]) && r.ood[0].acc != null);
  const used = (r) => mode !== "matched" || r.reached_target === true;
  const ci = (t) => (t.lo != null && t.hi != null ? ` [95% CI ${signed(t.lo)}, ${signed(t.hi)}]` : " (no interval)");
  const modeText = { raw: "all runs", binned: "within train-loss bins (runs of similar train loss)", matched: `runs that reached train loss ${out.spec.stop.target}` }[mode];
  e.gridScatterTitle.textContent = row && row.tau != null
    ? `Kendall τ(${label}, OOD accuracy) = ${signed(row.tau)}${ci(row)} · ${modeText} · ${row.runs} runs`
    : `Kendall τ(${label}, OOD accuracy): undefined for ${modeText} (too few runs, or ties only)`;
  e.gridScatter.innerHTML = scatterSvg(runs, measure, used, colour);
  e.gridScatter.setAttribute("aria-label", `${label} against OOD accuracy, one marker per run: circles ${sides[0]}, triangles ${sides[1]}`);
  const legend = [`<span><svg viewBox="-5 -5 10 10" class="fm-grid-mark">${marker(0, 0, 0, by === "side" ? palette.sides[0] : "#bbb", true)}</svg>left: ${escapeHtml(sides[0])}</span>`,
    `<span><svg viewBox="-5 -5 10 10" class="fm-grid-mark">${marker(0, 0, 1, by === "side" ? palette.sides[1] : "#bbb", true)}</svg>right: ${escapeHtml(sides[1])}</span>`];
  if (by !== "side") {
    const names = axis ? axis.values : Array.from({ length: out.spec.data_seeds }, (_, k) => `draw ${k + 1}`);
    names.slice(0, GRID_COLOURS.length).forEach((n, k) => legend.push(`<span><span class="fm-dot" style="background:${GRID_COLOURS[k]}"></span>${escapeHtml(axis ? `${by}=${n}` : n)}</span>`));
  }
  if (mode === "matched") legend.push(`<span><svg viewBox="-5 -5 10 10" class="fm-grid-mark">${marker(0, 0, 0, "#888", false)}</svg>did not reach the target (left out)</span>`);
  e.gridLegend.innerHTML = legend.join("");
  // The paired difference per pair, with the interval over data draws.
  const d = ev.paired[0].difference;
  const diffs = [];
  for (let i = 0; i + 1 < out.runs.length; i += 2) {
    const [l, r] = [out.runs[i], out.runs[i + 1]];
    if (!l.diverged && !r.diverged && l.ood[0].acc != null && r.ood[0].acc != null) diffs.push(100 * (r.ood[0].acc - l.ood[0].acc));
  }
  e.gridHistTitle.textContent = `${sides[1]} − ${sides[0]} OOD accuracy per pair (points): mean ${signed(100 * d.mean, 2)}` +
    (d.lo != null && d.hi != null ? ` [95% CI ${signed(100 * d.lo, 2)}, ${signed(100 * d.hi, 2)}] over ${d.n} data draws` : " (one data draw: no interval)");
  e.gridHist.innerHTML = histogramSvg(diffs, d);
  e.gridHist.setAttribute("aria-label", `histogram of ${diffs.length} paired OOD accuracy differences`);
  // One sentence from the measured numbers, and the other warnings.
  const underfit = out.stats.warnings.find((w) => / underfits/.test(w));
  const relation = !row || row.tau == null ? "no τ" : row.lo == null || row.hi == null ? "no interval"
    : row.lo > 0 ? "sharper runs had the higher OOD accuracy here" : row.hi < 0 ? "flatter runs had the higher OOD accuracy here" : "no clear rank relation";
  const tauText = row && row.tau != null ? `${label} vs OOD accuracy (${mode === "raw" ? "all runs" : mode === "binned" ? "within train-loss bins" : "at matched loss"}): τ = ${signed(row.tau)}${ci(row)}, ${relation}` : `${label} vs OOD accuracy: ${relation}`;
  const verdict = ev.verdict.charAt(0).toUpperCase() + ev.verdict.slice(1);
  e.gridVerdict.textContent = `${verdict}${underfit ? `; but ${underfit}` : ""}; ${tauText}.`;
  const diverged = out.stats.diverged[0] + out.stats.diverged[1];
  const rest = out.stats.warnings.filter((w) => w !== underfit);
  if (diverged) rest.push(`${diverged} runs diverged (${out.stats.diverged[0]} left, ${out.stats.diverged[1]} right) and are not plotted`);
  // Where the runs were trained, on the GPU backend (f32 training; the measures on the CPU).
  const t = out.training;
  if (t && t.gpu_units) rest.push(`${t.gpu_units} of ${t.gpu_units + t.cpu_units} units (cell × data draw) trained on the GPU (f32; the measures on the CPU)`);
  if (t) rest.push(...t.notices.map((n) => `Some units were ${n}`));
  e.gridWarnings.replaceChildren(...rest.map((w) => Object.assign(document.createElement("li"), { textContent: w })));
}

