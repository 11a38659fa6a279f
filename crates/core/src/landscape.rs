//! Loss-landscape slices (Li et al. 2018, methods.md): 1D curves and 2D surfaces
//! of the mean loss through parameter space, evaluated on the train, ID and OOD
//! sets, and training trajectories projected onto the surface's plane.
//!
//! Directions:
//! - Random, filter-normalised: a seeded Gaussian draw, each row of each W
//!   rescaled to the norm of the same row of w, bias directions zero.
//! - Hessian: the top eigenvector(s) of the training-loss Hessian (unit norm).
//! - PCA: the first two principal components of a trajectory's checkpoints
//!   minus the final parameters (orthonormal), with explained variance.
//! - Interpolation: w(t) = (1 - t) w1 + t w2 between two solutions.
//!
//! What a pair shares. Both sides of a [`crate::pair::Pair`] use the same
//! random draw (same seed, same purpose string), so their random slices are
//! comparable; filter normalisation is then relative to each side's own
//! weights (that is the point of it: it removes the scale difference between
//! the two solutions). Hessian and PCA directions are per side by nature (each
//! side's own curvature and path). The interpolation line is shared.
//!
//! Surfaces are computed progressively by a [`SurfaceJob`] (a few grid cells
//! or rows per frame; drop it to cancel). Each grid cell costs one forward
//! pass over every chosen set: ~N * P multiply-adds plus N * hidden activations.

use std::ops::Range;
use std::sync::Arc;

use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Splits};
use crate::hessian::{top_eigenpairs, HessianOperator, Lanczos};
use crate::job::{self, Job};
use crate::model::{Mlp, Workspace};
use crate::rng::Rng;
use crate::train::Checkpoints;

/// Lanczos steps used for Hessian directions: enough for the top two to many digits.
pub const LANCZOS_STEPS: usize = 40;

/// Which of a run's data sets a slice is evaluated on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The training set the run learned from.
    Train,
    /// A held-out set from the training distribution (in-distribution).
    Id,
    /// A held-out set from the shifted distribution (out-of-distribution).
    Ood,
}

impl Split {
    /// All three sets, in the order train, ID, OOD.
    pub const ALL: [Split; 3] = [Split::Train, Split::Id, Split::Ood];

    /// The data set this split names in a run's `splits`.
    pub fn dataset(self, splits: &Splits) -> &Dataset {
        match self {
            Split::Train => &splits.train,
            Split::Id => &splits.id_test,
            Split::Ood => &splits.ood_test,
        }
    }

    /// Lowercase name (`train`, `id`, `ood`), as in JSON and the page.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Id => "id",
            Split::Ood => "ood",
        }
    }
}

/// How a slice's directions were chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectionKind {
    /// Seeded Gaussian directions, filter-normalised to the weights.
    Random,
    /// The top Hessian eigenvectors at the solution (the sharpest directions).
    Hessian,
    /// Principal components of the training trajectory's checkpoints.
    Pca,
    /// The straight line from one side's solution to the other's.
    Interpolation,
}

/// The raw seeded Gaussian draw for random direction `index` (0, 1, ...): the
/// part both sides of a pair share. Same seed, same numbers, natively and in wasm.
pub fn random_draw(num_params: usize, seed: u64, index: usize) -> Vec<f64> {
    let mut rng = Rng::derive(seed, &format!("landscape-direction-{index}"));
    (0..num_params).map(|_| rng.normal()).collect()
}

/// Filter normalisation for dense layers (Li et al.): every row of each W in
/// `direction` gets the norm of the same row of `params`; bias entries become 0.
pub fn filter_normalize(mlp: &Mlp, direction: &mut [f64], params: &[f64]) {
    for layer in &mlp.layers {
        let fi = layer.fan_in;
        for j in 0..layer.fan_out {
            let row = layer.weight_offset + j * fi..layer.weight_offset + (j + 1) * fi;
            let w_norm = libm::sqrt(params[row.clone()].iter().map(|x| x * x).sum());
            let d_norm = libm::sqrt(direction[row.clone()].iter().map(|x| x * x).sum());
            let scale = w_norm / (d_norm + 1e-10);
            direction[row].iter_mut().for_each(|d| *d *= scale);
        }
        direction[layer.bias_offset..layer.bias_offset + layer.fan_out].fill(0.0);
    }
}

/// Random direction `index`, filter-normalised to `params`.
pub fn filter_normalized_direction(mlp: &Mlp, params: &[f64], seed: u64, index: usize) -> Vec<f64> {
    let mut d = random_draw(params.len(), seed, index);
    filter_normalize(mlp, &mut d, params);
    d
}

/// `n` evenly spaced values from `lo` to `hi` inclusive (n >= 2), computed as
/// lo + (hi - lo) i / (n - 1) so that round values such as 0 and 1 come out exact.
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if n < 2 {
        return vec![lo];
    }
    (0..n).map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64).collect()
}

/// A line through parameter space.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// How the direction was chosen.
    pub kind: DirectionKind,
    /// The point at t = 0 (a solution's weights).
    pub origin: Vec<f64>,
    /// The direction: the point at t is `origin + t * direction` (see `end` for interpolation lines).
    pub direction: Vec<f64>,
    /// For Hessian lines: the eigenvalue of the direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eigenvalue: Option<f64>,
    /// For interpolation lines: the second solution (t = 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Vec<f64>>,
}

impl Line {
    /// Through `params` along filter-normalised random direction 0 of `seed`.
    pub fn random(mlp: &Mlp, params: &[f64], seed: u64) -> Line {
        let direction = filter_normalized_direction(mlp, params, seed, 0);
        Line { kind: DirectionKind::Random, origin: params.to_vec(), direction, eigenvalue: None, end: None }
    }

    /// Through the operator's point along its top Hessian eigenvector (unit norm).
    pub fn hessian(op: &mut HessianOperator, seed: u64) -> Line {
        let top = top_eigenpairs(op, 1, LANCZOS_STEPS, &mut Rng::derive(seed, "landscape-lanczos"));
        Line {
            kind: DirectionKind::Hessian,
            origin: op.params().to_vec(),
            direction: top.vectors[0].clone(),
            eigenvalue: Some(top.values[0]),
            end: None,
        }
    }

    /// From `w1` (t = 0) to `w2` (t = 1).
    pub fn interpolation(w1: &[f64], w2: &[f64]) -> Line {
        let direction = w1.iter().zip(w2).map(|(a, b)| b - a).collect();
        Line {
            kind: DirectionKind::Interpolation,
            origin: w1.to_vec(),
            direction,
            eigenvalue: None,
            end: Some(w2.to_vec()),
        }
    }

    /// The point at `t`: origin + t direction, or (1 - t) w1 + t w2 for
    /// interpolation, so that t = 0 and t = 1 give the two solutions bit for bit.
    pub fn point(&self, t: f64, out: &mut [f64]) {
        match &self.end {
            Some(end) => {
                for ((o, &a), &b) in out.iter_mut().zip(&self.origin).zip(end) {
                    *o = (1.0 - t) * a + t * b;
                }
            }
            None => {
                for ((o, &w), &d) in out.iter_mut().zip(&self.origin).zip(&self.direction) {
                    *o = w + t * d;
                }
            }
        }
    }
}

/// Losses along a line on each set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// How the line's direction was chosen.
    pub kind: DirectionKind,
    /// Positions t along the line where the loss was evaluated.
    pub t: Vec<f64>,
    /// Mean loss on the training set at each t.
    pub train: Vec<f64>,
    /// Mean loss on the in-distribution held-out set at each t.
    pub id: Vec<f64>,
    /// Mean loss on the out-of-distribution set at each t.
    pub ood: Vec<f64>,
}

/// Mean losses along `line` at every `t`, on train, ID and OOD. Cheap for
/// these nets (41 points x 3 sets of ~500 rows: a few ms natively).
pub fn curve(mlp: &Mlp, splits: &Splits, line: &Line, t: &[f64]) -> Curve {
    let mut ws = Workspace::new();
    let mut point = vec![0.0; line.origin.len()];
    let mut out = Curve { kind: line.kind, t: t.to_vec(), train: vec![], id: vec![], ood: vec![] };
    for &ti in t {
        line.point(ti, &mut point);
        for split in Split::ALL {
            let d = split.dataset(splits);
            let loss = mlp.evaluate(&point, d.flat_points(), &d.labels, &mut ws).0;
            match split {
                Split::Train => out.train.push(loss),
                Split::Id => out.id.push(loss),
                Split::Ood => out.ood.push(loss),
            }
        }
    }
    out
}

/// The default t values: [-1, 1] for random and Hessian lines, [-0.5, 1.5] for interpolation; 41 points.
pub fn default_t(kind: DirectionKind) -> Vec<f64> {
    match kind {
        DirectionKind::Interpolation => linspace(-0.5, 1.5, 41),
        _ => linspace(-1.0, 1.0, 41),
    }
}

/// A plane through parameter space: origin + a d1 + b d2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plane {
    /// How the two directions were chosen.
    pub kind: DirectionKind,
    // A diverged run's plane holds NaN, which JSON writes as null: read back as NaN.
    /// The point at a = b = 0 (a solution's weights).
    #[serde(deserialize_with = "crate::nan_as_null::vec")]
    pub origin: Vec<f64>,
    /// First direction (the horizontal axis, a).
    #[serde(deserialize_with = "crate::nan_as_null::vec")]
    pub d1: Vec<f64>,
    /// Second direction (the vertical axis, b).
    #[serde(deserialize_with = "crate::nan_as_null::vec")]
    pub d2: Vec<f64>,
    /// PCA planes: the fraction of the trajectory's variance along d1 and d2.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::nan_as_null::option_pair")]
    pub explained_variance: Option<[f64; 2]>,
    /// Hessian planes: the eigenvalues of d1 and d2.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::nan_as_null::option_pair")]
    pub eigenvalues: Option<[f64; 2]>,
}

impl Plane {
    /// Filter-normalised random directions 0 and 1 of `seed` around `params`.
    pub fn random(mlp: &Mlp, params: &[f64], seed: u64) -> Plane {
        Plane {
            kind: DirectionKind::Random,
            origin: params.to_vec(),
            d1: filter_normalized_direction(mlp, params, seed, 0),
            d2: filter_normalized_direction(mlp, params, seed, 1),
            explained_variance: None,
            eigenvalues: None,
        }
    }

    /// The top two Hessian eigenvectors at the operator's point (unit norm, orthogonal).
    pub fn hessian(op: &mut HessianOperator, seed: u64) -> Plane {
        let search = Plane::hessian_search(op, seed);
        Plane::from_hessian_search(op, search)
    }

    /// The Lanczos run behind [`Plane::hessian`], to step through a product at a
    /// time (the page spreads it over frames); then [`Plane::from_hessian_search`].
    pub fn hessian_search(op: &HessianOperator, seed: u64) -> Lanczos {
        Lanczos::new(op.num_params(), 2, LANCZOS_STEPS, &mut Rng::derive(seed, "landscape-lanczos"))
    }

    /// The plane of a [`Plane::hessian_search`] on `op`, taking any products it has left.
    pub fn from_hessian_search(op: &mut HessianOperator, mut search: Lanczos) -> Plane {
        job::finish(&mut search, op);
        let top = search.finish();
        let mut vectors = top.vectors.into_iter();
        let d1 = vectors.next().expect("at least one eigenvector");
        let d2 = vectors.next().unwrap_or_else(|| vec![0.0; d1.len()]);
        Plane {
            kind: DirectionKind::Hessian,
            origin: op.params().to_vec(),
            d1,
            d2,
            explained_variance: None,
            eigenvalues: Some([top.values[0], *top.values.get(1).unwrap_or(&0.0)]),
        }
    }

    /// The PCA plane of a trajectory (Li et al.): principal components of the
    /// centred vectors (checkpoint - origin), `origin` usually the final
    /// parameters. None if the checkpoints do not span two dimensions.
    pub fn pca(origin: &[f64], checkpoints: &[Vec<f64>]) -> Option<Plane> {
        let n = checkpoints.len();
        let p = origin.len();
        if n < 3 {
            return None;
        }
        let mut m = DMatrix::<f64>::zeros(n, p);
        for (i, c) in checkpoints.iter().enumerate() {
            for j in 0..p {
                m[(i, j)] = c[j] - origin[j];
            }
        }
        // Centre the rows, as sklearn's PCA (which Li et al. use) does.
        for j in 0..p {
            let mean = m.column(j).mean();
            m.column_mut(j).add_scalar_mut(-mean);
        }
        // n is small (snapshots), so take the eigen-decomposition of the n x n Gram matrix.
        let gram = &m * m.transpose();
        let eig = SymmetricEigen::new(gram);
        let order = crate::stats::largest_first(eig.eigenvalues.as_slice());
        let total: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0)).sum();
        let (v1, v2) = (eig.eigenvalues[order[0]], eig.eigenvalues[order[1]]);
        if total.is_nan() || total <= 0.0 || v2 <= 1e-12 * v1 {
            return None;
        }
        let direction = |k: usize| -> Vec<f64> {
            let u = eig.eigenvectors.column(k);
            let mut d: Vec<f64> = (0..p).map(|j| m.column(j).dot(&u)).collect();
            let s = 1.0 / libm::sqrt(d.iter().map(|x| x * x).sum());
            d.iter_mut().for_each(|x| *x *= s);
            crate::hessian::canonical_sign(&mut d);
            d
        };
        Some(Plane {
            kind: DirectionKind::Pca,
            origin: origin.to_vec(),
            d1: direction(order[0]),
            d2: direction(order[1]),
            explained_variance: Some([v1 / total, v2 / total]),
            eigenvalues: None,
        })
    }

    /// origin + a d1 + b d2
    pub fn point(&self, a: f64, b: f64, out: &mut [f64]) {
        for (((o, &w), &x), &y) in out.iter_mut().zip(&self.origin).zip(&self.d1).zip(&self.d2) {
            *o = w + a * x + b * y;
        }
    }

    /// Plane coordinates (a, b) of the point of the plane nearest to `point`
    /// (least squares: the directions need not be orthogonal), and the distance
    /// from `point` to the plane.
    pub fn project(&self, point: &[f64]) -> ([f64; 2], f64) {
        let diff: Vec<f64> = point.iter().zip(&self.origin).map(|(p, o)| p - o).collect();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let (g11, g12, g22) = (dot(&self.d1, &self.d1), dot(&self.d1, &self.d2), dot(&self.d2, &self.d2));
        let (r1, r2) = (dot(&self.d1, &diff), dot(&self.d2, &diff));
        let det = g11 * g22 - g12 * g12;
        let (a, b) = if det.abs() > 1e-300 {
            ((g22 * r1 - g12 * r2) / det, (g11 * r2 - g12 * r1) / det)
        } else if g11 > 0.0 {
            (r1 / g11, 0.0)
        } else {
            (0.0, 0.0)
        };
        let residual: f64 =
            diff.iter().zip(self.d1.iter().zip(&self.d2)).map(|(d, (x, y))| (d - a * x - b * y).powi(2)).sum();
        ([a, b], libm::sqrt(residual))
    }
}

/// Checkpoints projected onto a plane (for the trajectory overlay).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// Training step of each checkpoint.
    pub steps: Vec<usize>,
    /// Each checkpoint's (a, b) coordinates in the plane.
    pub coords: Vec<[f64; 2]>,
    /// Distance of each checkpoint from the plane (how faithful the 2D picture is).
    pub off_plane: Vec<f64>,
    /// SAM sides: where SAM evaluated its gradient (w + e), projected.
    pub perturbed: Vec<[f64; 2]>,
}

/// Projects a run's checkpoints (and SAM's perturbed points) onto `plane`.
pub fn project_trajectory(plane: &Plane, checkpoints: &Checkpoints) -> Trajectory {
    let (coords, off_plane) = checkpoints.params.iter().map(|p| plane.project(p)).unzip();
    let perturbed = checkpoints.perturbed.iter().map(|p| plane.project(p).0).collect();
    Trajectory { steps: checkpoints.steps.clone(), coords, off_plane, perturbed }
}

/// At most `max_points` points of `data` (0 = all), a seeded subset in the original order.
pub fn subset(data: &Dataset, max_points: usize, seed: u64, split: Split) -> Dataset {
    if max_points == 0 || max_points >= data.len() {
        return data.clone();
    }
    let chosen =
        Rng::derive(seed, &format!("landscape-subset-{}", split.name())).subset_in_order(data.len(), max_points);
    Dataset {
        points: chosen.iter().map(|&i| data.points[i]).collect(),
        labels: chosen.iter().map(|&i| data.labels[i]).collect(),
        classes: data.classes,
    }
}

/// Grid coordinates of a surface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Coordinates a along d1, one per column.
    pub alphas: Vec<f64>,
    /// Coordinates b along d2, one per row.
    pub betas: Vec<f64>,
}

impl Default for Grid {
    /// 51 x 51 over [-1, 1]^2 (Li et al.'s default).
    fn default() -> Self {
        Grid::square(51, -1.0, 1.0)
    }
}

impl Grid {
    /// An n x n grid with both axes evenly spaced from `lo` to `hi`.
    pub fn square(n: usize, lo: f64, hi: f64) -> Grid {
        Grid { alphas: linspace(lo, hi, n), betas: linspace(lo, hi, n) }
    }

    /// An n x n grid centred on 0 that covers `points` with a margin (1.2x the
    /// largest coordinate, at least `min_half_width`): for trajectory planes.
    pub fn covering(points: &[[f64; 2]], n: usize, min_half_width: f64) -> Grid {
        let half = points.iter().flat_map(|p| [p[0].abs(), p[1].abs()]).fold(min_half_width, f64::max) * 1.2;
        Grid::square(n, -half, half)
    }

    /// Number of grid points (columns times rows).
    pub fn cells(&self) -> usize {
        self.alphas.len() * self.betas.len()
    }
}

/// Losses over a grid; row i is beta[i], column j is alpha[j]:
/// `values[i * alphas.len() + j]` is the loss at origin + alphas[j] d1 + betas[i] d2.
/// Sets that were not asked for are None; cells not computed yet are NaN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Surface {
    /// How the plane's directions were chosen.
    pub kind: DirectionKind,
    /// Coordinates along d1, one per column.
    pub alphas: Vec<f64>,
    /// Coordinates along d2, one per row.
    pub betas: Vec<f64>,
    /// Mean training loss per cell, if asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<Vec<f64>>,
    /// Mean in-distribution held-out loss per cell, if asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Vec<f64>>,
    /// Mean out-of-distribution loss per cell, if asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ood: Option<Vec<f64>>,
    /// PCA planes: the fraction of the trajectory's variance along d1 and d2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explained_variance: Option<[f64; 2]>,
    /// Hessian planes: the eigenvalues of d1 and d2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eigenvalues: Option<[f64; 2]>,
}

impl Surface {
    /// The losses of set `split`, row-major as described above; `None` if not asked for.
    pub fn values(&self, split: Split) -> Option<&[f64]> {
        match split {
            Split::Train => self.train.as_deref(),
            Split::Id => self.id.as_deref(),
            Split::Ood => self.ood.as_deref(),
        }
    }

    /// The loss at (alphas[j], betas[i]).
    pub fn at(&self, split: Split, i: usize, j: usize) -> Option<f64> {
        self.values(split).map(|v| v[i * self.alphas.len() + j])
    }
}

/// The log10 range of the finite positive values among `values`: one colour
/// (or y) scale for several surfaces or curves, so that their pictures compare.
/// None when there are none; a single value gives a range 1e-6 wide.
pub fn log10_range<'a>(values: impl IntoIterator<Item = &'a [f64]>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .into_iter()
        .flatten()
        .filter(|v| v.is_finite() && **v > 0.0)
        .map(|v| v.log10())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    lo.is_finite().then_some((lo, hi.max(lo + 1e-6)))
}

/// A surface computed a few cells at a time (row-major: beta rows, alpha
/// columns), so the page can draw rows as they finish and cancel by dropping.
#[derive(Clone, Debug)]
pub struct SurfaceJob {
    mlp: Mlp,
    plane: Plane,
    surface: Surface,
    /// The sets evaluated (copies: possibly subsets of the run's sets).
    sets: Vec<(Split, Dataset)>,
    done: usize,
    point: Vec<f64>,
    ws: Workspace,
}

impl SurfaceJob {
    /// A job for `grid` over `plane`, evaluated on each of `which` (e.g. train and OOD).
    pub fn new(mlp: &Mlp, splits: Arc<Splits>, plane: Plane, grid: Grid, which: &[Split]) -> SurfaceJob {
        let nan = || Some(vec![f64::NAN; grid.cells()]);
        let has = |s| which.contains(&s);
        let surface = Surface {
            kind: plane.kind,
            train: if has(Split::Train) { nan() } else { None },
            id: if has(Split::Id) { nan() } else { None },
            ood: if has(Split::Ood) { nan() } else { None },
            alphas: grid.alphas,
            betas: grid.betas,
            explained_variance: plane.explained_variance,
            eigenvalues: plane.eigenvalues,
        };
        let point = vec![0.0; plane.origin.len()];
        let sets = which.iter().map(|&s| (s, s.dataset(&splits).clone())).collect();
        SurfaceJob { mlp: mlp.clone(), plane, surface, sets, done: 0, point, ws: Workspace::new() }
    }

    /// Evaluates on at most `max_points` points of each set (a seeded subset,
    /// the same for both sides with the same seed); 0 keeps every point. The cost
    /// of a cell is proportional to the points, so this is the page's speed knob.
    /// Call before the first `advance`.
    pub fn with_max_points(mut self, max_points: usize, seed: u64) -> SurfaceJob {
        assert_eq!(self.done, 0, "subset the data before computing cells");
        for (split, set) in &mut self.sets {
            *set = subset(set, max_points, seed, *split);
        }
        self
    }

    /// Number of grid cells (columns times rows).
    pub fn cells(&self) -> usize {
        self.surface.alphas.len() * self.surface.betas.len()
    }

    /// Cells computed so far (row-major order).
    pub fn cells_done(&self) -> usize {
        self.done
    }

    /// Rows (beta indices) that are complete.
    pub fn rows_done(&self) -> usize {
        self.done / self.surface.alphas.len().max(1)
    }

    /// Computes up to `max_cells` more cells; returns how many it did. The
    /// finest-grained budget: one cell is one forward pass per chosen set.
    pub fn advance_cells(&mut self, max_cells: usize) -> usize {
        let end = self.done.saturating_add(max_cells).min(self.cells());
        let cols = self.surface.alphas.len();
        for cell in self.done..end {
            let (i, j) = (cell / cols, cell % cols);
            self.plane.point(self.surface.alphas[j], self.surface.betas[i], &mut self.point);
            for (split, d) in &self.sets {
                let loss = self.mlp.evaluate(&self.point, d.flat_points(), &d.labels, &mut self.ws).0;
                let values = match *split {
                    Split::Train => &mut self.surface.train,
                    Split::Id => &mut self.surface.id,
                    Split::Ood => &mut self.surface.ood,
                };
                values.as_mut().expect("allocated for every chosen split")[cell] = loss;
            }
        }
        let did = end - self.done;
        self.done = end;
        did
    }

    /// Completes up to `n` more rows; returns the range of rows completed by this call.
    pub fn next_rows(&mut self, n: usize) -> Range<usize> {
        let before = self.rows_done();
        let cols = self.surface.alphas.len();
        let target = ((before + n) * cols).min(self.cells());
        self.advance_cells(target.saturating_sub(self.done));
        before..self.rows_done()
    }

    /// The plane the surface lies in.
    pub fn plane(&self) -> &Plane {
        &self.plane
    }

    /// The network whose loss is evaluated.
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// The grid the surface is evaluated on.
    pub fn grid(&self) -> Grid {
        Grid { alphas: self.surface.alphas.clone(), betas: self.surface.betas.clone() }
    }

    /// The sets evaluated (subsets, if `with_max_points` chose them).
    pub fn sets(&self) -> &[(Split, Dataset)] {
        &self.sets
    }

    /// Takes every value computed elsewhere (e.g. on the GPU): the values of
    /// each of [`Self::sets`] in turn, row-major over the same grid, and marks
    /// the job done. Refuses any other number of values.
    pub fn fill(&mut self, values: &[f64]) -> Result<(), String> {
        let cells = self.cells();
        if values.len() != cells * self.sets.len() {
            return Err(format!("{} values for {} sets of {cells} cells", values.len(), self.sets.len()));
        }
        for ((split, _), chunk) in self.sets.iter().zip(values.chunks_exact(cells.max(1))) {
            let slot = match *split {
                Split::Train => &mut self.surface.train,
                Split::Id => &mut self.surface.id,
                Split::Ood => &mut self.surface.ood,
            };
            *slot = Some(chunk.to_vec());
        }
        self.done = cells;
        Ok(())
    }

    /// The surface so far (NaN where not computed yet).
    pub fn surface(&self) -> &Surface {
        &self.surface
    }

    /// Finishes every remaining cell and returns the surface.
    pub fn finish(mut self) -> Surface {
        self.advance_cells(usize::MAX);
        self.surface
    }
}

/// A piece is one cell: one forward pass per chosen set (~0.1 ms for the
/// reference net on 256 points, ~20 ms for a 6 x 64 one on 5000).
impl Job for SurfaceJob {
    fn advance(&mut self, _: &mut ()) -> bool {
        self.advance_cells(1);
        self.is_done()
    }

    /// Fraction of cells computed, in [0, 1].
    fn progress(&self) -> f64 {
        if self.cells() == 0 {
            1.0
        } else {
            self.done as f64 / self.cells() as f64
        }
    }

    /// Whether every cell has been computed.
    fn is_done(&self) -> bool {
        self.done >= self.cells()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunConfig;
    use crate::data::make_splits;
    use crate::model::ModelConfig;

    fn setup(n_test: usize) -> (Mlp, Vec<f64>, Arc<Splits>) {
        let mut config = RunConfig::default();
        config.data.n_train = 60;
        config.data.n_test = n_test;
        let splits = Arc::new(make_splits(&config.data, &config.shift, 3));
        let mlp = Mlp::new(2, &ModelConfig { hidden: vec![6, 5], ..Default::default() }, 2);
        let params = mlp.init_params(&mut Rng::new(3));
        (mlp, params, splits)
    }

    fn row_norm(v: &[f64], start: usize, len: usize) -> f64 {
        v[start..start + len].iter().map(|x| x * x).sum::<f64>().sqrt()
    }

    #[test]
    fn log10_range_skips_what_has_no_logarithm() {
        let a = [0.1, f64::NAN, 0.0, -1.0, 10.0];
        let b = [f64::INFINITY, 1.0];
        assert_eq!(log10_range([&a[..], &b[..]]), Some((-1.0, 1.0)));
        assert_eq!(log10_range([&[100.0][..]]), Some((2.0, 2.0 + 1e-6)));
        assert_eq!(log10_range([&[0.0, f64::NAN][..]]), None);
        assert_eq!(log10_range(std::iter::empty()), None);
    }

    #[test]
    fn filter_normalised_rows_have_the_weight_row_norms_and_biases_are_zero() {
        let (mlp, params, _) = setup(10);
        let d = filter_normalized_direction(&mlp, &params, 9, 0);
        for layer in &mlp.layers {
            for j in 0..layer.fan_out {
                let start = layer.weight_offset + j * layer.fan_in;
                let (dn, wn) = (row_norm(&d, start, layer.fan_in), row_norm(&params, start, layer.fan_in));
                // Li et al.'s formula divides by norm + 1e-10, hence ~1e-10 relative.
                assert!((dn - wn).abs() < 1e-9 * wn, "row {j}: {dn} vs {wn}");
            }
            assert!(d[layer.bias_offset..layer.bias_offset + layer.fan_out].iter().all(|&b| b == 0.0));
        }
    }

    #[test]
    fn both_sides_share_the_draw_and_differ_only_by_their_own_normalisation() {
        let (mlp, w1, _) = setup(10);
        let w2: Vec<f64> = w1.iter().enumerate().map(|(i, w)| w * (1.0 + (i % 3) as f64)).collect();
        let (d1, d2) = (filter_normalized_direction(&mlp, &w1, 4, 0), filter_normalized_direction(&mlp, &w2, 4, 0));
        let raw = random_draw(w1.len(), 4, 0);
        assert_eq!(raw, random_draw(w1.len(), 4, 0), "seeded");
        assert_ne!(raw, random_draw(w1.len(), 4, 1), "directions differ by index");
        // Every row of both is a positive multiple of the same raw row.
        for layer in &mlp.layers {
            for j in 0..layer.fan_out {
                let row = layer.weight_offset + j * layer.fan_in..layer.weight_offset + (j + 1) * layer.fan_in;
                let (s1, s2) = (d1[row.start] / raw[row.start], d2[row.start] / raw[row.start]);
                assert!(s1 > 0.0 && s2 > 0.0);
                for i in row {
                    assert!((d1[i] - s1 * raw[i]).abs() < 1e-12 && (d2[i] - s2 * raw[i]).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn surface_centre_is_the_loss_at_w_and_rows_arrive_progressively() {
        let (mlp, params, splits) = setup(40);
        let plane = Plane::random(&mlp, &params, 1);
        let grid = Grid::square(7, -1.0, 1.0);
        let mut job = SurfaceJob::new(&mlp, splits.clone(), plane.clone(), grid.clone(), &[Split::Train, Split::Ood]);
        assert_eq!(job.next_rows(2), 0..2);
        assert!(job.surface().at(Split::Train, 1, 6).unwrap().is_finite());
        assert!(job.surface().at(Split::Train, 2, 0).unwrap().is_nan(), "not computed yet");
        assert!((job.progress() - 2.0 / 7.0).abs() < 1e-12);
        assert_eq!(job.advance_cells(3), 3);
        assert_eq!(job.rows_done(), 2);
        let mut steps = 0;
        while !job.is_done() {
            job.next_rows(1);
            steps += 1;
        }
        assert_eq!(steps, 5);
        let surface = job.finish();
        assert_eq!(surface, SurfaceJob::new(&mlp, splits.clone(), plane, grid, &[Split::Train, Split::Ood]).finish());
        assert!(surface.id.is_none());
        // A subset is a cheaper, noisier estimate of the same surface.
        let plane = Plane::random(&mlp, &params, 1);
        let small = SurfaceJob::new(&mlp, splits.clone(), plane, Grid::square(7, -1.0, 1.0), &[Split::Train])
            .with_max_points(20, 5)
            .finish();
        let (full, part) = (surface.train.as_ref().unwrap(), small.train.as_ref().unwrap());
        assert!(full.iter().zip(part).all(|(a, b)| (a - b).abs() < 0.5 * a.max(*b) + 0.2) && full != part);
        let mut ws = Workspace::new();
        for split in [Split::Train, Split::Ood] {
            let d = split.dataset(&splits);
            let at_w = mlp.evaluate(&params, d.flat_points(), &d.labels, &mut ws).0;
            assert_eq!(surface.at(split, 3, 3), Some(at_w), "the grid's centre is w itself");
        }
    }

    #[test]
    fn interpolation_endpoints_are_the_two_solutions() {
        let (mlp, w1, splits) = setup(30);
        let w2 = mlp.init_params(&mut Rng::new(99));
        let line = Line::interpolation(&w1, &w2);
        let t = default_t(DirectionKind::Interpolation);
        assert_eq!((t[0], t[10], t[30], t[40]), (-0.5, 0.0, 1.0, 1.5));
        let c = curve(&mlp, &splits, &line, &t);
        let mut ws = Workspace::new();
        for (w, i) in [(&w1, 10), (&w2, 30)] {
            for (split, values) in [(Split::Train, &c.train), (Split::Id, &c.id), (Split::Ood, &c.ood)] {
                let d = split.dataset(&splits);
                assert_eq!(values[i], mlp.evaluate(w, d.flat_points(), &d.labels, &mut ws).0);
            }
        }
    }

    #[test]
    fn pca_plane_recovers_a_planar_trajectory() {
        let (mlp, origin, _) = setup(10);
        let p = origin.len();
        let e1 = filter_normalized_direction(&mlp, &origin, 1, 0);
        let e2 = filter_normalized_direction(&mlp, &origin, 1, 1);
        // A spiral in span(e1, e2) ending at origin, wider along e1.
        let checkpoints: Vec<Vec<f64>> = (0..20)
            .map(|k| {
                let s = (19 - k) as f64 / 19.0;
                let (a, b) = (2.0 * s * (3.0 * s).cos(), 0.5 * s * (3.0 * s).sin());
                (0..p).map(|i| origin[i] + a * e1[i] + b * e2[i]).collect()
            })
            .collect();
        let plane = Plane::pca(&origin, &checkpoints).unwrap();
        let [v1, v2] = plane.explained_variance.unwrap();
        assert!((v1 + v2 - 1.0).abs() < 1e-9, "a planar path is fully explained: {v1} + {v2}");
        assert!(v1 > v2);
        let dot: f64 = plane.d1.iter().zip(&plane.d2).map(|(a, b)| a * b).sum();
        assert!(dot.abs() < 1e-12, "orthonormal");
        let mut point = vec![0.0; p];
        for c in &checkpoints {
            let ([a, b], off) = plane.project(c);
            assert!(off < 1e-9);
            plane.point(a, b, &mut point);
            assert!(point.iter().zip(c).all(|(x, y)| (x - y).abs() < 1e-9));
        }
        assert!(Plane::pca(&origin, &checkpoints[..2]).is_none(), "two points do not span a plane");
    }

    #[test]
    fn hessian_plane_is_orthonormal_with_descending_eigenvalues() {
        let (mlp, params, splits) = setup(10);
        let d = &splits.train;
        let mut op = HessianOperator::new(&mlp, &params, d.flat_points(), &d.labels);
        let plane = Plane::hessian(&mut op, 2);
        let [l1, l2] = plane.eigenvalues.unwrap();
        assert!(l1 >= l2);
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        assert!((dot(&plane.d1, &plane.d1) - 1.0).abs() < 1e-12 && dot(&plane.d1, &plane.d2).abs() < 1e-10);
        let spectrum = crate::hessian::spectrum(&op.dense());
        assert!(
            (l1 - spectrum[0]).abs() < 1e-8 * spectrum[0].abs() && (l2 - spectrum[1]).abs() < 1e-8 * spectrum[0].abs()
        );
        let line = Line::hessian(&mut op, 2);
        assert_eq!(line.direction, plane.d1);
    }

    #[test]
    fn surfaces_round_trip_through_json() {
        let (mlp, params, splits) = setup(10);
        let surface =
            SurfaceJob::new(&mlp, splits, Plane::random(&mlp, &params, 1), Grid::square(3, -1.0, 1.0), &[Split::Ood])
                .finish();
        let back: Surface = serde_json::from_str(&serde_json::to_string(&surface).unwrap()).unwrap();
        assert_eq!(back, surface);
    }
}
