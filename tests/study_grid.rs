//! Study grids (crates/core/src/study_grid.rs, crates/core/src/study_stats.rs) on tiny grids: the
//! seeds are `compare`'s, evaluations need no retraining, the stopping rule
//! stops where it says, shards merge into the unsharded result bit for bit,
//! bad grids are refused by name, and the statistics equal their closed forms.

use flatminima::config::RunConfig;
use flatminima::data::{ShiftConfig, ShiftKind};
use flatminima::job::Job;
use flatminima::pair::Pair;
use flatminima::stats::student_t_quantile;
use flatminima::study_grid::{
    Axis, Grid, GridJob, GridSpec, OodResult, RunResult, RunSharpness, Shard, StopRule, StudyOutput, UnitJob,
};
use flatminima::study_stats::{StatsInput, StatsJob, StudyStats};

#[path = "support/study_identity.rs"]
mod study_identity;

fn small() -> RunConfig {
    let mut c = RunConfig::default();
    c.data.n_train = 48;
    c.data.n_test = 60;
    c.model.hidden = vec![5];
    c.training.steps = 30;
    c.training.batch_size = 16;
    c
}

fn axis(name: &str, values: &[&str]) -> Axis {
    Axis { name: name.into(), values: values.iter().map(|v| v.to_string()).collect() }
}

fn trained_pair(config: RunConfig, steps: usize) -> Pair {
    let mut pair = Pair::new(config).unwrap();
    pair.train(steps);
    pair
}

#[test]
fn each_draw_s_first_seed_is_compare_s_pair_and_shifts_need_no_retraining() {
    let mut spec = GridSpec::new(small(), 2, 2);
    spec.axes = vec![axis("severity", &["0.2", "0.9"]), axis("lr", &["0.05", "0.2"])];
    let grid = Grid::new(spec).unwrap();
    assert_eq!(
        (grid.cells.len(), grid.evaluations.len(), grid.pairs()),
        (2, 2, 8),
        "severity is evaluated, not trained"
    );
    let out = grid.run(None, |_, _| {});
    assert_eq!(out.runs.len(), 16);
    // Cell lr=0.2, draw 1, seed 0 is `compare --set lr=0.2 --set seed=2`, tested at each severity.
    let run =
        |side: usize| out.runs.iter().find(|r| (r.cell, r.draw, r.seed_index, r.side) == (1, 1, 0, side)).unwrap();
    for severity in [0.2, 0.9] {
        let mut config = small();
        config.left.optimizer.set_lr(0.2);
        config.right.optimizer.set_lr(0.2);
        config.seed = 2;
        config.shift = ShiftConfig { kind: ShiftKind::Rotate, severity };
        let mut pair = trained_pair(config, 30);
        let e = grid.evaluations.iter().position(|s| s.severity == severity).unwrap();
        for (side, r) in pair.sides_mut().into_iter().enumerate() {
            let m = r.evaluate();
            let got = run(side);
            assert_eq!((got.data_seed, got.seed, got.steps), (2, 2, 30));
            assert_eq!((got.train_loss, got.id_acc), (m.train_loss, m.id_acc), "side {side}");
            assert_eq!((got.ood[e].loss, got.ood[e].acc), (m.ood_loss, m.ood_acc), "side {side} severity {severity}");
            assert_eq!(got.ood[e].gap, m.id_acc - m.ood_acc);
        }
    }
    // Seed 1 of a draw has its own init and batches (seed + 2^32), data of the draw.
    let other = out.runs.iter().find(|r| (r.cell, r.draw, r.seed_index, r.side) == (1, 1, 1, 0)).unwrap();
    assert_eq!((other.data_seed, other.seed), (2, 2 + (1 << 32)));
    assert_ne!(other.train_loss, run(0).train_loss);
    // Every run is measured: exact lambda_max and trace from the dense spectrum (46 parameters).
    for r in &out.runs {
        assert!(!r.diverged);
        let s = &r.sharpness;
        assert!(s.lambda_max_exact && s.trace_exact && s.trace_std_error == 0.0);
        assert!(s.lambda_max > 0.0 && s.trace >= s.lambda_max * 0.999, "{} {}", s.lambda_max, s.trace);
        for v in [s.eps_sharpness, s.rho_sharpness, s.adaptive_sharpness, s.average_sharpness, r.param_norm] {
            assert!(v.is_finite());
        }
    }
}

#[test]
fn the_matched_loss_rule_stops_at_the_first_check_below_the_target() {
    let mut config = small();
    config.training.steps = 400;
    let mut spec = GridSpec::new(config.clone(), 1, 2);
    spec.stop = StopRule::TrainLoss { target: 0.45, check_every: 7 };
    let out = Grid::new(spec.clone()).unwrap().run(None, |_, _| {});
    for r in &out.runs {
        assert_eq!(r.reached_target, Some(true), "0.45 is reachable in 400 steps");
        assert!(r.train_loss <= 0.45 && r.steps % 7 == 0 && r.steps < 400, "{} at {}", r.train_loss, r.steps);
    }
    // One check earlier the loss was still above the target (seed 0 is the pair's own).
    let left = &out.runs[0];
    let before = trained_pair(config.clone(), left.steps - 7).left.evaluate().train_loss;
    assert!(before > 0.45, "{before}");
    // An unreachable target: every run trains its steps and says it did not get there.
    spec.stop = StopRule::TrainLoss { target: 1e-9, check_every: 10 };
    spec.base.training.steps = 25;
    let out = Grid::new(spec).unwrap().run(None, |_, _| {});
    assert!(out.runs.iter().all(|r| r.reached_target == Some(false) && r.steps == 25));
    let stats = out.stats.unwrap();
    assert_eq!(stats.not_reached, Some([2, 2]));
    assert!(
        stats.warnings.iter().any(|w| w.starts_with("4 of 4 runs never reached the target")),
        "{:?}",
        stats.warnings
    );
}

#[test]
fn shards_merge_into_the_unsharded_study_bit_for_bit() {
    let mut spec = GridSpec::new(small(), 3, 1);
    spec.axes = vec![axis("batch-size", &["8", "48"]), axis("label-noise", &["0", "0.2"])];
    let grid = Grid::new(spec.clone()).unwrap();
    let whole = serde_json::to_string_pretty(&grid.run(None, |_, _| {})).unwrap();
    // Through JSON, in any order, as the CLI does.
    let shards: Vec<StudyOutput> = [2, 0, 1]
        .map(|i| {
            let part = grid.run(Some(Shard { index: i, count: 3 }), |_, _| {});
            assert!(part.stats.is_none());
            serde_json::from_str(&serde_json::to_string(&part).unwrap()).unwrap()
        })
        .into();
    let merged = Grid::merge(shards.clone()).unwrap();
    assert_eq!(serde_json::to_string_pretty(&merged).unwrap(), whole);

    let e = Grid::merge(shards[..2].to_vec()).unwrap_err();
    assert!(e.message.contains("shard 1/3 is missing"), "{e}");
    let e = Grid::merge(vec![shards[0].clone(), shards[0].clone()]).unwrap_err();
    assert!(e.message.contains("repeats shard 2/3"), "{e}");
    let mut edited = shards.clone();
    edited[1].runs[0].draw = 2;
    assert!(Grid::merge(edited).unwrap_err().message.contains("not those of the study"));
    // A run's seeds are checked too: an edited init seed is not the unit's.
    let mut reseeded = shards.clone();
    reseeded[2].runs[1].seed ^= 1;
    let e = Grid::merge(reseeded).unwrap_err();
    assert!(e.message.contains("not a unit of this study"), "{e}");
    let mut other = shards[1].clone();
    other.spec.seeds = 2;
    let e = Grid::merge(vec![shards[0].clone(), other]).unwrap_err();
    assert!(e.message.contains("another study"), "{e}");
}

#[test]
fn units_finished_on_threads_are_the_runs_of_one_thread_in_unit_order() {
    // The costly cell first (full batches of 48), and a thread per unit: the units finish out of order.
    let mut spec = GridSpec::new(small(), 3, 2);
    spec.axes = vec![axis("batch-size", &["48", "8"])];
    let grid = Grid::new(spec).unwrap();
    let one = grid.run(None, |_, _| {});
    let mut told = Vec::new();
    let threaded = grid.run_on_threads(None, grid.units(), |done, all| told.push((done, all)));
    let units = grid.units();
    assert_eq!(told, (1..=units).map(|k| (k, units)).collect::<Vec<_>>(), "progress once per unit, counting up");
    assert_eq!(serde_json::to_string(&threaded).unwrap(), serde_json::to_string(&one).unwrap());
    // Items made into jobs on the threads, in their order whatever the order they finish in.
    let reversed: Vec<usize> = (0..units).rev().collect();
    let runs = flatminima::study_grid::finish_units(reversed.into_iter(), 4, |u| UnitJob::new(&grid, u), |_| {});
    let expected: Vec<_> = (0..units).rev().flat_map(|u| grid.run_unit(u)).collect();
    assert_eq!(serde_json::to_string(&runs).unwrap(), serde_json::to_string(&expected).unwrap());
}

#[test]
fn bad_grids_are_refused_by_name() {
    // (axes as (name, values), the error's field starts with, its text contains)
    type Case<'a> = (&'a [(&'a str, &'a [&'a str])], &'a str, &'a str);
    let cases: &[Case] = &[
        (&[("lr", &["0.1", "abc"])], "lr=abc", "must be a number"),
        (&[("colour", &["red"])], "colour", "unknown setting"),
        (&[("seed", &["1", "2"])], "seed", "--data-seeds"),
        (&[("lr", &["0.1"]), ("lr", &["0.2"])], "lr", "twice"),
        (&[("lr", &["0.1", "0.1"])], "lr", "twice"),
        (&[("rho", &[])], "rho", "needs a list"),
        (&[("shift", &["spurious_flip"])], "shift=spurious_flip", "spurious dataset"),
        (&[("severity", &["2"])], "severity=2", "[0, 1]"),
        (&[("batch-size", &["64"])], "batch-size=64", "n_train = 48"),
        (&[("label-noise", &["0.9"])], "label-noise=0.9", "[0, 0.5]"),
    ];
    for (axes, field, message) in cases {
        let mut spec = GridSpec::new(small(), 1, 1);
        spec.axes = axes.iter().map(|(n, v)| axis(n, v)).collect();
        let e = Grid::new(spec).unwrap_err();
        assert!(e.field.starts_with(field) && e.to_string().contains(message), "{axes:?}: {e}");
    }
    let e = Grid::new(GridSpec { seeds: 0, ..GridSpec::new(small(), 1, 1) }).unwrap_err();
    assert_eq!(e.field, "seeds");
    let e = Grid::new(GridSpec {
        stop: StopRule::TrainLoss { target: -1.0, check_every: 1 },
        ..GridSpec::new(small(), 1, 1)
    })
    .unwrap_err();
    assert_eq!(e.field, "until-train-loss");
    let mut huge = GridSpec::new(small(), 10_000, 10_000);
    huge.axes = vec![axis("lr", &["0.1", "0.2"])];
    assert!(Grid::new(huge).unwrap_err().message.contains("pairs"));
    for (text, ok) in [("0/4", true), ("3/4", true), ("4/4", false), ("1/0", false), ("x", false), ("-1/2", false)] {
        assert_eq!(text.parse::<Shard>().is_ok(), ok, "{text}");
    }
}

/// A run with the given accuracies and sharpness; everything else plain.
fn fake(draw: usize, side: usize, ood_acc: f64, train_acc: f64, lambda_max: f64, train_loss: f64) -> RunResult {
    RunResult {
        cell: 0,
        draw,
        seed_index: 0,
        side,
        data_seed: draw as u64,
        seed: draw as u64,
        steps: 10,
        reached_target: None,
        train_loss,
        train_acc,
        id_loss: 0.1,
        id_acc: 0.95,
        ood: vec![OodResult { loss: 1.0 - ood_acc, acc: ood_acc, gap: 0.95 - ood_acc }],
        param_norm: 1.0,
        sharpness: RunSharpness {
            lambda_max,
            lambda_max_exact: true,
            trace: lambda_max,
            trace_std_error: 0.0,
            trace_exact: true,
            eps_sharpness: 1.0,
            rho_sharpness: 1.0,
            adaptive_sharpness: 1.0,
            average_sharpness: 1.0,
            average_std_error: 0.0,
        },
        diverged: false,
        underfit: false,
    }
}

#[test]
fn paired_differences_are_clustered_over_draws_with_the_closed_form_interval() {
    let grid = Grid::new(GridSpec::new(small(), 3, 1)).unwrap();
    // Right minus left OOD accuracy 0.01, 0.02, 0.06 in the three draws; right's
    // train accuracy 3 points lower; lambda_max orders the runs as OOD accuracy does.
    let d = [0.01, 0.02, 0.06];
    let mut runs = Vec::new();
    for (k, dk) in d.iter().enumerate() {
        let base = 0.6 + 0.05 * k as f64;
        runs.push(fake(k, 0, base, 0.99, base, 0.1 + 0.01 * k as f64));
        runs.push(fake(k, 1, base + dk, 0.96, base + dk, 0.2 + 0.01 * k as f64));
    }
    let stats = StudyStats::new(&grid, &runs);
    let ood = &stats.evaluations[0].paired[0];
    assert_eq!(ood.measure, "ood_acc");
    let mean = 0.03;
    let sd = ((0.02f64.powi(2) + 0.01f64.powi(2) + 0.03f64.powi(2)) / 2.0).sqrt();
    let half = student_t_quantile(0.975, 2.0) * sd / 3f64.sqrt();
    let i = ood.difference;
    assert!(
        (i.mean - mean).abs() < 1e-15 && (i.lo - (mean - half)).abs() < 1e-12 && (i.hi - (mean + half)).abs() < 1e-12
    );
    assert_eq!((ood.draws_right_higher, ood.draws_right_lower), (3, 0));
    assert!((ood.sign_test_p - 0.25).abs() < 1e-15, "2 / 2^3");
    assert!(stats.evaluations[0].verdict.contains("no clear"), "{}", stats.evaluations[0].verdict);
    // SAM's train accuracy is 3 points lower: the warning says so.
    assert!(
        stats
            .warnings
            .iter()
            .any(|w| w
                .starts_with("SAM(rho=0.2)+SGD underfits: train accuracy 3.0 and ID accuracy 0.0 points below SGD's")),
        "{:?}",
        stats.warnings
    );
    // With label noise, a lower train accuracy may be noise not memorised: no warning.
    let mut noisy = small();
    noisy.data.label_noise = 0.2;
    let quiet = StudyStats::new(&Grid::new(GridSpec::new(noisy, 3, 1)).unwrap(), &runs);
    assert!(quiet.warnings.is_empty(), "{:?}", quiet.warnings);
    // lambda_max is ordered exactly as OOD accuracy: tau +1 raw; OOD loss = 1 - acc: -1.
    let tau = |predictor: &str, target: &str, mode: &str| {
        let rows = &stats.evaluations[0].tau;
        rows.iter().find(|t| t.predictor == predictor && t.target == target && t.mode == mode).unwrap().clone()
    };
    let raw = tau("lambda_max", "ood_acc", "raw");
    assert!((raw.tau.unwrap() - 1.0).abs() < 1e-15 && raw.runs == 6);
    assert!((tau("lambda_max", "ood_loss", "raw").tau.unwrap() + 1.0).abs() < 1e-15);
    // A draw resample keeps the order: the bootstrap interval is [1, 1] too.
    assert!((raw.lo.unwrap() - 1.0).abs() < 1e-12 && (raw.hi.unwrap() - 1.0).abs() < 1e-12);
    assert!(stats.evaluations[0].tau.iter().all(|t| t.mode != "matched"), "no target loss, no matched mode");
    // The constant sharpness measures have no tau at all (undefined, not 0).
    assert_eq!(tau("eps_sharpness", "ood_acc", "raw").tau, None);
    // Granulated over the one implicit axis, the side: within each (draw) group, 2 runs ordered alike.
    let g =
        stats.evaluations[0].granulated.iter().find(|g| g.predictor == "lambda_max" && g.target == "ood_acc").unwrap();
    assert_eq!(g.per_axis.len(), 1);
    assert!((g.mean.unwrap() - 1.0).abs() < 1e-15);

    // With one draw there is no interval and the verdict says so.
    let one = Grid::new(GridSpec::new(small(), 1, 1)).unwrap();
    let stats = StudyStats::new(&one, &runs[..2]);
    let i = stats.evaluations[0].paired[0].difference;
    assert!(i.lo.is_nan() && i.hi.is_nan());
    assert!(stats.evaluations[0].verdict.contains("no verdict"));
    assert!(stats.warnings[0].contains("one data draw"));
    assert_eq!(stats.bootstrap_over, "runs");
}

#[test]
fn a_clear_difference_gets_a_verdict_and_diverged_pairs_are_left_out() {
    let grid = Grid::new(GridSpec::new(small(), 4, 1)).unwrap();
    let mut runs = Vec::new();
    for k in 0..4 {
        runs.push(fake(k, 0, 0.60, 0.99, 1.0, 0.1));
        runs.push(fake(k, 1, 0.70 + 0.001 * k as f64, 0.99, 1.0, 0.1));
    }
    runs[6].diverged = true; // draw 3's left side
    let stats = StudyStats::new(&grid, &runs);
    assert_eq!((stats.pairs, stats.pairs_used, stats.diverged), (4, 3, [1, 0]));
    assert_eq!(stats.warnings.len(), 1, "{:?}", stats.warnings);
    assert!(stats.warnings[0].starts_with("1 of 4 pairs had a side that diverged"), "{:?}", stats.warnings);
    let p = &stats.evaluations[0].paired[0];
    assert_eq!(p.difference.n, 3, "the draw whose only pair diverged has no mean");
    assert!(p.difference.excludes_zero());
    assert!(
        stats.evaluations[0].verdict.starts_with("SAM(rho=0.2)+SGD's OOD accuracy is higher"),
        "{}",
        stats.evaluations[0].verdict
    );
}

#[test]
fn a_grid_job_in_small_pieces_equals_the_whole_study() {
    for stop in [StopRule::Steps, StopRule::TrainLoss { target: 0.5, check_every: 4 }] {
        let mut spec = GridSpec::new(small(), 2, 2);
        spec.axes = vec![axis("lr", &["0.05", "0.3"]), axis("severity", &["0.3", "0.8"])];
        spec.stop = stop.clone();
        let grid = Grid::new(spec).unwrap();
        let whole = serde_json::to_string(&grid.run(None, |_, _| {})).unwrap();
        // Pieces of 1 and 7 steps, and the statistics a resample at a time.
        for piece in [1, 7] {
            let mut job = GridJob::new(grid.clone(), None).in_pieces(piece);
            let mut calls = 0;
            while !job.advance(&mut ()) {
                calls += 1;
                assert!((0.0..=1.0).contains(&job.progress()));
            }
            assert_eq!(job.counts(), (16, 16));
            // A piece trains at most `piece` steps (whole check intervals for the matched-loss rule).
            let trained: usize = job.runs().iter().map(|r| r.steps).sum();
            let per_call = match stop {
                StopRule::Steps => piece,
                StopRule::TrainLoss { check_every, .. } => piece.max(check_every),
            };
            assert!(calls >= trained / per_call, "{calls} calls for {trained} steps in pieces of {piece}");
            let mut stats = StatsJob::new(job.grid(), job.runs());
            let mut input = StatsInput { grid: job.grid(), runs: job.runs() };
            let mut resamples = 0;
            while !stats.advance(&mut input) {
                resamples += 1;
            }
            assert!(resamples >= 200, "one bootstrap resample per call, got {resamples} calls");
            let pieces = serde_json::to_string(&job.output_with(stats.finish())).unwrap();
            assert_eq!(pieces, whole, "{stop:?}, pieces of {piece}");
        }
    }
}

/// The page's grid study (`tests/web.rs`) must give this native JSON byte for
/// byte, with the page's measures and with the dense spectrum's.
/// `FLATMINIMA_UPDATE_FIXTURES=1` rewrites them (say why in the commit).
#[test]
fn the_identity_fixtures_are_what_the_core_computes_natively() {
    for (exact, name, fixture) in [
        (false, "study_grid_identity.json", study_identity::FIXTURE),
        (true, "study_grid_identity_exact.json", study_identity::FIXTURE_EXACT),
    ] {
        let out = Grid::new(study_identity::spec(exact)).unwrap().run(None, |_, _| {});
        let stats = out.stats.as_ref().unwrap();
        // Both outcomes of the matched-loss rule occur, so both code paths are pinned.
        let reached: Vec<bool> = out.runs.iter().filter_map(|r| r.reached_target).collect();
        assert!(reached.contains(&true) && reached.contains(&false), "{reached:?}");
        assert!(stats.evaluations[0].tau.iter().any(|t| t.mode == "matched"));
        // The page's measures: Lanczos lambda_max and the diagonal's exact trace; else the spectrum's.
        assert!(out.runs.iter().all(|r| r.sharpness.trace_exact && r.sharpness.lambda_max_exact == exact));
        // The page writes it through serde_json::Value (src/web/grid_study.rs).
        let text = serde_json::to_value(&out).unwrap().to_string();
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("FLATMINIMA_UPDATE_FIXTURES").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        assert_eq!(
            text,
            fixture.trim_end(),
            "{name}: rerun with FLATMINIMA_UPDATE_FIXTURES=1 if this change is intended"
        );
    }
}

/// The page's measures against the dense spectrum's on the same runs: the
/// same training, every loss-based measure equal, lambda_max by Lanczos within
/// 1e-9 of the exact one and the trace from the diagonal within 1e-12.
#[test]
fn the_page_s_measures_agree_with_the_dense_spectrum() {
    let fast = Grid::new(study_identity::spec(false)).unwrap().run(None, |_, _| {});
    let exact = Grid::new(study_identity::spec(true)).unwrap().run(None, |_, _| {});
    assert_eq!(fast.runs.len(), exact.runs.len());
    for (f, e) in fast.runs.iter().zip(&exact.runs) {
        assert_eq!((f.steps, f.train_loss, f.ood.clone()), (e.steps, e.train_loss, e.ood.clone()));
        let (f, e) = (&f.sharpness, &e.sharpness);
        assert_eq!(
            (f.rho_sharpness, f.adaptive_sharpness, f.average_sharpness),
            (e.rho_sharpness, e.adaptive_sharpness, e.average_sharpness)
        );
        assert!(
            (f.lambda_max - e.lambda_max).abs() <= 1e-9 * e.lambda_max.abs(),
            "{} vs {}",
            f.lambda_max,
            e.lambda_max
        );
        assert!((f.trace - e.trace).abs() <= 1e-12 * e.trace.abs().max(1.0), "{} vs {}", f.trace, e.trace);
        assert_eq!(f.trace_std_error, 0.0);
    }
}

/// The page's second worker hands its runs over as numbers: every run comes
/// back with the same bits (the JSON of both is the same bytes), NaN and
/// matched-loss flags included.
#[test]
fn runs_survive_the_trip_through_plain_numbers() {
    let out = Grid::new(study_identity::spec(false)).unwrap().run(None, |_, _| {});
    let e = out.evaluations.len();
    let mut numbers = Vec::new();
    for r in &out.runs {
        r.to_numbers(&mut numbers);
    }
    assert_eq!(numbers.len(), out.runs.len() * RunResult::numbers_len(e));
    let back: Vec<RunResult> =
        numbers.chunks_exact(RunResult::numbers_len(e)).map(|n| RunResult::from_numbers(n, e).unwrap()).collect();
    assert_eq!(serde_json::to_string(&back).unwrap(), serde_json::to_string(&out.runs).unwrap());
    let mut nan = out.runs[0].clone();
    (nan.train_loss, nan.sharpness.lambda_max, nan.diverged, nan.seed) = (f64::NAN, f64::NAN, true, u64::MAX - 5);
    let mut n = Vec::new();
    nan.to_numbers(&mut n);
    let again = RunResult::from_numbers(&n, e).unwrap();
    assert!(again.train_loss.is_nan() && again.sharpness.lambda_max.is_nan() && again.diverged);
    assert_eq!(again.seed, u64::MAX - 5);
    assert!(RunResult::from_numbers(&n[1..], e).is_err(), "a short run is refused");
}
