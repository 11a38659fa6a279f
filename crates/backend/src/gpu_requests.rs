//! The GPU's answers to the page's requests ([`flatminima_core::requests`]): the
//! GPU module of the page (`src/web/gpu_page.rs`) parses a request and runs it
//! here. Each refuses work that does not fit its model with
//! [`GpuError::Unsupported`], so the caller falls back to the request's `run_cpu`.

use flatminima_core::data::Dataset;
use flatminima_core::landscape::Split;
use flatminima_core::requests::{BoundaryRequest, SurfaceRequest};
use flatminima_core::study::{Study, StudyReport};

use crate::gpu::GpuError;
use crate::{GpuBackend, ModelRef};

impl GpuBackend {
    /// Probabilities, model after model, each `n * n * classes` (see
    /// [`crate::Backend::boundary_grid`]): [`BoundaryRequest::run_cpu`] on the GPU.
    pub async fn run_boundary(&self, request: &BoundaryRequest) -> Result<Vec<f32>, GpuError> {
        let mlp = request.architecture.build();
        request.check(mlp.num_params()).map_err(GpuError::Unsupported)?;
        let models: Vec<ModelRef> = request.params.iter().map(|p| ModelRef { mlp: &mlp, params: p }).collect();
        self.boundary_grid(&models, &request.grid()).await
    }

    /// The losses, every value of the first set, then the second:
    /// [`SurfaceRequest::run_cpu`] on the GPU.
    pub async fn run_surface(&self, request: &SurfaceRequest) -> Result<Vec<f64>, GpuError> {
        let mlp = request.architecture.build();
        let n = mlp.num_params();
        if [&request.plane.origin, &request.plane.d1, &request.plane.d2].iter().any(|v| v.len() != n) {
            return Err(GpuError::Unsupported(format!("the plane does not fit a model with {n} parameters")));
        }
        let sets: Vec<(Split, &Dataset)> = request.sets.iter().map(|(s, d)| (*s, d)).collect();
        let surface = self.surface(&mlp, &request.plane, &request.grid, &sets).await?;
        Ok(request.values(&surface))
    }

    /// Both sides of a study on the GPU (SGD with or without SAM/ASAM; other
    /// optimisers are refused), reported like a CPU study. `now_ms` is the
    /// caller's clock (the core has none that works in a browser).
    pub async fn run_study(&self, study: &Study, now_ms: impl Fn() -> f64) -> Result<StudyReport, GpuError> {
        let mlp = study.mlp();
        let splits = study.splits.clone();
        let mut results = [Vec::new(), Vec::new()];
        let start = now_ms();
        for (side, result) in results.iter_mut().enumerate() {
            *result = self.train_replicas(&mlp, &splits, study.batch_size, &study.replicas(side), study.steps).await?;
        }
        Ok(StudyReport::new(study, &results, "gpu", now_ms() - start))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use flatminima_core::config::RunConfig;
    use flatminima_core::live_landscape::{LiveLandscape, LiveSettings};
    use flatminima_core::model::Architecture;
    use flatminima_core::pair::Pair;
    use serde::Serialize;

    use super::*;
    use crate::gpu::block_on;

    fn gpu() -> Option<GpuBackend> {
        match block_on(GpuBackend::open()) {
            Ok(gpu) => Some(gpu),
            Err(e) => {
                eprintln!("NOTICE: skipped, no GPU adapter ({e})");
                None
            }
        }
    }

    fn via_json<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
        serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
    }

    fn trained_pair() -> Pair {
        let mut config = RunConfig::default();
        config.data.n_train = 128;
        config.data.n_test = 100;
        let mut pair = Pair::new(config).unwrap();
        pair.train(50);
        pair
    }

    /// Every request survives JSON (what crosses between the page's two
    /// modules) and the GPU's answer matches the CPU's.
    #[test]
    fn requests_cross_as_json_and_gpu_answers_match_the_cpu() {
        let pair = trained_pair();
        let boundary = BoundaryRequest {
            architecture: Architecture::of(&pair.left.mlp),
            params: vec![pair.left.params.clone(), pair.right.params.clone()],
            lo: -3.0,
            hi: 3.0,
            n: 37,
        };
        let live = LiveLandscape::new(&pair, LiveSettings { grid: 9, max_points: 64, ..Default::default() });
        let surface = live.surface_request(0).expect("a surface to compute");
        let study = Study::new(&pair, 3, 20);
        let (boundary, surface, study) = (via_json(&boundary), via_json(&surface), via_json(&study));
        assert_eq!(surface.side, 0);

        let Some(gpu) = gpu() else { return };
        let (g, c) = (block_on(gpu.run_boundary(&boundary)).unwrap(), boundary.run_cpu());
        assert_eq!(g.len(), 2 * 37 * 37 * 2);
        let worst = g.iter().zip(&c).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-5, "boundary probabilities differ by {worst}");

        let (g, c) = (block_on(gpu.run_surface(&surface)).unwrap(), surface.run_cpu());
        assert_eq!(g.len(), 2 * 81, "train then OOD");
        for (x, y) in g.iter().zip(&c) {
            assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "surface: gpu {x} vs cpu {y}");
        }

        let g = block_on(gpu.run_study(&study, || 0.0)).unwrap();
        assert_eq!((g.backend.as_str(), g.replicas, g.steps), ("gpu", 3, 20));
        let mut job = flatminima_core::study::StudyJob::new(&study);
        flatminima_core::job::finish(&mut job, &mut ());
        for (side, report) in [&g.left, &g.right].into_iter().enumerate() {
            for (a, b) in report.replicas.iter().zip(&job.results()[side]) {
                assert!((a.train_loss - b.train_loss).abs() < 1e-3, "side {side}: {a:?} vs {b:?}");
                assert!((a.ood_acc - b.ood_acc).abs() <= 0.02, "side {side}: {a:?} vs {b:?}");
            }
        }
    }

    /// A diverged run's parameters are not numbers; JSON writes them as null.
    /// Its requests must still cross (read back as NaN) and run, not fail to parse.
    #[test]
    fn a_diverged_runs_requests_cross_as_json_and_run() {
        let mut pair = trained_pair();
        pair.left.params.iter_mut().step_by(3).for_each(|w| *w = f64::NAN);
        pair.left.params[1] = f64::INFINITY;
        let boundary = via_json(&BoundaryRequest {
            architecture: Architecture::of(&pair.left.mlp),
            params: vec![pair.left.params.clone(), pair.right.params.clone()],
            lo: -3.0,
            hi: 3.0,
            n: 5,
        });
        assert!(boundary.params[0][0].is_nan() && boundary.params[0][1].is_nan());
        assert_eq!(boundary.params[1], pair.right.params, "finite numbers cross unchanged");
        let live = LiveLandscape::new(&pair, LiveSettings { grid: 5, max_points: 32, ..Default::default() });
        let surface = live.surface_request(0).expect("a surface to compute");
        let crossed = via_json(&surface);
        assert!(crossed.plane.origin[0].is_nan());

        let Some(gpu) = gpu() else { return };
        assert_eq!(block_on(gpu.run_boundary(&boundary)).unwrap().len(), 2 * 5 * 5 * 2);
        let right = &block_on(gpu.run_boundary(&boundary)).unwrap()[5 * 5 * 2..];
        let cpu = &boundary.run_cpu()[5 * 5 * 2..];
        assert!(right.iter().zip(cpu).all(|(g, c)| (g - c).abs() < 1e-5), "the finite side is unaffected");
        assert_eq!(block_on(gpu.run_surface(&crossed)).unwrap().len(), crossed.run_cpu().len());
    }

    #[test]
    fn a_request_whose_params_do_not_fit_is_refused() {
        let pair = trained_pair();
        let bad = BoundaryRequest {
            architecture: Architecture::of(&pair.left.mlp),
            params: vec![vec![0.0; 3]],
            lo: -1.0,
            hi: 1.0,
            n: 4,
        };
        let Some(gpu) = gpu() else { return };
        let e = block_on(gpu.run_boundary(&bad)).unwrap_err();
        assert!(e.to_string().contains("3 parameters"), "{e}");
    }
}
