//! `flatminima study` as a grid study: settings as axes (`--vary lr=0.01,0.1`
//! or `--grid FILE`), K data draws x S seeds, every run measured, the verdict
//! with its uncertainty over draws and the flatness-vs-OOD tau table
//! ([`flatminima_core::study_grid`], [`flatminima_core::study_stats`]). `--shard I/N`
//! trains part of it; `--merge` joins the parts into exactly the one-run output.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use flatminima_backend::gpu::block_on;
use flatminima_backend::{BackendChoice, GpuBackend};
use flatminima_core::study_grid::{fast_study_sharpness, Axis, Grid, GridSpec, Shard, StopRule, StudyOutput};
use flatminima_core::study_stats::{format_p, PairedMeasure, TARGETS};

use super::report::config_summary;
use super::study::StudyArgs;
use super::{print_stdout, write_file, Failure};

#[derive(Args, Clone, Debug, Default)]
pub struct GridArgs {
    /// An axis: a setting (names as in --set) and its values, e.g. `--vary lr=0.01,0.1,0.5`;
    /// repeatable (the grid is their product). `shift` and `severity` are evaluated on every
    /// trained run instead of being trained; `hidden` joins a value's widths with x
    /// (`hidden=16x16,32`)
    #[arg(long, value_name = "NAME=V1,V2,...", value_parser = parse_axis)]
    pub vary: Vec<Axis>,
    /// A grid file: one `NAME=V1,V2,...` axis per line, as --vary (`#` starts a comment)
    #[arg(long, value_name = "FILE")]
    pub grid: Option<PathBuf>,
    /// K: data draws (data seeds seed, seed+1, ...) [default: 1]
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub data_seeds: Option<u64>,
    /// S: init/batch-order seeds per data draw and cell [default: --replicas, else 1]
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub seeds: Option<u64>,
    /// Stop each run when its loss on the whole training set first reaches L (the matched-loss
    /// protocol), at most --steps steps; runs that never get there are reported as such
    #[arg(long, value_name = "L", allow_hyphen_values = true)]
    pub until_train_loss: Option<f64>,
    /// With --until-train-loss: steps between two checks of the training loss
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub check_every: u64,
    /// How lambda_max and the Hessian trace are taken: `exact` from the dense Hessian's spectrum
    /// (where the net has at most 2048 parameters), or `fast` as the page's study panel does
    /// (lambda_max by 20 Lanczos steps, the exact trace from the Hessian's diagonal; about half
    /// the time per run of the reference net) [default: exact]
    #[arg(long, value_name = "exact|fast", value_parser = ["exact", "fast"])]
    pub measures: Option<String>,
    /// Every run's measures as CSV (one row per run and OOD evaluation)
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Train only shard I of N (0 <= I < N) of the (cell, data draw) units; --out writes it for --merge
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Join the shard files of one study (written by --shard ... --out) into its full result
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub merge: Vec<PathBuf>,
    /// Units (cell x data draw) trained (or, with --backend gpu, measured) at once, one per
    /// thread; the result is the same bit for bit [default: the cores this process may use]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,
}

impl GridArgs {
    pub fn is_grid(&self) -> bool {
        !self.vary.is_empty()
            || self.grid.is_some()
            || self.data_seeds.is_some()
            || self.seeds.is_some()
            || self.until_train_loss.is_some()
            || self.csv.is_some()
            || self.measures.is_some()
            || self.shard.is_some()
            || !self.merge.is_empty()
    }
}

fn parse_axis(text: &str) -> Result<Axis, String> {
    let (name, values) = text
        .split_once('=')
        .filter(|(n, v)| !n.trim().is_empty() && !v.trim().is_empty())
        .ok_or_else(|| format!("expected NAME=V1,V2,..., e.g. lr=0.01,0.1, got `{text}`"))?;
    // A `hidden` value is a list itself: its widths are joined by `x` here (hidden=16x16,32 is
    // the two nets 16,16 and 32), so that the comma still separates values.
    let name = name.trim();
    let value = |v: &str| if name == "hidden" { v.trim().replace('x', ",") } else { v.trim().to_string() };
    Ok(Axis { name: name.to_string(), values: values.split(',').map(value).collect() })
}

fn read_grid_file(path: &PathBuf) -> Result<Vec<Axis>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::bad_input(format!("cannot read grid file `{}`: {e}", path.display())))?;
    let mut axes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if !line.is_empty() {
            axes.push(parse_axis(line).map_err(|e| Failure::bad_input(format!("{}:{}: {e}", path.display(), i + 1)))?);
        }
    }
    Ok(axes)
}

pub fn run(args: StudyArgs) -> Result<(), Failure> {
    let g = &args.grid;
    if !g.merge.is_empty() {
        return merge(&args);
    }
    let on_gpu = args.backend.backend == BackendChoice::Gpu;
    if args.backend.backend == BackendChoice::Cpu || (on_gpu && g.shard.is_some()) {
        eprintln!("notice: a grid study trains on the CPU (f64, reproducible bit for bit) unless --backend gpu (without --shard)");
    }
    let mut base = args.config.load()?;
    if let Some(steps) = args.steps {
        base.training.steps = steps as usize;
    }
    let mut axes = g.vary.clone();
    if let Some(path) = &g.grid {
        axes.extend(read_grid_file(path)?);
    }
    let seeds = g.seeds.or(args.replicas.map(u64::from)).unwrap_or(1) as usize;
    let mut spec = GridSpec::new(base, g.data_seeds.unwrap_or(1) as usize, seeds);
    spec.axes = axes;
    if g.measures.as_deref() == Some("fast") {
        spec.sharpness = fast_study_sharpness();
    }
    if let Some(target) = g.until_train_loss {
        spec.stop = StopRule::TrainLoss { target, check_every: g.check_every as usize };
    }
    let grid = Grid::new(spec).map_err(|e| Failure::bad_input(format!("{}: {}", e.field, e.message)))?;
    if g.shard.is_some() && args.out.is_none() {
        return Err(Failure::bad_input("--shard needs --out FILE: the shard's runs are what --merge reads"));
    }
    let start = Instant::now();
    let mut last_report = Instant::now();
    let mut report = |done: usize, total: usize| {
        if last_report.elapsed().as_secs_f64() >= 5.0 || done == total {
            eprintln!("progress: {done}/{total} units (cell x data draw), {:.0} s", start.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
    };
    let threads = g.threads.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |n| n as usize);
    let units = grid.shard_units(g.shard.unwrap_or(Shard { index: 0, count: 1 })).count();
    let threads = threads.clamp(1, units.max(1));
    let on_gpu = if on_gpu && g.shard.is_none() { train_on_gpu(&grid, threads, &mut report) } else { None };
    let output = match on_gpu {
        Some(output) => output,
        None => grid.run_on_threads(g.shard, threads, report),
    };
    let seconds = start.elapsed().as_secs_f64();
    finish(&args, &grid, &output, Some((seconds, threads)))
}

/// `--backend gpu`: the runs trained on the GPU's replica kernels and measured
/// on the CPU (`GpuBackend::run_grid`); None, with a notice, where there is no
/// GPU or it fails (the caller trains on the CPU).
fn train_on_gpu(grid: &Grid, threads: usize, progress: &mut impl FnMut(usize, usize)) -> Option<StudyOutput> {
    super::backend::quiet_mesa();
    let result = match block_on(GpuBackend::open()) {
        Ok(gpu) => {
            eprintln!("backend: {} (training; the measures on the CPU)", gpu.description());
            block_on(gpu.run_grid(grid, threads, progress))
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(done) => {
            for notice in &done.notices {
                eprintln!("notice: {notice}");
            }
            eprintln!("backend: {} of {} units trained on the GPU (f32)", done.gpu_units, done.units);
            Some(done.output)
        }
        Err(e) => {
            eprintln!("notice: the GPU failed ({e}); the study trains on the CPU");
            None
        }
    }
}

fn merge(args: &StudyArgs) -> Result<(), Failure> {
    let g = &args.grid;
    let settings_given = args.config.config.is_some()
        || !args.config.set.is_empty()
        || args.steps.is_some()
        || args.replicas.is_some()
        || g.shard.is_some()
        || !g.vary.is_empty()
        || g.grid.is_some()
        || g.data_seeds.is_some()
        || g.seeds.is_some()
        || g.until_train_loss.is_some()
        || g.measures.is_some()
        || g.threads.is_some();
    if settings_given {
        return Err(Failure::bad_input(
            "--merge takes the shard files (and --out, --csv) only: the study's settings are in them",
        ));
    }
    let mut parts = Vec::new();
    for path in &args.grid.merge {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::bad_input(format!("cannot read shard `{}`: {e}", path.display())))?;
        let part: StudyOutput = serde_json::from_str(&text)
            .map_err(|e| Failure::bad_input(format!("{}: not a study shard: {e}", path.display())))?;
        parts.push(part);
    }
    let output = Grid::merge(parts).map_err(|e| match e.field.as_str() {
        "merge" => Failure::bad_input(format!("--merge: {}", e.message)),
        field => Failure::bad_input(format!("--merge: {field}: {}", e.message)),
    })?;
    let grid = Grid::new(output.spec.clone()).map_err(|e| Failure::bad_input(e.to_string()))?;
    finish(args, &grid, &output, None)
}

/// Writes the JSON and CSV, prints the summary.
fn finish(args: &StudyArgs, grid: &Grid, output: &StudyOutput, time: Option<(f64, usize)>) -> Result<(), Failure> {
    let mut text = summary(grid, output);
    if let Some((s, threads)) = time {
        let threads = if threads == 1 { "one thread".to_string() } else { format!("{threads} threads") };
        text += &format!("time      {s:.1} s wall clock, {threads}\n");
    }
    if let Some(path) = &args.grid.csv {
        write_file(path, &csv(grid, output))?;
        text += &format!("wrote {}\n", path.display());
    }
    match &args.out {
        None => print_stdout(&text),
        Some(path) if path.as_os_str() == "-" => {
            eprint!("{text}");
            print_stdout(&(serde_json::to_string(output).expect("results serialise") + "\n"))
        }
        Some(path) => {
            write_file(path, &(serde_json::to_string_pretty(output).expect("results serialise") + "\n"))?;
            print_stdout(&format!("{text}wrote {}\n", path.display()))
        }
    }
}

fn summary(grid: &Grid, output: &StudyOutput) -> String {
    let spec = &grid.spec;
    let mut out = config_summary(&spec.base);
    let axes: Vec<String> = spec.axes.iter().map(|a| format!("{}={}", a.name, a.values.join(","))).collect();
    let stop = match spec.stop {
        StopRule::Steps => "fixed steps".to_string(),
        StopRule::TrainLoss { target, check_every } => {
            format!("until the train loss reaches {target} (checked every {check_every} steps)")
        }
    };
    out += &format!(
        "grid      {} cells x {} data draws x {} seeds = {} pairs; {stop}\n",
        grid.cells.len(),
        spec.data_seeds,
        spec.seeds,
        grid.pairs()
    );
    if !axes.is_empty() {
        out += &format!("axes      {}\n", axes.join("  "));
    }
    let Some(stats) = &output.stats else {
        let shard = output.shard.map_or(String::new(), |s| s.to_string());
        return out + &format!("shard     {shard}: {} runs; merge all shards for the statistics\n", output.runs.len());
    };
    out += &format!(
        "runs      {} pairs, {} with neither side diverged; diverged {}/{}, underfit {}/{} (left/right)",
        stats.pairs, stats.pairs_used, stats.diverged[0], stats.diverged[1], stats.underfit[0], stats.underfit[1]
    );
    if let Some([l, r]) = stats.not_reached {
        out += &format!(", never reached the target loss {l}/{r}");
    }
    out += "\n\n";
    out +=
        "paired right - left, mean of per-draw means [95% t interval over data draws]; draws favouring right : left\n";
    let mut paired: Vec<&PairedMeasure> = Vec::new();
    for e in &stats.evaluations {
        paired.extend(e.paired.iter().take(1));
    }
    // Steps differ only under the matched-loss rule.
    let matched = matches!(spec.stop, StopRule::TrainLoss { .. });
    paired.extend(stats.paired.iter().filter(|p| matched || p.measure != "steps"));
    for (k, p) in paired.iter().enumerate() {
        let name = if k < stats.evaluations.len() {
            let e = &stats.evaluations[k];
            format!("ood_acc ({} {})", e.shift, e.severity)
        } else {
            p.measure.clone()
        };
        out += &format!("  {name:<26} {}\n", paired_line(p));
    }
    for e in &stats.evaluations {
        out += &format!("verdict ({} {}): {}\n", e.shift, e.severity, e.verdict);
    }
    if !stats.cells.is_empty() {
        out += "\nper cell: right - left in points [95% CI over draws]\n";
        for c in &stats.cells {
            let settings: Vec<String> = grid.cells[c.cell].settings.iter().map(|(n, v)| format!("{n}={v}")).collect();
            let pts = |i: flatminima_core::stats::Interval| interval_points(i);
            out += &format!(
                "  {:<32} OOD acc {}  train acc {}  ID acc {}\n",
                settings.join(" "),
                pts(c.ood_acc),
                pts(c.train_acc),
                pts(c.id_acc)
            );
        }
    }
    if !stats.warnings.is_empty() {
        out += "\n";
        for w in &stats.warnings {
            out += &format!("warning: {w}\n");
        }
    }
    for e in &stats.evaluations {
        out += &format!(
            "\nKendall tau-b with OOD accuracy ({} {}), 95% bootstrap interval over {}; OOD loss and gap in the JSON\n",
            e.shift, e.severity, stats.bootstrap_over
        );
        let modes: Vec<&str> =
            ["raw", "binned", "matched"].into_iter().filter(|m| e.tau.iter().any(|t| t.mode == *m)).collect();
        let header: Vec<String> = modes
            .iter()
            .map(|m| match *m {
                "raw" => "raw".to_string(),
                "binned" => "within train-loss bins".to_string(),
                _ => "at matched loss".to_string(),
            })
            .collect();
        out += &format!("  {:<20}", "predictor");
        for h in &header {
            out += &format!(" {h:<26}");
        }
        out += "\n";
        for row in e.tau.iter().filter(|t| t.target == TARGETS[0] && t.mode == "raw") {
            out += &format!("  {:<20}", row.predictor);
            for m in &modes {
                let t = e.tau.iter().find(|t| t.predictor == row.predictor && t.target == TARGETS[0] && t.mode == *m);
                let cell = t.map_or("-".to_string(), |t| match (t.tau, t.lo, t.hi) {
                    (Some(v), Some(lo), Some(hi)) => format!("{v:+.3} [{lo:+.2}, {hi:+.2}] n={}", t.runs),
                    (Some(v), _, _) => format!("{v:+.3} n={}", t.runs),
                    _ => format!("- n={}", t.runs),
                });
                out += &format!(" {cell:<26}");
            }
            out += "\n";
        }
        if let Some(first) = e.granulated.first() {
            let names: Vec<&str> = first.per_axis.iter().map(|(n, _)| n.as_str()).collect();
            out += &format!("granulated tau with OOD accuracy (Jiang et al.), per axis: {}\n", names.join(", "));
            for g in e.granulated.iter().filter(|g| g.target == TARGETS[0]) {
                let values: Vec<String> = g.per_axis.iter().map(|(_, t)| tau_text(*t)).collect();
                out += &format!("  {:<20} {}  mean {}\n", g.predictor, values.join("  "), tau_text(g.mean));
            }
        }
    }
    out
}

fn tau_text(t: Option<f64>) -> String {
    t.map_or("-".to_string(), |t| format!("{t:+.3}"))
}

/// `+1.59 pts [+1.22, +1.96]`, or without the interval where there is none.
fn interval_points(i: flatminima_core::stats::Interval) -> String {
    if !i.mean.is_finite() {
        "-".to_string()
    } else if i.lo.is_finite() {
        format!("{:+.2} [{:+.2}, {:+.2}]", 100.0 * i.mean, 100.0 * i.lo, 100.0 * i.hi)
    } else {
        format!("{:+.2} (one draw)", 100.0 * i.mean)
    }
}

fn paired_line(p: &PairedMeasure) -> String {
    let i = p.difference;
    // Accuracies in points; everything else in its own unit.
    let scale = if p.measure.contains("acc") { 100.0 } else { 1.0 };
    let unit = if scale == 100.0 { " pts" } else { "" };
    // Points with 2 decimals; other measures with 3 significant digits (average sharpness is ~1e-5).
    let number = |x: f64| match scale == 100.0 {
        true => format!("{:+.2}", 100.0 * x),
        false if x != 0.0 && x.abs() < 0.01 => format!("{x:+.2e}"),
        false => format!("{x:+.3}"),
    };
    let value = if !i.mean.is_finite() {
        "-".to_string()
    } else if i.lo.is_finite() {
        format!("{}{unit} [{}, {}]", number(i.mean), number(i.lo), number(i.hi))
    } else {
        format!("{}{unit}", number(i.mean))
    };
    format!(
        "{value:<40} draws {}:{} (sign test p = {})",
        p.draws_right_higher,
        p.draws_right_lower,
        format_p(p.sign_test_p)
    )
}

/// One row per run and OOD evaluation; NaN as an empty field.
fn csv(grid: &Grid, output: &StudyOutput) -> String {
    let axis_names: Vec<&str> = grid.training_axes.iter().map(|a| a.name.as_str()).collect();
    let mut header = vec!["cell"];
    header.extend(&axis_names);
    header.extend([
        "draw",
        "data_seed",
        "seed_index",
        "seed",
        "side",
        "label",
        "shift",
        "severity",
        "steps",
        "reached_target",
        "train_loss",
        "train_acc",
        "id_loss",
        "id_acc",
        "ood_loss",
        "ood_acc",
        "ood_gap",
        "param_norm",
        "lambda_max",
        "lambda_max_exact",
        "trace",
        "trace_std_error",
        "trace_exact",
        "eps_sharpness",
        "rho_sharpness",
        "adaptive_sharpness",
        "average_sharpness",
        "average_std_error",
        "diverged",
        "underfit",
    ]);
    let mut out = header.join(",") + "\n";
    let num = |x: f64| if x.is_finite() { x.to_string() } else { String::new() };
    for r in &output.runs {
        let cell = &output.cells[r.cell];
        for (e, shift) in output.evaluations.iter().enumerate() {
            let o = r.ood(e);
            let label = if r.side == 0 { &cell.left } else { &cell.right };
            let mut fields: Vec<String> = vec![r.cell.to_string()];
            fields.extend(cell.settings.iter().map(|(_, v)| v.clone()));
            fields.extend([
                r.draw.to_string(),
                r.data_seed.to_string(),
                r.seed_index.to_string(),
                r.seed.to_string(),
                if r.side == 0 { "left" } else { "right" }.to_string(),
                label.clone(),
                shift.kind.name().to_string(),
                shift.severity.to_string(),
                r.steps.to_string(),
                r.reached_target.map_or(String::new(), |b| b.to_string()),
            ]);
            fields.extend(
                [
                    r.train_loss,
                    r.train_acc,
                    r.id_loss,
                    r.id_acc,
                    o.loss,
                    o.acc,
                    o.gap,
                    r.param_norm,
                    r.sharpness.lambda_max,
                ]
                .map(num),
            );
            fields.push(r.sharpness.lambda_max_exact.to_string());
            fields.extend([r.sharpness.trace, r.sharpness.trace_std_error].map(num));
            fields.push(r.sharpness.trace_exact.to_string());
            fields.extend(
                [
                    r.sharpness.eps_sharpness,
                    r.sharpness.rho_sharpness,
                    r.sharpness.adaptive_sharpness,
                    r.sharpness.average_sharpness,
                    r.sharpness.average_std_error,
                ]
                .map(num),
            );
            fields.extend([r.diverged.to_string(), r.underfit.to_string()]);
            out += &(fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",") + "\n");
        }
    }
    out
}

/// Quotes a field that holds a comma or a quote (hidden=16,16; labels are plain).
fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_and_hidden_values_join_widths_with_x() {
        let a = parse_axis(" lr = 0.01, 0.1 ").unwrap();
        assert_eq!((a.name.as_str(), a.values), ("lr", vec!["0.01".to_string(), "0.1".to_string()]));
        let h = parse_axis("hidden=16x16,32,8x8x8").unwrap();
        assert_eq!(h.values, ["16,16", "32", "8,8,8"]);
        for bad in ["lr", "=0.1", "lr=", ""] {
            assert!(parse_axis(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(csv_field("0.1"), "0.1");
        assert_eq!(csv_field("16,16"), "\"16,16\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
