//! Sharpness measured again and again while a run trains, for the page's
//! sharpness panel and `metrics()`. A measurement is a
//! [`SharpnessJob`] with the quick settings, done a piece (one Hessian-vector
//! product, or one measure) per [`SharpnessTracker::advance`] call so that no
//! frame waits for a whole one; measurements get sparser as training goes on (about ten per decade of
//! steps), so the history stays short however long the run is. The dense
//! Hessian spectrum costs tens of ms, so it is computed only on request
//! (the page asks while paused).

use serde::Serialize;

use crate::config::SideConfig;
use crate::hessian::HessianOperator;
use crate::job::Job;
use crate::optim::OptimizerConfig;
use crate::sharpness::{sample_rows, SharpnessJob, SharpnessReport, SharpnessSettings};
use crate::train::Run;

/// The largest network whose dense spectrum the page computes. It takes one
/// frame (an eigen-decomposition cannot be split): 20-50 ms in the browser for
/// the 354-parameter reference net, about three times that at this size.
pub const PAGE_MAX_SPECTRUM_PARAMS: usize = 512;

/// Steps between measurements at the start of training.
const MIN_GAP: usize = 10;
/// Measurements kept; when full, every second one is dropped.
const CAPACITY: usize = 200;

/// One finished measurement.
#[derive(Clone, Debug, Serialize)]
pub struct SharpnessPoint {
    /// Training step at which the measurement started.
    pub step: usize,
    /// The learning rate at that step (for the 2 / lr line).
    pub lr: f64,
    /// Sharpness measures taken at that step.
    pub report: SharpnessReport,
}

/// The dense Hessian spectrum at one step, largest eigenvalue first.
#[derive(Clone, Debug, Serialize)]
pub struct Spectrum {
    /// Training step at which the spectrum was computed.
    pub step: usize,
    /// All eigenvalues of the Hessian of the training loss (f64), largest first.
    pub eigenvalues: Vec<f64>,
}

/// Measures sharpness of one run at intervals during training, a little per
/// frame, and keeps a thinned history for the page.
pub struct SharpnessTracker {
    settings: SharpnessSettings,
    /// Finished measurements, oldest first; thinned by half when full, so about
    /// ten per decade of steps remain.
    pub history: Vec<SharpnessPoint>,
    /// The measurement under way: (step, lr, job).
    job: Option<(usize, f64, SharpnessJob)>,
    next_due: usize,
    /// The last dense spectrum computed on request; `None` until the page asks.
    pub spectrum: Option<Spectrum>,
}

impl SharpnessTracker {
    /// A tracker with [`SharpnessSettings::quick`], the run's seed, and the
    /// worst-case radius `rho` (the SAM side's own, so that rho-sharpness is
    /// the quantity SAM minimises; adaptive sharpness uses 10 rho, as ASAM needs).
    pub fn new(seed: u64, rho: f64) -> Self {
        SharpnessTracker {
            settings: SharpnessSettings { seed, rho, adaptive_rho: 10.0 * rho, ..SharpnessSettings::quick() },
            history: Vec::new(),
            job: None,
            next_due: 0,
            spectrum: None,
        }
    }

    /// A measurement is under way, or one is due at the run's step. With
    /// `catch_up` (the page is paused, or the run is over) the current step is
    /// due whenever the newest measurement is older, whatever the schedule.
    pub fn has_work(&self, run: &Run, catch_up: bool) -> bool {
        let behind = catch_up && self.latest().is_none_or(|p| p.step != run.step);
        self.job.is_some() || (run.diverged.is_none() && (run.step >= self.next_due || behind))
    }

    /// One unit of work: starts a measurement of the run's current parameters
    /// if one is due (see [`Self::has_work`]), else computes the next measure
    /// of the one under way. Returns true when this call completed a measurement.
    pub fn advance(&mut self, run: &Run, catch_up: bool) -> bool {
        if self.job.is_none() {
            if !self.has_work(run, catch_up) {
                return false;
            }
            let job = SharpnessJob::new(&run.mlp, &run.params, &run.splits.train, self.settings.clone());
            self.job = Some((run.step, run.current_lr(), job));
            self.next_due = run.step + MIN_GAP.max(run.step / 10);
            return false;
        }
        let (_, _, job) = self.job.as_mut().expect("checked above");
        if !job.advance(&mut ()) {
            return false;
        }
        let (step, lr, job) = self.job.take().expect("checked above");
        if self.history.len() >= CAPACITY {
            let mut keep = false;
            self.history.retain(|_| {
                keep = !keep;
                keep
            });
        }
        self.history.push(SharpnessPoint { step, lr, report: job.into_report() });
        true
    }

    /// The settings every measurement uses (the quick budget, the run's seed and radius).
    pub fn settings(&self) -> &SharpnessSettings {
        &self.settings
    }

    /// Adds a measurement taken elsewhere at `step` (the page's rescaling
    /// measures the rescaled weights with [`Self::settings`]) and drops the one
    /// under way, which measured weights that are gone.
    pub fn record(&mut self, step: usize, lr: f64, report: SharpnessReport) {
        self.job = None;
        self.history.push(SharpnessPoint { step, lr, report });
    }

    /// The newest finished measurement.
    pub fn latest(&self) -> Option<&SharpnessPoint> {
        self.history.last()
    }

    /// Whether the spectrum is missing or older than the run's step (never for
    /// a diverged run or one too large for it, see [`spectrum_fits`]).
    pub fn spectrum_stale(&self, run: &Run) -> bool {
        run.diverged.is_none()
            && spectrum_fits(run.mlp.num_params())
            && self.spectrum.as_ref().is_none_or(|s| s.step != run.step)
    }

    /// The dense Hessian on the same points as the other measures, and its
    /// eigenvalues (nalgebra's symmetric eigen-solver): P Hessian-vector
    /// products and an O(P^3) decomposition, ~25 ms for the 354-parameter
    /// reference net natively.
    pub fn compute_spectrum(&mut self, run: &Run) {
        let (x, y) = sample_rows(&run.splits.train, self.settings.max_points, self.settings.seed);
        let mut op = HessianOperator::new(&run.mlp, &run.params, &x, &y);
        if let Some(eigenvalues) = op.dense_spectrum() {
            self.spectrum = Some(Spectrum { step: run.step, eigenvalues });
        }
    }
}

/// Whether the page computes the dense spectrum of a network with `params` parameters.
pub fn spectrum_fits(params: usize) -> bool {
    params <= PAGE_MAX_SPECTRUM_PARAMS
}

/// Which curvature an edge-of-stability threshold bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Curvature {
    /// lambda_max of the training loss's Hessian H (what the page plots).
    LambdaMax,
    /// lambda_max of the preconditioned Hessian P^-1 H, P being Adam's
    /// preconditioner (Cohen et al. 2022); see [`crate::hessian::preconditioned_lambda_max`].
    PreconditionedLambdaMax,
}

/// An optimiser's edge-of-stability threshold: the curvature above which its
/// steps are unstable on a quadratic, which full-batch training tends to reach
/// and hover at.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EdgeOfStability {
    /// The threshold.
    pub value: f64,
    /// Its formula, e.g. "(2+2β)/lr".
    pub label: String,
    /// Where it comes from, and any caveat.
    pub source: String,
    /// The curvature it bounds.
    pub curvature: Curvature,
}

/// The edge-of-stability threshold of a base optimiser at learning rate `lr`,
/// or `None` where no source gives one. Each is the instability point of the
/// optimiser's update on a quadratic with curvature λ:
/// - SGD (no momentum): λ > 2/lr (Cohen et al. 2021);
/// - SGD with heavy-ball momentum β as torch writes it (buf = β buf + (1-d) g,
///   w -= lr buf): λ > (2+2β)/((1-d) lr), (2+2β)/lr without dampening d
///   (Cohen et al. 2021, Appendix; the characteristic polynomial
///   z² - (1 + β - a) z + β with a = (1-d) lr λ has a root -1 at a = 2 + 2β);
/// - Nesterov (torch: w -= lr (g + β buf)): λ > (2+2β)/((1+2β) lr) (ibid.; the
///   polynomial z² - (1+β)(1-a) z + β(1-a), a = lr λ, has a root -1 at
///   a = (2+2β)/(1+2β));
/// - SGD's L2 weight decay wd adds wd to every curvature: the threshold on the
///   loss's λ_max is the above minus wd;
/// - Adam / AdamW: (2+2β1)/((1-β1) lr) (38/lr at β1 = 0.9) on the
///   preconditioned sharpness λ_max(P^-1 H), Cohen et al. 2022, "Adaptive
///   gradient methods at the edge of stability" (weight decay not included);
/// - RMSprop: none (no threshold in our sources for torch's RMSprop).
///
/// A SAM side gets its base optimiser's threshold, labelled as such: SAM's own
/// edge is lower and depends on the gradient norm (Long & Bartlett 2023).
pub fn edge_of_stability(optimizer: &OptimizerConfig, lr: f64) -> Option<EdgeOfStability> {
    if !(lr > 0.0 && lr.is_finite()) {
        return None;
    }
    let with_decay = |value: f64, label: String, wd: f64| {
        if wd > 0.0 {
            (value - wd, format!("{label} − wd"))
        } else {
            (value, label)
        }
    };
    let (value, label, source, curvature) = match *optimizer {
        OptimizerConfig::Sgd { momentum, dampening, weight_decay, nesterov, .. } => {
            let (value, label, source) = if momentum == 0.0 {
                (2.0 / lr, "2/lr".to_string(), "Cohen et al. 2021 (gradient descent)")
            } else if nesterov {
                let value = (2.0 + 2.0 * momentum) / ((1.0 + 2.0 * momentum) * lr);
                (value, "(2+2β)/((1+2β)lr)".to_string(), "Cohen et al. 2021 (Nesterov momentum)")
            } else if dampening == 0.0 {
                ((2.0 + 2.0 * momentum) / lr, "(2+2β)/lr".to_string(), "Cohen et al. 2021 (heavy-ball momentum)")
            } else {
                let value = (2.0 + 2.0 * momentum) / ((1.0 - dampening) * lr);
                let source = "Cohen et al. 2021 (heavy-ball momentum, step lr(1-d) with torch's dampening d)";
                (value, "(2+2β)/((1-d)lr)".to_string(), source)
            };
            let (value, label) = with_decay(value, label, weight_decay);
            (value, label, source.to_string(), Curvature::LambdaMax)
        }
        OptimizerConfig::Adam { betas, weight_decay, .. } | OptimizerConfig::AdamW { betas, weight_decay, .. } => {
            let b1 = betas.0;
            let value = (2.0 + 2.0 * b1) / ((1.0 - b1) * lr);
            let mut source = "Cohen et al. 2022 (Adam, on the preconditioned sharpness)".to_string();
            if weight_decay > 0.0 {
                source += "; weight decay not included";
            }
            (value, "(2+2β1)/((1-β1)lr)".to_string(), source, Curvature::PreconditionedLambdaMax)
        }
        OptimizerConfig::Rmsprop { .. } => return None,
    };
    Some(EdgeOfStability { value, label, source, curvature })
}

/// The thresholds to draw on a chart of λ_max for a side at learning rate
/// `lr`: its optimiser's [`edge_of_stability`] when that bounds λ_max itself,
/// else none (Adam's bounds the preconditioned sharpness; RMSprop has none).
/// (label, value) pairs; a SAM side's label says the threshold is its base's.
pub fn stability_thresholds(side: &SideConfig, lr: f64) -> Vec<(String, f64)> {
    side_edge_of_stability(&side.optimizer, side.sam.is_some(), lr)
        .filter(|e| e.curvature == Curvature::LambdaMax)
        .map(|e| (e.label, e.value))
        .into_iter()
        .collect()
}

/// [`edge_of_stability`] for a side whose base optimiser is `optimizer`, SAM-wrapped or not.
pub fn side_edge_of_stability(optimizer: &OptimizerConfig, sam: bool, lr: f64) -> Option<EdgeOfStability> {
    let mut e = edge_of_stability(optimizer, lr)?;
    if sam {
        e.label += " (base)";
        e.source += "; SAM's own edge is lower and depends on the gradient norm (Long & Bartlett 2023)";
    }
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunConfig;
    use crate::pair::Pair;
    use crate::sharpness::measure;

    fn pair() -> Pair {
        let mut config = RunConfig::default();
        config.data.n_train = 64;
        Pair::new(config).unwrap()
    }

    #[test]
    fn measures_on_schedule_a_piece_per_call() {
        let mut pair = pair();
        let mut tracker = SharpnessTracker::new(pair.config.seed, crate::config::DEFAULT_RHO);
        assert!(tracker.has_work(&pair.left, false), "due at step 0");
        let mut calls = 0;
        while !tracker.advance(&pair.left, false) {
            calls += 1;
        }
        let first = tracker.latest().unwrap();
        // One call starts the job, then one per product of lambda_max and of the
        // trace and one per other measure (the last call finishes it).
        let products = first.report.lambda_max_iterations + tracker.settings.hutchinson_samples;
        assert_eq!(calls, 1 + products + 4 - 1);
        assert_eq!(first.step, 0);
        // The same numbers as one uninterrupted measurement.
        let direct = measure(&pair.left.mlp, &pair.left.params, &pair.splits.train, &tracker.settings);
        assert_eq!(first.report, direct);
        assert!(!tracker.has_work(&pair.left, false), "nothing due until step 10");
        pair.train(9);
        assert!(!tracker.has_work(&pair.left, false));
        pair.train(1);
        assert!(tracker.has_work(&pair.left, false));
        // Later gaps are a tenth of the step.
        pair.train(990);
        while !tracker.advance(&pair.left, false) {}
        assert_eq!(tracker.latest().unwrap().step, 1000);
        pair.train(99);
        assert!(!tracker.has_work(&pair.left, false));
        pair.train(1);
        assert!(tracker.has_work(&pair.left, false));
        // Paused between scheduled measurements: catch up with the current step.
        while !tracker.advance(&pair.left, false) {}
        pair.train(7);
        assert!(!tracker.has_work(&pair.left, false) && tracker.has_work(&pair.left, true));
        while !tracker.advance(&pair.left, true) {}
        assert_eq!(tracker.latest().unwrap().step, 1107);
        assert!(!tracker.has_work(&pair.left, true));
    }

    #[test]
    fn history_stays_bounded() {
        let pair = pair();
        let mut tracker = SharpnessTracker::new(1, crate::config::DEFAULT_RHO);
        let point = SharpnessPoint {
            step: 0,
            lr: 0.1,
            report: measure(&pair.left.mlp, &pair.left.params, &pair.splits.train, &SharpnessSettings::quick()),
        };
        tracker.history = vec![point; CAPACITY];
        tracker.next_due = 0;
        while !tracker.advance(&pair.left, false) {}
        assert_eq!(tracker.history.len(), CAPACITY / 2 + 1);
    }

    #[test]
    fn spectrum_on_request_matches_the_largest_eigenvalue() {
        let mut pair = pair();
        pair.train(200);
        let mut tracker = SharpnessTracker::new(pair.config.seed, crate::config::DEFAULT_RHO);
        assert!(tracker.spectrum_stale(&pair.right));
        tracker.compute_spectrum(&pair.right);
        assert!(!tracker.spectrum_stale(&pair.right));
        while !tracker.advance(&pair.right, false) {}
        let s = tracker.spectrum.as_ref().unwrap();
        assert_eq!(s.eigenvalues.len(), pair.right.mlp.num_params());
        let power = tracker.latest().unwrap().report.lambda_max;
        let exact = s.eigenvalues[0];
        assert!((power - exact).abs() < 0.05 * exact.abs(), "power iteration {power} vs dense {exact}");
    }

    #[test]
    fn networks_too_large_for_a_dense_spectrum_never_ask_for_one() {
        let mut config = RunConfig::default();
        config.data.n_train = 32;
        config.model.hidden = vec![64, 64]; // 4482 parameters
        let pair = Pair::new(config).unwrap();
        assert!(!spectrum_fits(pair.left.mlp.num_params()));
        let tracker = SharpnessTracker::new(1, crate::config::DEFAULT_RHO);
        assert!(!tracker.spectrum_stale(&pair.left), "the page must not build a 4482 x 4482 Hessian in a frame");
        // Nor does a measurement that asks for the spectrum (above MAX_DENSE_PARAMS).
        let settings = SharpnessSettings { spectrum: true, max_points: 16, ..SharpnessSettings::quick() };
        let report = measure(&pair.left.mlp, &pair.left.params, &pair.splits.train, &settings);
        assert_eq!(report.spectrum, None);
        assert!(report.lambda_max.is_finite(), "the product-based measures still run");
    }

    #[test]
    fn thresholds() {
        let config = RunConfig::default();
        let t = stability_thresholds(&config.left, 0.1);
        assert_eq!(t.len(), 1, "only the threshold that applies: {t:?}");
        assert_eq!(t[0].0, "(2+2β)/lr");
        assert!((t[0].1 - 38.0).abs() < 1e-12, "momentum 0.9: (2 + 1.8) / 0.1");
        assert_eq!(stability_thresholds(&config.right, 0.1)[0].0, "(2+2β)/lr (base)");
        let adam = SideConfig { optimizer: OptimizerConfig::with_kind("adam", 0.1).unwrap(), ..Default::default() };
        assert!(stability_thresholds(&adam, 0.1).is_empty(), "Adam's bounds P^-1 H, not the plotted H");
    }

    /// Iterates an optimiser on f(w) = λ w² / 2 (one parameter) and says whether it blows up.
    fn unstable(optimizer: &OptimizerConfig, lambda: f64) -> bool {
        let mut opt = crate::optim::Optimizer::new(optimizer.clone(), 1);
        let mut w = [1.0];
        for _ in 0..4000 {
            let g = [lambda * w[0]];
            opt.step(&mut w, &g, optimizer.lr());
        }
        w[0].abs() > 1.0
    }

    #[test]
    fn each_sgd_threshold_is_where_torchs_update_becomes_unstable_on_a_quadratic() {
        let lr = 0.1;
        let sgd = |momentum, dampening, weight_decay, nesterov| OptimizerConfig::Sgd {
            lr,
            momentum,
            dampening,
            weight_decay,
            nesterov,
        };
        for optimizer in [
            sgd(0.0, 0.0, 0.0, false),
            sgd(0.9, 0.0, 0.0, false),
            sgd(0.5, 0.0, 0.0, false),
            sgd(0.9, 0.0, 0.0, true),
            sgd(0.7, 0.0, 0.0, true),
            sgd(0.9, 0.5, 0.0, false),
            sgd(0.9, 0.0, 0.3, false),
            sgd(0.0, 0.0, 0.3, false),
        ] {
            let e = edge_of_stability(&optimizer, lr).unwrap();
            assert_eq!(e.curvature, Curvature::LambdaMax);
            assert!(!unstable(&optimizer, 0.99 * e.value), "{optimizer:?}: unstable below {}", e.value);
            assert!(unstable(&optimizer, 1.01 * e.value), "{optimizer:?}: stable above {}", e.value);
        }
    }

    #[test]
    fn adams_threshold_is_38_over_lr_on_the_preconditioned_sharpness_and_rmsprop_has_none() {
        let adam = OptimizerConfig::with_kind("adam", 0.01).unwrap();
        let e = edge_of_stability(&adam, 0.01).unwrap();
        assert!((e.value - 3800.0).abs() < 1e-9, "38 / lr");
        assert_eq!(e.curvature, Curvature::PreconditionedLambdaMax);
        assert!(e.source.contains("Cohen et al. 2022"));
        assert!(edge_of_stability(&OptimizerConfig::with_kind("rmsprop", 0.01).unwrap(), 0.01).is_none());
        assert!(edge_of_stability(&adam, 0.0).is_none());
    }
}
