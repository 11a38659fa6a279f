//! `flatminima landscape`: loss slices through both solutions, as JSON and PNG.
//!
//! Writes into `--out DIR`:
//! - `landscape.json`: every curve, surface and projected trajectory (the numbers);
//! - `interpolation.png`: train / ID / OOD loss from the left solution (t = 0) to the right (t = 1);
//! - `{left,right}_curves.png`: the random and top-eigenvector 1D slices (one panel each);
//! - `{left,right}_{random,hessian,pca}.png`: the surface on train (left panel) and OOD
//!   (right panel), log-scaled colours shared by both sides, trajectory in white, SAM's
//!   w + e points in red, the solution as a black dot at the centre.
//!
//! The surfaces are computed by the backend (`--backend`, see `cli/backend.rs`): the f64 CPU
//! core, or the GPU kernels in f32; `landscape.json` says which (`backend`) and why it fell back
//! (`backend_notices`). The 1D curves and Hessian directions are always computed on the CPU.
//!
//! The random directions are the browser's for the same seed (same seeded draw on
//! both sides, filter-normalised to each side's weights); Hessian and PCA planes
//! are each side's own. The pictures carry no text (no fonts needed): the JSON
//! has the axes and values.

use std::path::{Path, PathBuf};

use clap::Args;
use flatminima_backend::gpu::block_on;
use flatminima_backend::Backend;
use flatminima_core::hessian::HessianOperator;
use flatminima_core::landscape::{
    curve, default_t, log10_range, project_trajectory, subset, Curve, DirectionKind, Grid, Line, Plane, Split, Surface,
    Trajectory,
};
use flatminima_core::pair::Pair;
use flatminima_core::train::Run;
use plotters::prelude::*;
use serde::Serialize;

use super::backend::{report_notices, BackendArgs};
use super::{write_file, ConfigArgs, Failure};

/// Snapshots kept per side for the trajectory (PCA plane, overlays).
const CHECKPOINTS: usize = 100;

#[derive(Args)]
pub struct LandscapeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// A run record from `flatminima train --out`: slice through its final parameters instead
    /// of training (its config is replayed once to recover the trajectory for the PCA plane).
    #[arg(long, value_name = "FILE")]
    pub run: Option<PathBuf>,
    /// Output folder for landscape.json and the PNGs.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Grid points per axis of each surface.
    #[arg(long, default_value_t = 51, value_parser = clap::value_parser!(u16).range(3..=201))]
    pub grid: u16,
    /// Evaluate surfaces on at most this many points of each set (seeded subset; 0 = all).
    #[arg(long, default_value_t = 0)]
    pub points: usize,
    #[command(flatten)]
    pub backend: BackendArgs,
}

#[derive(Serialize)]
struct SideLandscape {
    label: String,
    curves: Vec<Curve>,
    surfaces: Vec<Surface>,
    /// The checkpoints projected onto each surface's plane (same order as `surfaces`).
    trajectories: Vec<Trajectory>,
}

#[derive(Serialize)]
struct Output {
    seed: u64,
    /// What the two sides share.
    directions: &'static str,
    note: Option<String>,
    /// What computed the surfaces: "cpu" (f64) or "gpu" (f32).
    backend: &'static str,
    /// Why the backend is not the one asked for, or calls that fell back to the CPU.
    backend_notices: Vec<String>,
    interpolation: Curve,
    left: SideLandscape,
    right: SideLandscape,
}

pub fn run(args: LandscapeArgs) -> Result<(), Failure> {
    let (pair, note) = prepare(&args)?;
    let (backend, mut backend_notices) = args.backend.open(&pair.left.mlp);
    let seed = pair.config.seed;
    let n = args.grid as usize;
    let interpolation = curve(
        &pair.left.mlp,
        &pair.splits,
        &Line::interpolation(&pair.left.params, &pair.right.params),
        &default_t(DirectionKind::Interpolation),
    );
    let sides: Vec<SideLandscape> = pair.sides().iter().map(|run| side(&backend, run, seed, n, args.points)).collect();
    backend_notices.extend(report_notices(&backend));
    let [left, right]: [SideLandscape; 2] = sides.try_into().unwrap_or_else(|_| unreachable!("two sides"));
    std::fs::create_dir_all(&args.out).map_err(|e| Failure::io(&args.out, e))?;
    plot_curves(&args.out.join("interpolation.png"), &[&interpolation])?;
    // One colour scale per plane kind for both sides and both sets, so pictures compare.
    for kind in [DirectionKind::Random, DirectionKind::Hessian, DirectionKind::Pca] {
        let all = [&left, &right].into_iter().flat_map(|s| s.surfaces.iter().filter(|x| x.kind == kind));
        // No finite loss at all: any scale will do (every cell is drawn as missing).
        let scale = log10_range(all.flat_map(|s| [Split::Train, Split::Ood].into_iter().filter_map(|x| s.values(x))))
            .unwrap_or((0.0, 1.0));
        for (name, s) in [("left", &left), ("right", &right)] {
            for (surface, trajectory) in s.surfaces.iter().zip(&s.trajectories).filter(|(x, _)| x.kind == kind) {
                let path = args.out.join(format!("{name}_{}.png", kind_name(kind)));
                plot_surface(&path, surface, trajectory, scale)?;
            }
        }
    }
    for (name, s) in [("left", &left), ("right", &right)] {
        plot_curves(&args.out.join(format!("{name}_curves.png")), &s.curves.iter().collect::<Vec<_>>())?;
    }
    let output = Output {
        seed,
        directions: "random: the same seeded draw on both sides, filter-normalised to each side's own weights; \
                     hessian and pca: each side's own",
        note,
        backend: backend.name(),
        backend_notices,
        interpolation,
        left,
        right,
    };
    let path = args.out.join("landscape.json");
    write_file(&path, &serde_json::to_string(&output).expect("landscapes serialise"))?;
    println!("wrote {} and the PNGs beside it", path.display());
    Ok(())
}

/// The pair at its final parameters, with checkpoints where they can be had.
fn prepare(args: &LandscapeArgs) -> Result<(Pair, Option<String>), Failure> {
    let (config, record) = match &args.run {
        Some(path) => {
            let (pair, record) = super::sharpness::load_record(path)?;
            (pair.config.clone(), Some((pair, record)))
        }
        None => (args.config.load()?, None),
    };
    // Train (or replay the record's config, which pins `init`) with snapshots.
    let steps = config.training.steps;
    let mut pair = Pair::new(config).map_err(|e| Failure::bad_input(e.to_string()))?;
    pair.record_checkpoints(steps.div_ceil(CHECKPOINTS).max(1), CHECKPOINTS);
    pair.train(steps);
    match record {
        None => Ok((pair, None)),
        Some((from_record, record)) => {
            if pair.left.params == record.left.final_params && pair.right.params == record.right.final_params {
                Ok((pair, None))
            } else {
                // The record's solutions win; without a matching replay there is no trajectory.
                Ok((
                    from_record,
                    Some(
                        "replaying the record did not reproduce its final parameters: no PCA plane or trajectories"
                            .into(),
                    ),
                ))
            }
        }
    }
}

fn side(backend: &Backend, run: &Run, seed: u64, n: usize, points: usize) -> SideLandscape {
    let train = &run.splits.train;
    let mut op = HessianOperator::new(&run.mlp, &run.params, train.flat_points(), &train.labels);
    let t = default_t(DirectionKind::Random);
    let curves = vec![
        curve(&run.mlp, &run.splits, &Line::random(&run.mlp, &run.params, seed), &t),
        curve(&run.mlp, &run.splits, &Line::hessian(&mut op, seed), &t),
    ];
    let mut planes = vec![
        (Plane::random(&run.mlp, &run.params, seed), Grid::square(n, -1.0, 1.0)),
        (Plane::hessian(&mut op, seed), Grid::square(n, -1.0, 1.0)),
    ];
    if let Some(pca) = Plane::pca(&run.params, &run.checkpoints.params) {
        let coords = project_trajectory(&pca, &run.checkpoints).coords;
        planes.push((pca, Grid::covering(&coords, n, 0.1)));
    }
    // The same seeded subsets as `SurfaceJob::with_max_points`.
    let sets: Vec<(Split, _)> =
        [Split::Train, Split::Ood].map(|s| (s, subset(s.dataset(&run.splits), points, seed, s))).into();
    let sets: Vec<(Split, &_)> = sets.iter().map(|(s, d)| (*s, d)).collect();
    let (mut surfaces, mut trajectories) = (vec![], vec![]);
    for (plane, grid) in planes {
        trajectories.push(project_trajectory(&plane, &run.checkpoints));
        surfaces.push(block_on(backend.surface(&run.mlp, &plane, &grid, &sets)));
    }
    SideLandscape { label: run.side.label(), curves, surfaces, trajectories }
}

fn kind_name(kind: DirectionKind) -> &'static str {
    match kind {
        DirectionKind::Random => "random",
        DirectionKind::Hessian => "hessian",
        DirectionKind::Pca => "pca",
        DirectionKind::Interpolation => "interpolation",
    }
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Failure {
    Failure { code: 1, message: format!("{}: cannot draw: {e}", path.display()) }
}

/// Viridis-like colour for x in [0, 1] (linear between five anchors).
fn colour(x: f64) -> RGBColor {
    const ANCHORS: [(f64, f64, f64); 5] =
        [(68.0, 1.0, 84.0), (59.0, 82.0, 139.0), (33.0, 145.0, 140.0), (94.0, 201.0, 98.0), (253.0, 231.0, 37.0)];
    let x = if x.is_finite() { x.clamp(0.0, 1.0) * 4.0 } else { 0.0 };
    let i = (x.floor() as usize).min(3);
    let f = x - i as f64;
    let (a, b) = (ANCHORS[i], ANCHORS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Train (left panel) and OOD (right panel) heatmaps with the trajectory overlaid.
fn plot_surface(path: &Path, surface: &Surface, trajectory: &Trajectory, (lo, hi): (f64, f64)) -> Result<(), Failure> {
    const CELL: u32 = 6;
    let (cols, rows) = (surface.alphas.len(), surface.betas.len());
    let (w, h) = (cols as u32 * CELL, rows as u32 * CELL);
    let root = BitMapBackend::new(path, (2 * w + 10, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let (a0, a1) = (surface.alphas[0], surface.alphas[cols - 1]);
    let (b0, b1) = (surface.betas[0], surface.betas[rows - 1]);
    // Pixel position of plane coordinates (a, b); beta grows upwards.
    let to_px = |x_off: i32, [a, b]: [f64; 2]| -> (i32, i32) {
        let x = (a - a0) / (a1 - a0) * (w - CELL) as f64 + (CELL / 2) as f64;
        let y = (b1 - b) / (b1 - b0) * (h - CELL) as f64 + (CELL / 2) as f64;
        (x_off + x.round() as i32, y.round() as i32)
    };
    for (panel, split) in [Split::Train, Split::Ood].into_iter().enumerate() {
        let Some(values) = surface.values(split) else { continue };
        let x_off = panel as i32 * (w as i32 + 10);
        for i in 0..rows {
            for j in 0..cols {
                let v = values[i * cols + j];
                let c = colour((v.max(1e-300).log10() - lo) / (hi - lo));
                let (x, y) = (x_off + (j as u32 * CELL) as i32, ((rows - 1 - i) as u32 * CELL) as i32);
                root.draw(&Rectangle::new([(x, y), (x + CELL as i32, y + CELL as i32)], c.filled()))
                    .map_err(|e| plot_error(path, e))?;
            }
        }
        let inside = |p: &[f64; 2]| p[0] >= a0 && p[0] <= a1 && p[1] >= b0 && p[1] <= b1;
        let path_px: Vec<(i32, i32)> =
            trajectory.coords.iter().filter(|p| inside(p)).map(|&p| to_px(x_off, p)).collect();
        root.draw(&PathElement::new(path_px, WHITE.stroke_width(2))).map_err(|e| plot_error(path, e))?;
        for p in trajectory.perturbed.iter().filter(|p| inside(p)) {
            root.draw(&Circle::new(to_px(x_off, *p), 2, RED.filled())).map_err(|e| plot_error(path, e))?;
        }
        root.draw(&Circle::new(to_px(x_off, [0.0, 0.0]), 4, BLACK.filled())).map_err(|e| plot_error(path, e))?;
    }
    root.present().map_err(|e| plot_error(path, e))
}

/// One panel per curve: train (blue), ID (green), OOD (red) loss against t, with t = 0
/// (and t = 1 for interpolation) marked by grey vertical lines.
fn plot_curves(path: &Path, curves: &[&Curve]) -> Result<(), Failure> {
    let root = BitMapBackend::new(path, (420 * curves.len() as u32, 320)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    for (area, c) in root.split_evenly((1, curves.len())).iter().zip(curves) {
        let finite = c.train.iter().chain(&c.id).chain(&c.ood).copied().filter(|v| v.is_finite());
        let top = finite.fold(0.0f64, f64::max).max(1e-12) * 1.05;
        let (t0, t1) = (c.t[0], *c.t.last().expect("curves have points"));
        let mut chart =
            ChartBuilder::on(area).margin(12).build_cartesian_2d(t0..t1, 0.0..top).map_err(|e| plot_error(path, e))?;
        let marks: &[f64] = if c.kind == DirectionKind::Interpolation { &[0.0, 1.0] } else { &[0.0] };
        for &m in marks {
            chart
                .draw_series(LineSeries::new([(m, 0.0), (m, top)], RGBColor(190, 190, 190).stroke_width(1)))
                .map_err(|e| plot_error(path, e))?;
        }
        chart
            .draw_series(LineSeries::new([(t0, 0.0), (t1, 0.0), (t1, top), (t0, top), (t0, 0.0)], &BLACK))
            .map_err(|e| plot_error(path, e))?;
        for (values, colour) in [(&c.train, BLUE), (&c.id, GREEN), (&c.ood, RED)] {
            let points = c.t.iter().copied().zip(values.iter().copied()).filter(|(_, v)| v.is_finite());
            chart.draw_series(LineSeries::new(points, colour.stroke_width(2))).map_err(|e| plot_error(path, e))?;
        }
    }
    root.present().map_err(|e| plot_error(path, e))
}
