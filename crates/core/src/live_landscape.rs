//! The page's landscape view, computed a few grid cells at a time so that it
//! can run while training does: for each side a plane through its current
//! solution (random, Hessian or PCA directions, see [`crate::landscape`]), the
//! train and OOD loss over that plane, the 1D slice along its first direction,
//! and the trajectory projected onto it; plus the line from the left solution
//! to the right one. The directions are the CLI's (`flatminima landscape`) for
//! the same seed. Nothing here touches the browser: the web layer calls
//! [`LiveLandscape::advance`] with a budget each frame and draws what is done;
//! dropping the value cancels the work.

use crate::hessian::{HessianOperator, Lanczos};
use crate::job::Job;
use crate::landscape::{
    default_t, log10_range, project_trajectory, DirectionKind, Grid, Plane, Split, Surface, SurfaceJob, Trajectory,
};
use crate::model::Architecture;
use crate::pair::Pair;
use crate::requests::SurfaceRequest;
use crate::sharpness::sample_rows;
use crate::train::Run;

/// What to compute.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LiveSettings {
    /// Random, Hessian or PCA directions (Interpolation is not a plane kind here).
    pub kind: DirectionKind,
    /// Grid points per axis of each surface (the default is 51).
    pub grid: usize,
    /// Evaluate on at most this many points of each set (a seeded subset; 0 = all).
    pub max_points: usize,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings { kind: DirectionKind::Random, grid: 51, max_points: 256 }
    }
}

/// One side's slices.
pub struct SideSlices {
    /// The step the side was at when its plane was taken.
    pub step: usize,
    /// The 2D plane through the side's weights (its centre and two directions).
    pub plane: Plane,
    /// The side's path through weight space, projected onto `plane`.
    pub trajectory: Trajectory,
    /// The loss along d1 (the plane's row b = 0) at 41 points: a 41 x 1 "surface".
    pub slice: SurfaceJob,
    /// The loss over the plane on train and OOD.
    pub surface: SurfaceJob,
}

/// Everything the landscape view shows, in progress.
pub struct LiveLandscape {
    /// Direction kind, grid size and point budget the view was asked for.
    pub settings: LiveSettings,
    /// Why the settings could not be followed exactly (e.g. no PCA plane yet).
    pub note: Option<String>,
    /// The two sides' slices: index 0 is the left side, 1 the right.
    pub sides: [SideSlices; 2],
    /// Left solution at t = 0, right at t = 1, t in [-0.5, 1.5]; train, ID and OOD.
    pub interpolation: SurfaceJob,
    /// The two surfaces are computed elsewhere (the page's GPU module): `advance`
    /// leaves them to [`Self::surface_request`] and [`Self::fill_surface`].
    pub surfaces_elsewhere: bool,
}

/// The sets the 1D slices and the interpolation are evaluated on.
const LINE_SETS: [Split; 3] = [Split::Train, Split::Id, Split::Ood];
/// The sets the surfaces are evaluated on: the lesson is train against OOD.
const SURFACE_SETS: [Split; 2] = [Split::Train, Split::Ood];

/// A landscape being set up. Hessian directions need a Lanczos run per side
/// first (40 Hessian-vector products on `max_points` points: ~8 ms natively
/// for the reference net, ~0.35 s for a 6 x 64 one), done a product per
/// [`LandscapeStart::advance`] call on a snapshot of the pair (training may go
/// on meanwhile); other directions are ready at once.
pub enum LandscapeStart {
    /// The landscape can be computed at once (directions need no Hessian search).
    Ready(Box<LiveLandscape>),
    /// Hessian directions are still being found; call `advance` until it returns true, then `finish`.
    Searching {
        /// A snapshot of both runs, taken when the landscape was asked for.
        pair: Box<Pair>,
        /// The settings the landscape was asked with.
        settings: LiveSettings,
        /// One Lanczos search per side, with the Hessian it multiplies by.
        searches: Vec<(HessianOperator, Lanczos)>,
    },
}

/// A piece is one Lanczos product; done once [`LandscapeStart::finish`] has
/// nothing left to wait for.
impl Job for LandscapeStart {
    fn advance(&mut self, _: &mut ()) -> bool {
        if let LandscapeStart::Searching { searches, .. } = self {
            if let Some((op, lanczos)) = searches.iter_mut().find(|(_, l)| !l.is_done()) {
                lanczos.advance(op);
            }
        }
        self.is_done()
    }

    fn progress(&self) -> f64 {
        match self {
            LandscapeStart::Ready(_) => 1.0,
            LandscapeStart::Searching { searches, .. } => {
                searches.iter().map(|(_, l)| l.progress()).sum::<f64>() / searches.len().max(1) as f64
            }
        }
    }

    fn is_done(&self) -> bool {
        match self {
            LandscapeStart::Ready(_) => true,
            LandscapeStart::Searching { searches, .. } => searches.iter().all(|(_, l)| l.is_done()),
        }
    }
}

impl LandscapeStart {
    /// The landscape, its Hessian planes finished first if any products are left.
    pub fn finish(self) -> LiveLandscape {
        match self {
            LandscapeStart::Ready(landscape) => *landscape,
            LandscapeStart::Searching { pair, settings, searches } => {
                let mut planes =
                    searches.into_iter().map(|(mut op, search)| Plane::from_hessian_search(&mut op, search));
                let hessian = [planes.next(), planes.next()];
                LiveLandscape::with_planes(&pair, settings, hessian)
            }
        }
    }
}

impl LiveLandscape {
    /// Takes both sides' current parameters and prepares every job, the
    /// Hessian planes' Lanczos runs included (see [`LiveLandscape::start`] to
    /// spread those over calls too); the rest is spread over [`Self::advance`].
    pub fn new(pair: &Pair, settings: LiveSettings) -> LiveLandscape {
        LiveLandscape::start(pair, settings).finish()
    }

    /// Like [`LiveLandscape::new`], with the Lanczos runs still to do.
    pub fn start(pair: &Pair, settings: LiveSettings) -> LandscapeStart {
        if settings.kind != DirectionKind::Hessian {
            return LandscapeStart::Ready(Box::new(LiveLandscape::with_planes(pair, settings, [None, None])));
        }
        let seed = pair.config.seed;
        let searches = [&pair.left, &pair.right]
            .map(|run| {
                let (x, y) = sample_rows(&run.splits.train, settings.max_points, seed);
                let op = HessianOperator::new(&run.mlp, &run.params, &x, &y);
                let lanczos = Plane::hessian_search(&op, seed);
                (op, lanczos)
            })
            .into();
        LandscapeStart::Searching { pair: Box::new(pair.clone()), settings, searches }
    }

    /// Prepares every job; `hessian` holds each side's Hessian plane when the
    /// settings ask for one (found by [`LiveLandscape::start`]).
    fn with_planes(pair: &Pair, settings: LiveSettings, hessian: [Option<Plane>; 2]) -> LiveLandscape {
        let seed = pair.config.seed;
        let mut note = None;
        let [left, right] = hessian;
        let sides = [(&pair.left, left), (&pair.right, right)].map(|(run, plane)| {
            let (side, side_note) = SideSlices::new(run, &settings, seed, plane);
            note = note.take().or(side_note);
            side
        });
        let (w1, w2) = (&pair.left.params, &pair.right.params);
        let interpolation_plane = Plane {
            kind: DirectionKind::Interpolation,
            origin: w1.clone(),
            d1: w1.iter().zip(w2).map(|(a, b)| b - a).collect(),
            d2: vec![0.0; w1.len()],
            explained_variance: None,
            eigenvalues: None,
        };
        let line = Grid { alphas: default_t(DirectionKind::Interpolation), betas: vec![0.0] };
        let interpolation = SurfaceJob::new(&pair.left.mlp, pair.splits.clone(), interpolation_plane, line, &LINE_SETS)
            .with_max_points(settings.max_points, seed);
        LiveLandscape { settings, note, sides, interpolation, surfaces_elsewhere: false }
    }

    /// Computes up to `max_cells` more cells (one cell = one forward pass per
    /// set): the 1D slices and the interpolation first (they are small and
    /// tell most of the story), then both surfaces a row at a time, alternating
    /// sides so they fill in together. Returns the cells computed.
    pub fn advance_cells(&mut self, max_cells: usize) -> usize {
        let mut done = 0;
        while done < max_cells {
            let left = max_cells - done;
            let Some(job) = self.next_job() else { break };
            let cols = job.surface().alphas.len().max(1);
            // Finish the current row of a surface before switching sides.
            let to_row_end = cols - job.cells_done() % cols;
            done += job.advance_cells(left.min(to_row_end));
        }
        done
    }

    /// The job `advance` works on next; None when all its work is done.
    fn next_job(&mut self) -> Option<&mut SurfaceJob> {
        let [left, right] = &mut self.sides;
        if !left.slice.is_done() {
            return Some(&mut left.slice);
        }
        if !right.slice.is_done() {
            return Some(&mut right.slice);
        }
        if !self.interpolation.is_done() {
            return Some(&mut self.interpolation);
        }
        if self.surfaces_elsewhere || (left.surface.is_done() && right.surface.is_done()) {
            return None;
        }
        if right.surface.rows_done() < left.surface.rows_done() && !right.surface.is_done() || left.surface.is_done() {
            Some(&mut right.surface)
        } else {
            Some(&mut left.surface)
        }
    }

    /// What computing `side`'s surface elsewhere needs, or None if it is done.
    pub fn surface_request(&self, side: usize) -> Option<SurfaceRequest> {
        let job = &self.sides.get(side)?.surface;
        (!job.is_done()).then(|| SurfaceRequest {
            side,
            architecture: Architecture::of(job.mlp()),
            plane: job.plane().clone(),
            grid: job.grid(),
            sets: job.sets().to_vec(),
        })
    }

    /// Takes `side`'s surface as computed elsewhere (see [`SurfaceJob::fill`]).
    pub fn fill_surface(&mut self, side: usize, values: &[f64]) -> Result<(), String> {
        match self.sides.get_mut(side) {
            Some(s) => s.surface.fill(values),
            None => Err(format!("no side {side}")),
        }
    }

    fn jobs(&self) -> impl Iterator<Item = &SurfaceJob> {
        let [l, r] = &self.sides;
        [&l.slice, &r.slice, &self.interpolation, &l.surface, &r.surface].into_iter()
    }

    /// The steps the two planes were taken at.
    pub fn steps(&self) -> [usize; 2] {
        [self.sides[0].step, self.sides[1].step]
    }

    /// log10 range of the finite losses of `split` on both sides' surfaces:
    /// one colour scale for the two pictures, so that they compare. (Per set,
    /// because the OOD loss often sits far above the training loss, and one
    /// scale for both would flatten the picture of each.)
    pub fn surface_log_range(&self, split: Split) -> Option<(f64, f64)> {
        log10_range(self.sides.iter().filter_map(|s| s.surface.surface().values(split)))
    }
}

/// A piece is one cell of a slice, the interpolation or a surface (see
/// [`LiveLandscape::advance_cells`]). With `surfaces_elsewhere` the surfaces
/// come from outside ([`LiveLandscape::fill_surface`]); until they do, the job
/// waits.
impl Job for LiveLandscape {
    fn advance(&mut self, _: &mut ()) -> bool {
        self.advance_cells(1);
        self.is_done()
    }

    /// Fraction of all cells computed, in [0, 1].
    fn progress(&self) -> f64 {
        let total: usize = self.jobs().map(SurfaceJob::cells).sum();
        let done: usize = self.jobs().map(SurfaceJob::cells_done).sum();
        if total == 0 {
            1.0
        } else {
            done as f64 / total as f64
        }
    }

    /// Whether every slice, surface and the interpolation has been computed.
    fn is_done(&self) -> bool {
        self.jobs().all(SurfaceJob::is_done)
    }

    fn is_waiting(&self) -> bool {
        let [l, r] = &self.sides;
        let mine_done = l.slice.is_done() && r.slice.is_done() && self.interpolation.is_done();
        self.surfaces_elsewhere && mine_done && !self.is_done()
    }
}

impl SideSlices {
    /// `hessian`: the side's Hessian plane, for Hessian directions.
    fn new(run: &Run, settings: &LiveSettings, seed: u64, hessian: Option<Plane>) -> (SideSlices, Option<String>) {
        let n = settings.grid.max(3);
        let mut note = None;
        let random = || (Plane::random(&run.mlp, &run.params, seed), Grid::square(n, -1.0, 1.0));
        let (plane, grid) = match settings.kind {
            DirectionKind::Hessian => {
                let plane = hessian.expect("LiveLandscape::start finds the Hessian planes first");
                (plane, Grid::square(n, -1.0, 1.0))
            }
            DirectionKind::Pca => match Plane::pca(&run.params, &run.checkpoints.params) {
                Some(pca) => {
                    let coords = project_trajectory(&pca, &run.checkpoints).coords;
                    (pca, Grid::covering(&coords, n, 0.1))
                }
                None => {
                    note = Some("no PCA plane yet (the trajectory needs a few checkpoints): random directions".into());
                    random()
                }
            },
            DirectionKind::Random | DirectionKind::Interpolation => random(),
        };
        let trajectory = project_trajectory(&plane, &run.checkpoints);
        let half_width = grid_half_width(&grid);
        let line = Grid {
            alphas: default_t(DirectionKind::Random).iter().map(|t| t * half_width).collect(),
            betas: vec![0.0],
        };
        let slice = SurfaceJob::new(&run.mlp, run.splits.clone(), plane.clone(), line, &LINE_SETS)
            .with_max_points(settings.max_points, seed);
        let surface = SurfaceJob::new(&run.mlp, run.splits.clone(), plane.clone(), grid, &SURFACE_SETS)
            .with_max_points(settings.max_points, seed);
        (SideSlices { step: run.step, plane, trajectory, slice, surface }, note)
    }

    /// The side's loss surface over its plane, as computed so far.
    pub fn surface(&self) -> &Surface {
        self.surface.surface()
    }
}

/// Half the width of the grid's alpha range, so that the 1D slice spans the
/// same stretch of d1 as the surface (PCA grids are not [-1, 1]).
fn grid_half_width(grid: &Grid) -> f64 {
    let lo = grid.alphas.first().copied().unwrap_or(-1.0);
    let hi = grid.alphas.last().copied().unwrap_or(1.0);
    (lo.abs().max(hi.abs())).max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunConfig;
    use crate::landscape::{curve, Line};

    fn trained_pair(steps: usize) -> Pair {
        let mut config = RunConfig::default();
        config.data.n_train = 80;
        config.data.n_test = 80;
        let mut pair = Pair::new(config).unwrap();
        pair.record_checkpoints(10, 32);
        pair.train(steps);
        pair
    }

    fn small(kind: DirectionKind) -> LiveSettings {
        LiveSettings { kind, grid: 7, max_points: 0 }
    }

    /// The page starts a Hessian landscape a Lanczos product per call, on a
    /// snapshot: the same planes as building it at once, whatever training does meanwhile.
    #[test]
    fn a_hessian_landscape_started_in_pieces_equals_one_built_at_once() {
        let mut pair = trained_pair(60);
        let settings = small(DirectionKind::Hessian);
        let at_once = LiveLandscape::new(&pair, settings);
        let mut start = LiveLandscape::start(&pair, settings);
        pair.train(5);
        let mut calls = 1;
        while !start.advance(&mut ()) {
            calls += 1;
        }
        assert!(calls > 2 && calls <= 2 * crate::landscape::LANCZOS_STEPS, "{calls} calls");
        let pieces = start.finish();
        for (a, b) in pieces.sides.iter().zip(&at_once.sides) {
            assert_eq!((&a.plane, a.step), (&b.plane, b.step));
        }
        assert_eq!(pieces.steps(), at_once.steps());
        // Other directions have nothing to wait for.
        assert!(LiveLandscape::start(&pair, small(DirectionKind::Random)).advance(&mut ()));
    }

    /// Surfaces computed elsewhere: `advance` does everything else and stops;
    /// the requests carry what a CPU needs to give the same surfaces.
    #[test]
    fn surfaces_computed_elsewhere_complete_the_landscape() {
        let pair = trained_pair(60);
        let mut reference = LiveLandscape::new(&pair, small(DirectionKind::Random));
        reference.advance_cells(usize::MAX);
        let mut live = LiveLandscape::new(&pair, small(DirectionKind::Random));
        live.surfaces_elsewhere = true;
        assert_eq!(live.advance_cells(usize::MAX), 41 * 2 + 41);
        assert!(!live.is_done() && live.progress() < 1.0);
        assert_eq!(live.advance_cells(10), 0, "nothing left for advance");
        for side in 0..2 {
            let request = live.surface_request(side).expect("not done yet");
            assert_eq!(request.side, side);
            assert!(live.fill_surface(side, &request.run_cpu()).is_ok());
            assert!(live.surface_request(side).is_none(), "done now");
            assert_eq!(live.sides[side].surface(), reference.sides[side].surface());
        }
        assert!(live.is_done());
        assert_eq!(live.progress(), 1.0);
        // A surface of another grid is refused.
        let mut other = LiveLandscape::new(&pair, LiveSettings { grid: 5, ..small(DirectionKind::Random) });
        let wrong = live.surface_request(0);
        assert!(wrong.is_none());
        let seven = vec![0.5; 2 * 49];
        assert_eq!(other.fill_surface(0, &seven).unwrap_err(), "98 values for 2 sets of 25 cells");
        assert!(other.fill_surface(2, &seven[..50]).is_err());
    }

    #[test]
    fn advance_respects_its_budget_and_finishes() {
        let pair = trained_pair(60);
        let mut live = LiveLandscape::new(&pair, small(DirectionKind::Random));
        let total: usize = live.jobs().map(SurfaceJob::cells).sum();
        assert_eq!(total, 41 * 2 + 41 + 49 * 2);
        let mut last = 0.0;
        while !live.is_done() {
            let did = live.advance_cells(5);
            assert!(did > 0 && did <= 5, "did {did}");
            assert!(live.progress() > last);
            last = live.progress();
        }
        assert_eq!(live.progress(), 1.0);
        assert_eq!(live.advance_cells(10), 0);
    }

    #[test]
    fn surfaces_match_the_cli_and_the_slice_is_the_row_through_the_solution() {
        let pair = trained_pair(60);
        let mut live = LiveLandscape::new(&pair, small(DirectionKind::Random));
        live.advance_cells(usize::MAX);
        for (run, side) in pair.sides().into_iter().zip(&live.sides) {
            // Same directions as `flatminima landscape` (Plane::random with the config's seed).
            assert_eq!(side.plane, Plane::random(&run.mlp, &run.params, pair.config.seed));
            let s = side.surface();
            let centre = s.at(Split::Train, 3, 3).unwrap();
            let exact = run.mlp.clone().evaluate(
                &run.params,
                run.splits.train.flat_points(),
                &run.splits.train.labels,
                &mut Default::default(),
            );
            assert!((centre - exact.0).abs() < 1e-12, "surface at (0, 0) {centre} vs L(w) {}", exact.0);
            // The 1D slice is the line along d1: the same numbers as landscape::curve.
            let line = Line::random(&run.mlp, &run.params, pair.config.seed);
            let t = default_t(DirectionKind::Random);
            let c = curve(&run.mlp, &run.splits, &line, &t);
            let slice = side.slice.surface();
            for (i, (a, b)) in slice.values(Split::Ood).unwrap().iter().zip(&c.ood).enumerate() {
                assert!((a - b).abs() < 1e-12, "t = {}: {a} vs {b}", t[i]);
            }
        }
        for split in SURFACE_SETS {
            let (lo, hi) = live.surface_log_range(split).unwrap();
            assert!(lo < hi);
        }
        assert_eq!(live.surface_log_range(Split::Id), None, "no ID surfaces");
    }

    #[test]
    fn interpolation_ends_are_the_two_solutions() {
        let mut pair = trained_pair(60);
        let mut live = LiveLandscape::new(&pair, small(DirectionKind::Random));
        live.advance_cells(usize::MAX);
        let s = live.interpolation.surface();
        let t = &s.alphas;
        let at = |x: f64| t.iter().position(|&v| v == x).unwrap();
        let train = s.values(Split::Train).unwrap();
        let left = pair.left.evaluate().train_loss;
        let right = pair.right.evaluate().train_loss;
        assert!((train[at(0.0)] - left).abs() < 1e-12 && (train[at(1.0)] - right).abs() < 1e-12);
    }

    #[test]
    fn a_diverged_pair_gives_a_landscape_without_hanging() {
        let mut config = RunConfig::default();
        config.data.n_train = 40;
        config.left.optimizer = crate::optim::OptimizerConfig::sgd_momentum(80.0);
        config.right.optimizer = crate::optim::OptimizerConfig::sgd_momentum(80.0);
        let mut pair = Pair::new(config).unwrap();
        pair.record_checkpoints(1, 16);
        pair.train(200);
        assert!(pair.left.diverged.is_some() && pair.right.diverged.is_some());
        for kind in [DirectionKind::Random, DirectionKind::Hessian, DirectionKind::Pca] {
            let mut live = LiveLandscape::new(&pair, small(kind));
            live.advance_cells(usize::MAX);
            assert!(live.is_done());
        }
        let mut tracker = crate::sharpness_tracker::SharpnessTracker::new(1, 0.1);
        assert!(!tracker.has_work(&pair.left, true), "no sharpness for a diverged run");
        // Even parameters that are no longer numbers give a (NaN) picture, never a hang or a panic.
        pair.left.params.iter_mut().step_by(3).for_each(|w| *w = f64::NAN);
        pair.right.params[0] = f64::INFINITY;
        for kind in [DirectionKind::Random, DirectionKind::Hessian, DirectionKind::Pca] {
            let mut live = LiveLandscape::new(&pair, small(kind));
            live.advance_cells(usize::MAX);
            assert!(live.is_done());
        }
        tracker.compute_spectrum(&pair.left);
    }

    #[test]
    fn hessian_and_pca_planes_and_the_fallback() {
        let pair = trained_pair(60);
        let live = LiveLandscape::new(&pair, small(DirectionKind::Hessian));
        let e = live.sides[0].plane.eigenvalues.expect("Hessian planes carry their eigenvalues");
        assert!(e[0] >= e[1]);
        let live = LiveLandscape::new(&pair, small(DirectionKind::Pca));
        assert_eq!(live.sides[1].plane.kind, DirectionKind::Pca);
        assert!(live.note.is_none());
        // The trajectory ends at the solution, the plane's origin.
        let last = *live.sides[1].trajectory.coords.last().unwrap();
        assert!(last[0].abs() < 1e-9 && last[1].abs() < 1e-9, "{last:?}");

        // At step 0 there is no trajectory: PCA falls back to random, and says so.
        let fresh = trained_pair(0);
        let live = LiveLandscape::new(&fresh, small(DirectionKind::Pca));
        assert_eq!(live.sides[0].plane.kind, DirectionKind::Random);
        assert!(live.note.as_deref().unwrap().contains("PCA"));
    }
}
