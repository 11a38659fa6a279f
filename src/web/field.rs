//! The decision field of one model over the view: class probabilities on a
//! fixed grid, turned into an RGBA pixel buffer (the heatmap) and line
//! segments (the decision boundary).
//!
//! The grid centres are the points the model would be asked about; the
//! probabilities come from [`GridNet`], a fast f32 copy of the model.
//!
//! All buffers are allocated once and reused frame after frame; only a change
//! in the number of classes resizes them.
//!
//! A field is computed a band of rows per [`Field::advance`] call into a back
//! buffer, and shown when complete: the reference net's whole field is one
//! call, a 6 x 64 net's (21122 parameters, 0.35 G multiply-adds) about forty,
//! so the page keeps drawing meanwhile.

use crate::job::{self, Job};
use crate::train::Run;

use super::palette;
use crate::grid_net::GridNet;

/// The view is the square [-VIEW, VIEW]^2 in data coordinates.
pub const VIEW: f64 = 3.0;
/// Grid cells per side; the heatmap is GRID x GRID pixels before scaling.
pub const GRID: usize = 128;

/// Multiply-adds of one [`Field::advance`] call (at least one row): the
/// reference 2-16-16-2 net's whole field is 5.8 M.
const MACS_PER_CALL: usize = 8_000_000;

/// A run's decision field: class probabilities on a GRID x GRID grid over the view,
/// their heatmap colours and the boundary line, computed a band of rows per call
/// (see [`Field::advance`]) so a big net's field never blocks for long.
pub struct Field {
    /// x of each column's centre (the same for every row).
    xs: Vec<f64>,
    /// One fast copy per member: a run's field has one; an ensemble's field
    /// averages the members' class probabilities (Lakshminarayanan et al. 2017).
    nets: Vec<GridNet>,
    /// Scratch: one member's probabilities for a row.
    member_row: Vec<f64>,
    /// `GRID * GRID x classes` probabilities, row-major from the top-left cell.
    probs: Vec<f64>,
    /// The field being computed: rows `..next_row` of `back` are done.
    back: Vec<f64>,
    next_row: Option<usize>,
    /// Classes and parameters of the net being computed.
    back_classes: usize,
    back_params: usize,
    /// Scratch: one class's margin per cell, for the boundary tracer.
    margin: Vec<f64>,
    classes: usize,
    /// RGBA, row-major from the top-left, ready for an `ImageData`.
    pub rgba: Vec<u8>,
    /// Boundary segments `[u0, v0, u1, v1, ...]` in grid units: (0, 0) is the
    /// top-left corner of the view, (GRID, GRID) the bottom-right one.
    pub segments: Vec<f64>,
}

impl Default for Field {
    fn default() -> Self {
        Self::new()
    }
}

impl Field {
    /// An empty field (nothing computed yet).
    pub fn new() -> Self {
        let cells = GRID * GRID;
        Field {
            xs: (0..GRID).map(|i| grid_to_data(i as f64 + 0.5, 0.0).0).collect(),
            nets: vec![GridNet::default()],
            member_row: Vec::new(),
            probs: Vec::new(),
            back: Vec::new(),
            next_row: None,
            back_classes: 0,
            back_params: 0,
            margin: vec![0.0; cells],
            classes: 0,
            rgba: vec![255; 4 * cells],
            segments: Vec::with_capacity(4 * 4 * GRID),
        }
    }

    /// Recomputes probabilities, pixels and boundary for `run`'s current
    /// parameters (with the fast f32 forward of [`GridNet`]) at once.
    pub fn update(&mut self, run: &Run) {
        self.begin(run);
        job::finish(self, &mut ());
    }

    /// Starts computing the field of `run`'s current parameters (a snapshot:
    /// the run may train on meanwhile), replacing any under way.
    pub fn begin(&mut self, run: &Run) {
        self.begin_members(&run.mlp, &[&run.params]);
    }

    /// Starts computing the field of the mean class probabilities of `members`
    /// (parameter vectors of `mlp`; one member: that model's own field), as
    /// [`Field::begin`] does for a run. Used for a side's weight average and
    /// its ensemble.
    pub fn begin_members(&mut self, mlp: &crate::model::Mlp, members: &[&[f64]]) {
        self.nets.resize_with(members.len().max(1), GridNet::default);
        for (net, params) in self.nets.iter_mut().zip(members) {
            net.load(mlp, params);
        }
        self.back_classes = mlp.classes;
        self.back_params = mlp.num_params() * self.nets.len();
        self.back.resize(GRID * GRID * self.back_classes, 0.0);
        self.next_row = Some(0);
    }

    /// Whether a field is being computed.
    pub fn in_progress(&self) -> bool {
        self.next_row.is_some()
    }

    /// Takes probabilities computed elsewhere (the GPU, over
    /// `Grid2d::cell_centres(-VIEW, VIEW, GRID)`: the same cells in the same
    /// order), `GRID * GRID * classes` of them. Refuses any other length.
    pub fn set_probabilities(&mut self, probs: &[f32], classes: usize) -> Result<(), String> {
        if classes == 0 || probs.len() != GRID * GRID * classes {
            return Err(format!("{} probabilities for {GRID}x{GRID} cells of {classes} classes", probs.len()));
        }
        self.next_row = None; // this field replaces any being computed here
        self.set_classes(classes);
        for (p, &q) in self.probs.iter_mut().zip(probs) {
            *p = q as f64;
        }
        self.paint();
        Ok(())
    }

    fn set_classes(&mut self, k: usize) {
        if self.classes != k {
            self.classes = k;
            self.probs.resize(GRID * GRID * k, 0.0);
        }
    }

    /// Pixels and boundary segments from the probabilities.
    fn paint(&mut self) {
        let k = self.classes;
        for (px, p) in self.rgba.chunks_exact_mut(4).zip(self.probs.chunks_exact(k)) {
            let [r, g, b] = palette::heat_colour(p);
            px.copy_from_slice(&[r, g, b, 255]);
        }
        self.trace_boundaries();
    }

    /// Class probabilities of cell (i, j), for tests and tooltips.
    pub fn probs_at(&self, i: usize, j: usize) -> &[f64] {
        let start = (j * GRID + i) * self.classes;
        &self.probs[start..start + self.classes]
    }

    /// Marching squares on each class's margin p_c - max_{d != c} p_d: its
    /// zero line is where class c stops winning. Two classes need one pass.
    fn trace_boundaries(&mut self) {
        self.segments.clear();
        let k = self.classes;
        let passes = if k == 2 { 1 } else { k };
        for c in 0..passes {
            for (m, p) in self.margin.iter_mut().zip(self.probs.chunks_exact(k)) {
                let other = p.iter().enumerate().filter(|&(d, _)| d != c).map(|(_, &v)| v).fold(f64::NAN, f64::max);
                *m = p[c] - other;
            }
            march(&self.margin, &mut self.segments);
        }
    }
}

/// A piece is about [`MACS_PER_CALL`] multiply-adds' worth of rows; once the
/// last is done the new field is shown and the job is done (also when none is
/// under way).
impl Job for Field {
    fn advance(&mut self, _: &mut ()) -> bool {
        let Some(first) = self.next_row else { return true };
        let k = self.back_classes;
        let rows = (MACS_PER_CALL / (GRID * self.back_params).max(1)).max(1);
        let last = (first + rows).min(GRID);
        for j in first..last {
            let y = grid_to_data(0.0, j as f64 + 0.5).1;
            let row = &mut self.back[j * GRID * k..(j + 1) * GRID * k];
            let (first_net, others) = self.nets.split_first_mut().expect("at least one net");
            first_net.row_probs(&self.xs, y, row);
            if !others.is_empty() {
                self.member_row.resize(row.len(), 0.0);
                for net in others.iter_mut() {
                    net.row_probs(&self.xs, y, &mut self.member_row);
                    row.iter_mut().zip(&self.member_row).for_each(|(a, b)| *a += b);
                }
                let n = (others.len() + 1) as f64;
                row.iter_mut().for_each(|a| *a /= n);
            }
        }
        if last < GRID {
            self.next_row = Some(last);
            return false;
        }
        self.next_row = None;
        self.set_classes(k);
        std::mem::swap(&mut self.probs, &mut self.back);
        self.paint();
        true
    }

    /// Rows computed of the field under way, as a fraction of all.
    fn progress(&self) -> f64 {
        self.next_row.map_or(1.0, |row| row as f64 / GRID as f64)
    }

    fn is_done(&self) -> bool {
        self.next_row.is_none()
    }
}

/// Appends the zero crossings of `values` (a GRID x GRID field sampled at cell
/// centres) as segments, linearly interpolated along cell edges.
fn march(values: &[f64], segments: &mut Vec<f64>) {
    let at = |i: usize, j: usize| values[j * GRID + i];
    let mut crossings = [(0.0, 0.0); 4];
    for j in 0..GRID - 1 {
        for i in 0..GRID - 1 {
            // Corners clockwise from the top-left, as (u, v, value); centres sit at +0.5.
            let (u, v) = (i as f64 + 0.5, j as f64 + 0.5);
            let corners = [
                (u, v, at(i, j)),
                (u + 1.0, v, at(i + 1, j)),
                (u + 1.0, v + 1.0, at(i + 1, j + 1)),
                (u, v + 1.0, at(i, j + 1)),
            ];
            if corners.iter().any(|c| !c.2.is_finite()) {
                continue;
            }
            let mut n = 0;
            for e in 0..4 {
                let (a, b) = (corners[e], corners[(e + 1) % 4]);
                if (a.2 > 0.0) != (b.2 > 0.0) {
                    let t = a.2 / (a.2 - b.2);
                    crossings[n] = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
                    n += 1;
                }
            }
            // 2 crossings: one segment; 4 (a saddle): pair them in edge order.
            for pair in crossings[..n].chunks_exact(2) {
                segments.extend_from_slice(&[pair[0].0, pair[0].1, pair[1].0, pair[1].1]);
            }
        }
    }
}

/// Grid units (0..GRID, v downwards) to data coordinates.
pub fn grid_to_data(u: f64, v: f64) -> (f64, f64) {
    let cell = 2.0 * VIEW / GRID as f64;
    (-VIEW + u * cell, VIEW - v * cell)
}

/// Data coordinates to grid units.
pub fn data_to_grid(x: f64, y: f64) -> (f64, f64) {
    let cell = 2.0 * VIEW / GRID as f64;
    ((x + VIEW) / cell, (VIEW - y) / cell)
}
