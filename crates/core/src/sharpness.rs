//! Sharpness measures of the mean training loss around a solution w (methods.md):
//! lambda_max, Hessian trace, Keskar's epsilon-sharpness, worst-case rho-sharpness
//! (SAM's own), adaptive sharpness, average-case sharpness, and Dinh et al.'s
//! layer rescaling, which leaves a ReLU net's function unchanged but not its
//! plain sharpness.
//!
//! The worst-case measures are maximised by projected gradient ascent in the
//! coordinates u of a perturbation d = s * u (element-wise), where u lies in the
//! unit L2 ball or the unit box and s fixes the geometry:
//!
//! | measure    | region | s_i                | definition                                         |
//! |------------|--------|--------------------|----------------------------------------------------|
//! | Keskar eps | box    | eps (abs(w_i) + 1) | 100 (max L(w+d) - L(w)) / (1 + L(w))               |
//! | rho        | ball   | rho                | max over norm(d) <= rho of L(w+d) - L(w)           |
//! | adaptive   | ball   | rho abs(w_i)       | max over norm(d / abs(w)) <= rho of L(w+d) - L(w)  |
//!
//! The ascent starts at the linear maximiser of the gradient at w (for rho that
//! is exactly SAM's ascent point), takes normalised steps (sign steps in the
//! box) of length 2 in u-units, halves the step whenever the loss does not
//! increase, and returns the largest loss seen: a lower bound of the true max
//! that is exact for quadratics after a couple of steps. Scaling u by s makes
//! adaptive sharpness exactly invariant under Dinh's rescaling: the iterates in
//! u are the same for both parametrisations.

use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::config::DEFAULT_RHO;
use crate::data::Dataset;
use crate::hessian::{spectrum, DenseHessian, HessianOperator, Hutchinson, Lanczos, PowerIteration, MAX_DENSE_PARAMS};
use crate::job::{self, Job};
use crate::model::{Mlp, Workspace};
use crate::rng::Rng;

/// How much work a [`SharpnessReport`] may take. `Default` is thorough (for the
/// CLI and final numbers); [`SharpnessSettings::quick`] fits a live page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharpnessSettings {
    /// Use at most this many training points (a seeded subset); 0 = all.
    pub max_points: usize,
    /// Power iteration for lambda_max (PyHessian: 100 iterations, relative change 1e-3).
    pub power_iterations: usize,
    /// Power iteration stops once lambda_max changes by less than this fraction between iterations.
    pub power_tolerance: f64,
    /// Rademacher vectors for Hutchinson's trace estimate.
    pub hutchinson_samples: usize,
    /// Keskar et al.'s box size (1e-3 in the paper; 5e-4 also used).
    pub keskar_eps: f64,
    /// Radius of the worst-case L2 ball (SAM's rho).
    pub rho: f64,
    /// Radius for adaptive sharpness, measured in units of abs(w) (ASAM needs ~10x SAM's rho).
    pub adaptive_rho: f64,
    /// Projected gradient-ascent steps for the three worst-case measures
    /// (Andriushchenko et al. used 20).
    pub ascent_steps: usize,
    /// Std of the Gaussian perturbations for average-case sharpness.
    pub average_sigma: f64,
    /// Gaussian samples (drawn as antithetic pairs +d, -d, so rounded up to even).
    pub average_samples: usize,
    /// Also build the dense Hessian and its full spectrum (exact lambda_max and trace).
    pub spectrum: bool,
    /// lambda_max by Lanczos with this many Hessian-vector products (the
    /// algebraically largest eigenvalue; 20 give the reference net's to ~1e-15)
    /// instead of power iteration; 0 for power iteration.
    #[serde(skip_serializing_if = "is_zero")]
    pub lanczos_steps: usize,
    /// The exact trace from the Hessian's diagonal
    /// ([`HessianOperator::diagonal`], a fraction of a dense Hessian's cost)
    /// instead of Hutchinson's estimate.
    #[serde(skip_serializing_if = "is_false")]
    pub exact_trace: bool,
    /// Seeds the subset, the power-iteration start, the Rademacher and Gaussian draws.
    pub seed: u64,
}

impl Default for SharpnessSettings {
    fn default() -> Self {
        SharpnessSettings {
            max_points: 512,
            power_iterations: 100,
            power_tolerance: 1e-3,
            hutchinson_samples: 32,
            keskar_eps: 1e-3,
            rho: DEFAULT_RHO,
            adaptive_rho: 10.0 * DEFAULT_RHO,
            ascent_steps: 10,
            average_sigma: 0.01,
            average_samples: 32,
            spectrum: true,
            lanczos_steps: 0,
            exact_trace: false,
            seed: 0,
        }
    }
}

// Settings written before `lanczos_steps` and `exact_trace` existed keep their JSON.
fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl SharpnessSettings {
    /// A budget for recomputing every few training steps in the page: a few ms
    /// natively for the 2-16-16-2 net on 256 points (see crates/core/benches/landscape.rs).
    pub fn quick() -> Self {
        SharpnessSettings {
            max_points: 256,
            power_iterations: 20,
            hutchinson_samples: 8,
            ascent_steps: 3,
            average_samples: 8,
            spectrum: false,
            ..Default::default()
        }
    }
}

/// Every measure for one solution, as the page and the CLI show them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharpnessReport {
    /// Training points the measures used.
    pub points: usize,
    /// Mean training loss L(w) on those points, and its gradient norm.
    pub loss: f64,
    /// Euclidean norm of the gradient of that loss (near 0 at a minimum).
    pub grad_norm: f64,
    /// Dominant Hessian eigenvalue by power iteration (lambda_max at a minimum),
    /// or the largest one by Lanczos when the settings' `lanczos_steps` > 0.
    pub lambda_max: f64,
    /// Hessian-vector products lambda_max took (power iterations before it
    /// converged or the limit was hit, or Lanczos steps).
    pub lambda_max_iterations: usize,
    /// The Hessian trace: exact (the sum of the dense spectrum, standard error 0)
    /// when the spectrum was computed, else Hutchinson's estimate and its standard error.
    pub trace: f64,
    /// Standard error of `trace`: 0 when exact, else that of Hutchinson's mean.
    pub trace_std_error: f64,
    /// Whether `trace` is the exact one (from the dense spectrum).
    #[serde(default)]
    pub trace_exact: bool,
    /// Keskar et al.'s epsilon-sharpness (a percentage of 1 + L).
    pub eps_sharpness: f64,
    /// max over norm(d) <= rho of L(w + d) - L(w).
    pub rho_sharpness: f64,
    /// max over norm(d / abs(w)) <= adaptive_rho of L(w + d) - L(w).
    pub adaptive_sharpness: f64,
    /// E over d ~ N(0, sigma^2 I) of L(w + d) - L(w), and the standard error of that mean.
    pub average_sharpness: f64,
    /// Standard error of `average_sharpness` over its random draws.
    pub average_std_error: f64,
    /// The full Hessian spectrum, largest first, when the settings asked for it
    /// and the network has at most [`crate::hessian::MAX_DENSE_PARAMS`] parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spectrum: Option<Vec<f64>>,
    /// The settings the measures were taken with, so a report can be reproduced.
    pub settings: SharpnessSettings,
}

impl SharpnessReport {
    /// lambda_max and trace from the dense spectrum, when it was computed.
    pub fn exact_lambda_max(&self) -> Option<f64> {
        self.spectrum.as_ref().and_then(|s| s.first().copied())
    }

    /// The exact Hessian trace (sum of all eigenvalues), when the dense spectrum was computed.
    pub fn exact_trace(&self) -> Option<f64> {
        self.spectrum.as_ref().map(|s| s.iter().sum())
    }
}

/// The rows a measure runs on: all of `data`, or a seeded subset of
/// `max_points` of them (kept in their original order).
pub fn sample_rows(data: &Dataset, max_points: usize, seed: u64) -> (Vec<f64>, Vec<usize>) {
    let n = data.len();
    let chosen: Vec<usize> = if max_points > 0 && max_points < n {
        Rng::derive(seed, "sharpness-subset").subset_in_order(n, max_points)
    } else {
        (0..n).collect()
    };
    let x = chosen.iter().flat_map(|&i| data.points[i]).collect();
    let y = chosen.iter().map(|&i| data.labels[i]).collect();
    (x, y)
}

/// The mean loss of `mlp` on fixed rows. All measures evaluate through
/// `loss_and_grad`, so base and perturbed losses round the same way.
pub struct Objective<'a> {
    /// The network whose loss is measured; the weights are passed in as `w`.
    pub mlp: &'a Mlp,
    /// Inputs, row-major, two f64 coordinates per point.
    pub x: &'a [f64],
    /// Class label of each row, one per point in `x`.
    pub y: &'a [usize],
    ws: Workspace,
    grad: Vec<f64>,
}

impl<'a> Objective<'a> {
    /// An objective for `mlp` on rows `x` with labels `y`.
    pub fn new(mlp: &'a Mlp, x: &'a [f64], y: &'a [usize]) -> Self {
        Objective { mlp, x, y, ws: Workspace::new(), grad: vec![0.0; mlp.num_params()] }
    }

    /// Mean loss at weights `w`.
    pub fn loss(&mut self, w: &[f64]) -> f64 {
        self.mlp.loss_and_grad(w, self.x, self.y, &mut self.grad, &mut self.ws)
    }

    /// Mean loss at weights `w`; writes its gradient into `grad`.
    pub fn loss_and_grad(&mut self, w: &[f64], grad: &mut [f64]) -> f64 {
        self.mlp.loss_and_grad(w, self.x, self.y, grad, &mut self.ws)
    }
}

/// The feasible set of the perturbation coordinates u (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Region {
    /// norm(u)_2 <= 1
    Ball,
    /// abs(u_i) <= 1
    Box,
}

/// The largest loss found in { w + s * u : u in region } and L(w).
fn max_loss(f: &mut Objective, w: &[f64], s: &[f64], region: Region, steps: usize, rng: &mut Rng) -> (f64, f64) {
    let n = w.len();
    let mut g = vec![0.0; n];
    let base = f.loss_and_grad(w, &mut g);
    let mut point = vec![0.0; n];
    let mut eval = |u: &[f64], grad: &mut [f64], f: &mut Objective| {
        for (((p, &wi), &si), &ui) in point.iter_mut().zip(w).zip(s).zip(u) {
            *p = wi + si * ui;
        }
        f.loss_and_grad(&point, grad)
    };
    // Direction of steepest ascent in u for the gradient g (its linear maximiser on the region).
    let ascent = |g: &[f64], out: &mut [f64], rng: &mut Rng| {
        for ((o, &gi), &si) in out.iter_mut().zip(g).zip(s) {
            *o = gi * si;
        }
        match region {
            Region::Ball => {
                let size = libm::sqrt(out.iter().map(|x| x * x).sum::<f64>());
                if size > 0.0 {
                    out.iter_mut().for_each(|x| *x /= size);
                } else {
                    // A stationary point: any direction is as good; draw one (seeded).
                    out.iter_mut().for_each(|x| *x = rng.normal());
                    let size = libm::sqrt(out.iter().map(|x| x * x).sum::<f64>());
                    out.iter_mut().for_each(|x| *x /= size);
                }
            }
            Region::Box => out.iter_mut().for_each(|x| {
                *x = if *x > 0.0 {
                    1.0
                } else if *x < 0.0 {
                    -1.0
                } else {
                    rng.sign()
                }
            }),
        }
    };
    let project = |u: &mut [f64]| match region {
        Region::Ball => {
            let size = libm::sqrt(u.iter().map(|x| x * x).sum::<f64>());
            if size > 1.0 {
                u.iter_mut().for_each(|x| *x /= size);
            }
        }
        Region::Box => u.iter_mut().for_each(|x| *x = x.clamp(-1.0, 1.0)),
    };
    let mut u = vec![0.0; n];
    ascent(&g, &mut u, rng);
    let mut best = eval(&u, &mut g, f);
    let (mut candidate, mut direction, mut g_candidate) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut step = 2.0;
    for _ in 0..steps {
        ascent(&g, &mut direction, rng);
        for ((c, &ui), &di) in candidate.iter_mut().zip(&u).zip(&direction) {
            *c = ui + step * di;
        }
        project(&mut candidate);
        let loss = eval(&candidate, &mut g_candidate, f);
        if loss > best {
            best = loss;
            std::mem::swap(&mut u, &mut candidate);
            std::mem::swap(&mut g, &mut g_candidate);
        } else {
            step *= 0.5;
        }
    }
    (base, best.max(base))
}

/// Keskar et al. (2017): 100 (max over abs(d_i) <= eps (abs(w_i) + 1) of L(w + d) - L(w)) / (1 + L(w)).
pub fn eps_sharpness(f: &mut Objective, w: &[f64], eps: f64, steps: usize, rng: &mut Rng) -> f64 {
    let s: Vec<f64> = w.iter().map(|wi| eps * (wi.abs() + 1.0)).collect();
    let (base, max) = max_loss(f, w, &s, Region::Box, steps, rng);
    100.0 * (max - base) / (1.0 + base)
}

/// Worst-case sharpness in the L2 ball of radius rho (SAM's objective minus the loss).
pub fn rho_sharpness(f: &mut Objective, w: &[f64], rho: f64, steps: usize, rng: &mut Rng) -> f64 {
    let s = vec![rho; w.len()];
    let (base, max) = max_loss(f, w, &s, Region::Ball, steps, rng);
    max - base
}

/// Adaptive worst-case sharpness (Andriushchenko et al. 2023; ASAM's ball):
/// max over norm(d / abs(w))_2 <= rho of L(w + d) - L(w). Parameters that are exactly 0 stay put.
pub fn adaptive_sharpness(f: &mut Objective, w: &[f64], rho: f64, steps: usize, rng: &mut Rng) -> f64 {
    let s: Vec<f64> = w.iter().map(|wi| rho * wi.abs()).collect();
    let (base, max) = max_loss(f, w, &s, Region::Ball, steps, rng);
    max - base
}

/// Average-case sharpness E over d ~ N(0, sigma^2 I) of L(w + d) - L(w), over
/// `samples` seeded draws taken as antithetic pairs (+d, -d), which cancels the
/// odd-order terms of the Taylor series exactly. Returns (mean, standard error).
pub fn average_sharpness(f: &mut Objective, w: &[f64], sigma: f64, samples: usize, rng: &mut Rng) -> (f64, f64) {
    let base = f.loss(w);
    let pairs = samples.div_ceil(2).max(1);
    let mut plus = vec![0.0; w.len()];
    let mut minus = vec![0.0; w.len()];
    let values: Vec<f64> = (0..pairs)
        .map(|_| {
            for ((p, m), &wi) in plus.iter_mut().zip(minus.iter_mut()).zip(w) {
                let d = sigma * rng.normal();
                *p = wi + d;
                *m = wi - d;
            }
            0.5 * (f.loss(&plus) + f.loss(&minus)) - base
        })
        .collect();
    crate::stats::mean_and_std_error(&values)
}

/// Dinh et al. (2017): multiply layer `layer`'s W and b by `factor` and the next
/// layer's W by 1 / `factor`. For ReLU (positively homogeneous) hidden units the
/// network computes exactly the same function, yet lambda_max and the other
/// plain sharpness measures change (roughly like factor^2 in one direction);
/// adaptive sharpness does not.
pub fn rescale_layers(mlp: &Mlp, params: &[f64], layer: usize, factor: f64) -> Result<Vec<f64>, String> {
    if mlp.activation != Activation::Relu {
        return Err(format!("rescaling preserves the function only for ReLU nets, not {}", mlp.activation.name()));
    }
    if layer + 1 >= mlp.layers.len() {
        return Err(format!("layer {layer} has no next layer to compensate (the net has {} layers)", mlp.layers.len()));
    }
    if !(factor > 0.0 && factor.is_finite()) {
        return Err(format!("the factor must be positive and finite, got {factor}"));
    }
    let mut out = params.to_vec();
    let this = mlp.layers[layer];
    for p in &mut out[this.weight_offset..this.bias_offset + this.fan_out] {
        *p *= factor;
    }
    let next = mlp.layers[layer + 1];
    for p in &mut out[next.weight_offset..next.bias_offset] {
        *p /= factor;
    }
    Ok(out)
}

/// What Dinh et al.'s rescaling did to one solution: the function (the
/// largest change of any logit on the measured points, which is rounding only)
/// and every sharpness measure before and after. lambda_max, the trace and the
/// other plain measures move; adaptive sharpness does not, by its definition:
/// with w' = D w and d' = D d (D the rescaling's diagonal), norm(d' / abs(w'))
/// = norm(d / abs(w)) and L'(w' + d') = L(w + d), so the two maxima are over
/// the same set of losses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RescaleComparison {
    /// The layer multiplied by `alpha` (0 = the first hidden layer); the next one is divided by it.
    pub layer: usize,
    /// The factor.
    pub alpha: f64,
    /// max over the measured points and classes of abs(logit after - logit before).
    pub max_logit_change: f64,
    /// Every measure at the original parameters.
    pub before: SharpnessReport,
    /// Every measure at the rescaled parameters (same settings and seed).
    pub after: SharpnessReport,
}

/// Rescales `params` with [`rescale_layers`] and measures both solutions with
/// the same settings; returns the rescaled parameters and the comparison.
pub fn compare_rescaled(
    mlp: &Mlp,
    params: &[f64],
    train: &Dataset,
    layer: usize,
    alpha: f64,
    settings: &SharpnessSettings,
) -> Result<(Vec<f64>, RescaleComparison), String> {
    let rescaled = rescale_layers(mlp, params, layer, alpha)?;
    let (x, _) = sample_rows(train, settings.max_points, settings.seed);
    let mut ws = Workspace::new();
    let before = mlp.forward(params, &x, &mut ws).to_vec();
    let after = mlp.forward(&rescaled, &x, &mut ws);
    let max_logit_change = before.iter().zip(after).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    let comparison = RescaleComparison {
        layer,
        alpha,
        max_logit_change,
        before: measure(mlp, params, train, settings),
        after: measure(mlp, &rescaled, train, settings),
    };
    Ok((rescaled, comparison))
}

/// Which measure a [`SharpnessJob`] computes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    LambdaMax,
    Trace,
    Eps,
    Rho,
    Adaptive,
    Average,
    /// The dense Hessian (one piece), then its eigenvalues (another): each
    /// tens of ms for the reference net in wasm, so two pieces, not one.
    Dense,
    Spectrum,
    Done,
}

/// Computes a [`SharpnessReport`] a piece per [`SharpnessJob::advance`] call,
/// so a page can spread it over frames (and drop the job to cancel): one
/// Hessian-vector product of lambda_max or of the trace, or one whole other
/// measure. Costs for the 2-16-16-2 net on 256 points natively: a product
/// ~0.05 ms, the ascent measures (steps + 2) gradients, the average
/// (samples + 1) losses, each about a millisecond; the spectrum tens of ms.
/// For a 6 x 64 net (21122 parameters) a product takes ~3 ms and the other
/// measures 15 to 30 ms.
pub struct SharpnessJob {
    mlp: Mlp,
    params: Vec<f64>,
    x: Vec<f64>,
    y: Vec<usize>,
    settings: SharpnessSettings,
    op: HessianOperator,
    stage: Stage,
    /// lambda_max and the trace in progress (a product per call).
    power: Option<PowerIteration>,
    lanczos: Option<Lanczos>,
    trace: Option<Hutchinson>,
    /// The dense Hessian under way (a unit's block per call), then complete
    /// until its eigenvalues are taken (None above `MAX_DENSE_PARAMS`).
    dense_builder: Option<DenseHessian>,
    dense: Option<nalgebra::DMatrix<f64>>,
    report: SharpnessReport,
}

impl SharpnessJob {
    /// Prepares the data subset and the Hessian operator (one forward/backward pass).
    pub fn new(mlp: &Mlp, params: &[f64], train: &Dataset, settings: SharpnessSettings) -> SharpnessJob {
        let (x, y) = sample_rows(train, settings.max_points, settings.seed);
        let op = HessianOperator::new(mlp, params, &x, &y);
        let report = SharpnessReport {
            points: y.len(),
            loss: op.loss(),
            grad_norm: libm::sqrt(op.grad().iter().map(|g| g * g).sum()),
            lambda_max: f64::NAN,
            lambda_max_iterations: 0,
            trace: f64::NAN,
            trace_std_error: f64::NAN,
            trace_exact: false,
            eps_sharpness: f64::NAN,
            rho_sharpness: f64::NAN,
            adaptive_sharpness: f64::NAN,
            average_sharpness: f64::NAN,
            average_std_error: f64::NAN,
            spectrum: None,
            settings: settings.clone(),
        };
        SharpnessJob {
            mlp: mlp.clone(),
            params: params.to_vec(),
            x,
            y,
            settings,
            op,
            stage: Stage::LambdaMax,
            power: None,
            lanczos: None,
            trace: None,
            dense_builder: None,
            dense: None,
            report,
        }
    }

    /// The report so far (measures not computed yet are NaN).
    pub fn report(&self) -> &SharpnessReport {
        &self.report
    }

    /// Takes the finished (or partial) report out of the job.
    pub fn into_report(self) -> SharpnessReport {
        self.report
    }

    /// Runs every remaining measure.
    pub fn finish(mut self) -> SharpnessReport {
        job::finish(&mut self, &mut ());
        self.report
    }
}

/// A piece is one Hessian-vector product of lambda_max or the trace, or one
/// whole other measure (see [`SharpnessJob`]).
impl Job for SharpnessJob {
    fn advance(&mut self, _: &mut ()) -> bool {
        let s = &self.settings;
        let seed = s.seed;
        let mut f = Objective::new(&self.mlp, &self.x, &self.y);
        let w = &self.params;
        let r = &mut self.report;
        self.stage = match self.stage {
            Stage::LambdaMax if s.lanczos_steps > 0 => {
                let n = self.op.num_params();
                let lanczos = self.lanczos.get_or_insert_with(|| {
                    Lanczos::new(n, 1, s.lanczos_steps, &mut Rng::derive(seed, "sharpness-lanczos"))
                });
                if !lanczos.advance(&mut self.op) {
                    return false;
                }
                let e = self.lanczos.take().expect("just stepped").finish();
                r.lambda_max = e.values[0];
                r.lambda_max_iterations = e.hvps;
                Stage::Trace
            }
            Stage::LambdaMax => {
                let n = self.op.num_params();
                let power = self.power.get_or_insert_with(|| {
                    let mut rng = Rng::derive(seed, "sharpness-power");
                    PowerIteration::new(n, &mut rng, s.power_iterations, s.power_tolerance)
                });
                if !power.advance(&mut self.op) {
                    return false;
                }
                let e = self.power.take().expect("just stepped").finish();
                r.lambda_max = e.value;
                r.lambda_max_iterations = e.iterations;
                Stage::Trace
            }
            Stage::Trace if s.exact_trace => {
                (r.trace, r.trace_std_error, r.trace_exact) = (self.op.exact_trace(), 0.0, true);
                Stage::Eps
            }
            Stage::Trace => {
                let n = self.op.num_params();
                let trace = self.trace.get_or_insert_with(|| {
                    Hutchinson::new(n, s.hutchinson_samples, Rng::derive(seed, "sharpness-trace"))
                });
                if !trace.advance(&mut self.op) {
                    return false;
                }
                let t = self.trace.take().expect("just stepped").finish();
                r.trace = t.value;
                r.trace_std_error = t.std_error;
                Stage::Eps
            }
            Stage::Eps => {
                let mut rng = Rng::derive(seed, "sharpness-eps");
                r.eps_sharpness = eps_sharpness(&mut f, w, s.keskar_eps, s.ascent_steps, &mut rng);
                Stage::Rho
            }
            Stage::Rho => {
                let mut rng = Rng::derive(seed, "sharpness-rho");
                r.rho_sharpness = rho_sharpness(&mut f, w, s.rho, s.ascent_steps, &mut rng);
                Stage::Adaptive
            }
            Stage::Adaptive => {
                let mut rng = Rng::derive(seed, "sharpness-adaptive");
                r.adaptive_sharpness = adaptive_sharpness(&mut f, w, s.adaptive_rho, s.ascent_steps, &mut rng);
                Stage::Average
            }
            Stage::Average => {
                let mut rng = Rng::derive(seed, "sharpness-average");
                let (mean, se) = average_sharpness(&mut f, w, s.average_sigma, s.average_samples, &mut rng);
                r.average_sharpness = mean;
                r.average_std_error = se;
                if s.spectrum {
                    Stage::Dense
                } else {
                    Stage::Done
                }
            }
            Stage::Dense => {
                // As `HessianOperator::dense_spectrum`, a unit's block per call, then the eigenvalues.
                if self.op.num_params() <= MAX_DENSE_PARAMS {
                    let builder = self.dense_builder.get_or_insert_with(|| DenseHessian::new(&self.op));
                    if !builder.step(&mut self.op) {
                        return false;
                    }
                    let builder = self.dense_builder.take().expect("just stepped");
                    self.dense = Some(builder.finish(&self.op));
                }
                Stage::Spectrum
            }
            Stage::Spectrum => {
                // An exact number beats an estimate of it: report the exact trace, summed
                // from the dense Hessian's diagonal rather than from the eigenvalues, whose
                // solver may round differently on another platform (the sums agree to
                // rounding; the diagonal is the same bits natively and in wasm).
                if let Some(h) = &self.dense {
                    let trace = (0..h.nrows()).map(|i| h[(i, i)]).sum();
                    (r.trace, r.trace_std_error, r.trace_exact) = (trace, 0.0, true);
                }
                r.spectrum = self.dense.take().map(|h| spectrum(&h));
                Stage::Done
            }
            Stage::Done => Stage::Done,
        };
        self.is_done()
    }

    /// Fraction of the measures done, in [0, 1].
    fn progress(&self) -> f64 {
        let total = if self.settings.spectrum { 8.0 } else { 6.0 };
        let within = match self.stage {
            Stage::LambdaMax => {
                self.power.as_ref().map_or(0.0, Job::progress).max(self.lanczos.as_ref().map_or(0.0, Job::progress))
            }
            Stage::Trace => self.trace.as_ref().map_or(0.0, Job::progress),
            Stage::Dense => self.dense_builder.as_ref().map_or(0.0, |d| d.progress(&self.op)),
            _ => 0.0,
        };
        ((self.stage as usize as f64 + within.min(0.99)) / total).min(1.0)
    }

    /// Whether every measure has been taken, so the report is final.
    fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }
}

/// All measures for one solution on (a subset of) its training set.
pub fn measure(mlp: &Mlp, params: &[f64], train: &Dataset, settings: &SharpnessSettings) -> SharpnessReport {
    SharpnessJob::new(mlp, params, train, settings.clone()).finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hessian::{eigen_decomposition, hutchinson_trace, power_iteration, spectrum};
    use crate::model::ModelConfig;

    /// f(t) = mean over the rows of softmax cross-entropy for a logit gap t = z0 - z1,
    /// with a fraction `p` of the rows labelled 0: -(p ln s(t) + (1 - p) ln s(-t)).
    fn gap_loss(t: f64, p: f64) -> f64 {
        let log_sigmoid = |x: f64| -(1.0 + (-x).exp()).ln();
        -(p * log_sigmoid(t) + (1.0 - p) * log_sigmoid(-t))
    }

    /// A linear 2-class model on one input point repeated with labels 0, 0, 0, 1,
    /// at its minimum-norm minimiser. The loss depends on w only through the logit
    /// gap t = v . w with v = (x_bar, -x_bar) in the flat layout, so
    /// H = c v v^T with c = p (1 - p) = 3/16, and every measure has a closed form
    /// in terms of the scalar function gap_loss.
    struct Quadratic {
        mlp: Mlp,
        w: Vec<f64>,
        x: Vec<f64>,
        y: Vec<usize>,
        v: Vec<f64>,
        t_star: f64,
        p: f64,
    }

    fn quadratic() -> Quadratic {
        let mlp = Mlp::new(2, &ModelConfig { hidden: vec![], ..Default::default() }, 2);
        let xb = [0.6, -0.8, 1.0];
        // Layout [W00, W01, W10, W11, b0, b1]: d(z0 - z1)/dw.
        let v = vec![xb[0], xb[1], -xb[0], -xb[1], xb[2], -xb[2]];
        let p: f64 = 0.75;
        let t_star = (p / (1.0 - p)).ln();
        let vv: f64 = v.iter().map(|a| a * a).sum();
        let w: Vec<f64> = v.iter().map(|a| t_star * a / vv).collect();
        let x = [0.6, -0.8].repeat(4);
        Quadratic { mlp, w, x, y: vec![0, 0, 0, 1], v, t_star, p }
    }

    #[test]
    fn linear_model_measures_equal_their_closed_forms() {
        let q = quadratic();
        let c = q.p * (1.0 - q.p);
        let vv: f64 = q.v.iter().map(|a| a * a).sum();
        let base = gap_loss(q.t_star, q.p);
        // On each set below, t - t* = v . d ranges over [-a, a], and L - L(w) is largest at
        // one of the two ends, which differ by the cubic term (about a / 3 relative).
        let ends = |a: f64| [gap_loss(q.t_star + a, q.p) - base, gap_loss(q.t_star - a, q.p) - base];

        let mut op = HessianOperator::new(&q.mlp, &q.w, &q.x, &q.y);
        assert!((op.loss() - base).abs() < 1e-15);
        assert!(op.grad().iter().all(|g| g.abs() < 1e-15), "w is the minimiser");
        // Spectrum: one eigenvalue c |v|^2 = 0.75, the rest 0; eigenvector v / |v|.
        let (values, vectors) = eigen_decomposition(&op.dense());
        assert!((values[0] - c * vv).abs() < 1e-14, "{values:?}");
        assert!(values[1..].iter().all(|l| l.abs() < 1e-14));
        let cos: f64 = vectors[0].iter().zip(&q.v).map(|(a, b)| a * b).sum::<f64>() / vv.sqrt();
        assert!((cos.abs() - 1.0).abs() < 1e-12);
        let pw = power_iteration(&mut op, &mut Rng::new(1), 100, 1e-3);
        assert!((pw.value - c * vv).abs() < 1e-12, "rank one: power iteration is exact after one step");
        // Hutchinson is exact for a rank-one H only in expectation; its draws are (v . r)^2 c.
        let tr = hutchinson_trace(&mut op, 2000, &mut Rng::new(2));
        assert!((tr.value - c * vv).abs() < 4.0 * tr.std_error, "{tr:?}");

        let mut f = Objective::new(&q.mlp, &q.x, &q.y);
        let mut rng = Rng::new(3);
        // The gradient at w is parallel to v (or 0), so the ascent starts on the line of v and
        // ends exactly at one of the two ends (which one depends on the sign of a rounding-level
        // gradient; both are local maxima): we require one of them to 1e-6 relative. The two
        // differ by >= 1e-4 relative here; L(w + d) - L(w) is as small as 2e-8, so the rounding
        // of L (1e-16) alone costs 5e-9 relative.
        let close = |got: f64, [e1, e2]: [f64; 2], what: &str| {
            let err = (got - e1).abs().min((got - e2).abs()) / e1.max(e2);
            assert!(err < 1e-6, "{what}: {got} vs closed forms {e1}, {e2} (relative error {err})");
        };
        // rho: t - t* = v . d ranges over [-rho |v|, rho |v|].
        let rho = 1e-3;
        close(rho_sharpness(&mut f, &q.w, rho, 10, &mut rng), ends(rho * vv.sqrt()), "rho-sharpness");
        // Keskar: v . d over the box abs(d_i) <= eps (abs(w_i) + 1) ranges over +-sum abs(v_i) eps (abs(w_i) + 1).
        let eps = 1e-3;
        let a: f64 = q.v.iter().zip(&q.w).map(|(vi, wi)| vi.abs() * eps * (wi.abs() + 1.0)).sum();
        let want = ends(a).map(|e| 100.0 * e / (1.0 + base));
        close(eps_sharpness(&mut f, &q.w, eps, 10, &mut rng), want, "eps-sharpness");
        // Adaptive: d = rho abs(w) u with |u| <= 1, so v . d ranges over +-rho |v abs(w)|.
        let a = rho * q.v.iter().zip(&q.w).map(|(vi, wi)| (vi * wi).powi(2)).sum::<f64>().sqrt();
        close(adaptive_sharpness(&mut f, &q.w, rho, 10, &mut rng), ends(a), "adaptive sharpness");
        // and to second order all three are c a^2 / 2 (checked for rho: the Hessian's own number)
        let second_order = 0.5 * c * vv * rho * rho;
        assert!((rho_sharpness(&mut f, &q.w, rho, 10, &mut rng) - second_order).abs() < 2e-3 * second_order);
        // Average: v . d ~ N(0, sigma^2 |v|^2); antithetic pairs cancel odd orders, so the
        // mean is c sigma^2 |v|^2 / 2 (= sigma^2 tr H / 2) up to O(sigma^4). Monte Carlo
        // error of 20000 pairs: sqrt(2 / 20000) = 1% relative; we allow 5%.
        let sigma = 1e-3;
        let (mean, se) = average_sharpness(&mut f, &q.w, sigma, 40_000, &mut rng);
        let want = 0.5 * c * sigma * sigma * vv;
        assert!((mean - want).abs() < 0.05 * want, "average {mean} vs {want}");
        assert!(se > 0.005 * want && se < 0.02 * want, "standard error {se}");
    }

    #[test]
    fn linear_model_hessian_is_the_kronecker_formula() {
        // H = mean over x of (diag p - p p^T) (x) [x, 1][x, 1]^T, mapped to the flat layout
        // (W[k][i] at k * inputs + i, b[k] after all weights); 3 classes, random w and x.
        let mlp = Mlp::new(2, &ModelConfig { hidden: vec![], ..Default::default() }, 3);
        let mut rng = Rng::new(4);
        let w: Vec<f64> = (0..mlp.num_params()).map(|_| rng.normal()).collect();
        let rows = 5;
        let x: Vec<f64> = (0..rows * 2).map(|_| rng.normal()).collect();
        let y: Vec<usize> = (0..rows).map(|_| rng.below(3)).collect();
        let index = |k: usize, i: usize| if i < 2 { k * 2 + i } else { 6 + k };
        let mut want = vec![0.0; 81];
        for r in 0..rows {
            let xb = [x[2 * r], x[2 * r + 1], 1.0];
            let z: Vec<f64> = (0..3).map(|k| w[6 + k] + w[2 * k] * xb[0] + w[2 * k + 1] * xb[1]).collect();
            let norm: f64 = z.iter().map(|v| v.exp()).sum();
            let p: Vec<f64> = z.iter().map(|v| v.exp() / norm).collect();
            for (k, kk, i, ii) in (0..81).map(|n| (n / 27, n / 9 % 3, n / 3 % 3, n % 3)) {
                let a = if k == kk { p[k] } else { 0.0 } - p[k] * p[kk];
                want[index(k, i) * 9 + index(kk, ii)] += a * xb[i] * xb[ii] / rows as f64;
            }
        }
        let h = HessianOperator::new(&mlp, &w, &x, &y).dense();
        for a in 0..9 {
            for b in 0..9 {
                assert!(
                    (h[(a, b)] - want[a * 9 + b]).abs() < 1e-14,
                    "H[{a},{b}] = {} vs {}",
                    h[(a, b)],
                    want[a * 9 + b]
                );
            }
        }
    }

    #[test]
    fn dinh_rescaling_keeps_the_function_moves_lambda_max_and_keeps_adaptive_sharpness() {
        let config =
            ModelConfig { hidden: vec![8, 8], activation: Activation::Relu, label_smoothing: 0.0, dropout: vec![] };
        let mlp = Mlp::new(2, &config, 2);
        let mut rng = Rng::new(5);
        let w = mlp.init_params(&mut rng);
        let rows = 40;
        let x: Vec<f64> = (0..rows * 2).map(|_| rng.normal()).collect();
        let y: Vec<usize> = (0..rows).map(|r| usize::from(x[2 * r] * x[2 * r + 1] > 0.0)).collect();
        let w2 = rescale_layers(&mlp, &w, 0, 4.0).unwrap();
        // 1. Same function: identical logits up to rounding.
        let mut ws = Workspace::new();
        let before = mlp.forward(&w, &x, &mut ws).to_vec();
        let after = mlp.forward(&w2, &x, &mut ws).to_vec();
        for (a, b) in before.iter().zip(&after) {
            assert!((a - b).abs() < 1e-12 * (1.0 + a.abs()), "{a} vs {b}");
        }
        // 2. lambda_max moves (exactly, from the dense spectrum): here by more than 2x.
        let l1 = spectrum(&HessianOperator::new(&mlp, &w, &x, &y).dense())[0];
        let l2 = spectrum(&HessianOperator::new(&mlp, &w2, &x, &y).dense())[0];
        assert!(l2 > 2.0 * l1 || l1 > 2.0 * l2, "lambda_max {l1} -> {l2}");
        // 3. Adaptive sharpness stays: the ascent runs the same iterates in u (1e-9 relative).
        let mut f = Objective::new(&mlp, &x, &y);
        let a1 = adaptive_sharpness(&mut f, &w, 0.5, 10, &mut Rng::new(6));
        let a2 = adaptive_sharpness(&mut f, &w2, 0.5, 10, &mut Rng::new(6));
        assert!(a1 > 0.0 && (a1 - a2).abs() <= 1e-9 * a1, "adaptive {a1} -> {a2}");
        // while the plain worst case does move
        let r1 = rho_sharpness(&mut f, &w, 0.1, 10, &mut Rng::new(7));
        let r2 = rho_sharpness(&mut f, &w2, 0.1, 10, &mut Rng::new(7));
        assert!((r1 - r2).abs() > 0.1 * r1.max(r2), "rho-sharpness {r1} -> {r2}");
        // Only ReLU nets can be rescaled without changing the function.
        let tanh = Mlp::new(2, &ModelConfig::default(), 2);
        assert!(rescale_layers(&tanh, &tanh.init_params(&mut rng), 0, 2.0).is_err());
        assert!(rescale_layers(&mlp, &w, 2, 2.0).is_err(), "the output layer has no next layer");
    }

    #[test]
    fn the_rescaled_hessian_is_the_congruence_predicted_by_the_chain_rule() {
        // With w' = D w (D = alpha on layer l's W and b, 1/alpha on layer l+1's W, 1 elsewhere)
        // the rescaled net's loss is L'(w') = L(D^-1 w'), so H'(w') = D^-1 H(w) D^-1:
        // every entry, hence the trace sum_i H_ii / D_i^2, is predicted from the original net's
        // dense Hessian. Checked entry by entry against the dense Hessian of the rescaled net,
        // for a two-layer (one hidden layer) ReLU net and each layer of a deeper one.
        for (hidden, layer, alpha) in [(vec![6], 0, 10.0), (vec![5, 4], 0, 0.2), (vec![5, 4], 1, 3.0)] {
            let config = ModelConfig { hidden, activation: Activation::Relu, label_smoothing: 0.0, dropout: vec![] };
            let mlp = Mlp::new(2, &config, 2);
            let mut rng = Rng::new(9);
            let w = mlp.init_params(&mut rng);
            let rows = 30;
            let x: Vec<f64> = (0..rows * 2).map(|_| rng.normal()).collect();
            let y: Vec<usize> = (0..rows).map(|r| usize::from(x[2 * r] > 0.3 * x[2 * r + 1])).collect();
            let w2 = rescale_layers(&mlp, &w, layer, alpha).unwrap();
            let mut d = vec![1.0; w.len()];
            let (this, next) = (mlp.layers[layer], mlp.layers[layer + 1]);
            d[this.weight_offset..this.bias_offset + this.fan_out].fill(alpha);
            d[next.weight_offset..next.bias_offset].fill(1.0 / alpha);
            let h = HessianOperator::new(&mlp, &w, &x, &y).dense();
            let h2 = HessianOperator::new(&mlp, &w2, &x, &y).dense();
            let scale = h.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for i in 0..w.len() {
                for j in 0..w.len() {
                    let predicted = h[(i, j)] / (d[i] * d[j]);
                    assert!(
                        (h2[(i, j)] - predicted).abs() <= 1e-9 * (scale / (d[i] * d[j])).max(scale),
                        "H'[{i},{j}] = {} vs {predicted}",
                        h2[(i, j)]
                    );
                }
            }
            let trace2: f64 = (0..w.len()).map(|i| h2[(i, i)]).sum();
            let predicted: f64 = (0..w.len()).map(|i| h[(i, i)] / (d[i] * d[i])).sum();
            assert!((trace2 - predicted).abs() <= 1e-9 * predicted.abs(), "trace {trace2} vs {predicted}");
            // lambda_max as predicted: the top eigenvalue of D^-1 H D^-1.
            let mut congruent = h.clone();
            for i in 0..w.len() {
                for j in 0..w.len() {
                    congruent[(i, j)] /= d[i] * d[j];
                }
            }
            let (l_pred, l2) = (spectrum(&congruent)[0], spectrum(&h2)[0]);
            assert!((l2 - l_pred).abs() <= 1e-9 * l_pred, "lambda_max {l2} vs predicted {l_pred}");
            assert!((l2 - spectrum(&h)[0]).abs() > 0.1 * l2, "and it moved");
        }
    }

    #[test]
    fn compare_rescaled_reports_the_same_function_and_the_same_adaptive_sharpness() {
        let config =
            ModelConfig { hidden: vec![8], activation: Activation::Relu, label_smoothing: 0.0, dropout: vec![] };
        let mlp = Mlp::new(2, &config, 2);
        let mut rng = Rng::new(4);
        let w = mlp.init_params(&mut rng);
        let points: Vec<[f64; 2]> = (0..60).map(|_| [rng.normal(), rng.normal()]).collect();
        let labels = points.iter().map(|p| usize::from(p[0] * p[1] > 0.0)).collect();
        let train = Dataset { points, labels, classes: 2 };
        let settings = SharpnessSettings::quick();
        let (w2, c) = compare_rescaled(&mlp, &w, &train, 0, 10.0, &settings).unwrap();
        assert_eq!(w2, rescale_layers(&mlp, &w, 0, 10.0).unwrap());
        assert!(c.max_logit_change <= 1e-12, "the function moved by {}", c.max_logit_change);
        assert!((c.before.loss - c.after.loss).abs() <= 1e-12);
        let (a, b) = (c.before.adaptive_sharpness, c.after.adaptive_sharpness);
        assert!(a > 0.0 && (a - b).abs() <= 1e-9 * a, "adaptive sharpness {a} -> {b}");
        assert!(c.after.trace > 10.0 * c.before.trace, "trace {} -> {}", c.before.trace, c.after.trace);
        assert!(compare_rescaled(&mlp, &w, &train, 1, 10.0, &settings).is_err(), "no layer after the output");
    }

    #[test]
    fn job_runs_piece_by_piece_and_equals_measure() {
        let q = quadratic();
        let data = Dataset { points: vec![[0.6, -0.8]; 4], labels: q.y.clone(), classes: 2 };
        let settings = SharpnessSettings { seed: 3, ..SharpnessSettings::quick() };
        let mut job = SharpnessJob::new(&q.mlp, &q.w, &data, settings.clone());
        let mut last = job.progress();
        assert_eq!(last, 0.0);
        assert!(job.report().lambda_max.is_nan());
        let mut calls = 0;
        while !job.advance(&mut ()) {
            assert!(job.progress() > last);
            last = job.progress();
            calls += 1;
        }
        assert_eq!(job.progress(), 1.0);
        let report = job.into_report();
        // A call per product of lambda_max and of the trace, one per other measure.
        assert_eq!(calls + 1, report.lambda_max_iterations + settings.hutchinson_samples + 4);
        assert_eq!(report, measure(&q.mlp, &q.w, &data, &settings), "deterministic for a seed");
        // Bit for bit what the one-call functions give with the same streams.
        let mut op = HessianOperator::new(&q.mlp, &q.w, data.flat_points(), &data.labels);
        let power = power_iteration(&mut op, &mut Rng::derive(3, "sharpness-power"), 20, settings.power_tolerance);
        assert_eq!((report.lambda_max, report.lambda_max_iterations), (power.value, power.iterations));
        let trace = hutchinson_trace(&mut op, settings.hutchinson_samples, &mut Rng::derive(3, "sharpness-trace"));
        assert_eq!((report.trace, report.trace_std_error), (trace.value, trace.std_error));
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<SharpnessReport>(&json).unwrap(), report);
    }

    #[test]
    fn the_trace_is_exact_where_the_spectrum_was_computed() {
        let q = quadratic();
        let data = Dataset { points: vec![[0.6, -0.8]; 4], labels: q.y.clone(), classes: 2 };
        let quick = SharpnessSettings { seed: 3, ..SharpnessSettings::quick() };
        let estimate = measure(&q.mlp, &q.w, &data, &quick);
        assert!(!estimate.trace_exact && estimate.trace_std_error > 0.0, "Hutchinson without the spectrum");
        let exact = measure(&q.mlp, &q.w, &data, &SharpnessSettings { spectrum: true, ..quick });
        // Rank one: tr H = c |v|^2 = 0.75 exactly (see the closed-form test).
        let vv: f64 = q.v.iter().map(|a| a * a).sum();
        assert!((exact.trace - 0.1875 * vv).abs() < 1e-13, "{}", exact.trace);
        assert_eq!((exact.trace_std_error, exact.trace_exact), (0.0, true));
        let sum = exact.exact_trace().unwrap();
        assert!(
            (exact.trace - sum).abs() <= 1e-12 * sum.abs().max(1.0),
            "diagonal {} vs eigenvalues {sum}",
            exact.trace
        );
        assert_ne!(exact.trace, estimate.trace);
    }

    #[test]
    fn subsets_are_seeded_and_bounded() {
        let points: Vec<[f64; 2]> = (0..50).map(|i| [i as f64, 0.0]).collect();
        let data = Dataset { points, labels: vec![0; 50], classes: 2 };
        let (x, y) = sample_rows(&data, 10, 1);
        assert_eq!((x.len(), y.len()), (20, 10));
        assert_eq!(sample_rows(&data, 10, 1), (x.clone(), y));
        assert_ne!(sample_rows(&data, 10, 2).0, x);
        assert_eq!(sample_rows(&data, 0, 1).0.len(), 100, "0 means all");
    }
}
