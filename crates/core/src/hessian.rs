//! Exact second-order information about the mean loss of an [`Mlp`] on a dataset:
//! Hessian-vector products, lambda_max, top eigenpairs, trace, dense Hessian, spectrum.
//!
//! Hessian-vector products are exact (no finite-difference step): Pearlmutter's
//! R-operator, i.e. forward-mode differentiation of the backward pass. For a
//! direction v, every quantity q of the forward and backward pass gets a
//! tangent R{q} = d/dt q(w + t v) at t = 0, and R{grad} = H v. Per row and layer:
//!
//! ```text
//! forward:   R{z_l} = V_l a_{l-1} + c_l + W_l R{a_{l-1}},   R{a_l} = s'(z_l) R{z_l}
//! output:    R{delta_L} = (diag(p) - p p^T) R{z_L} / rows         (softmax cross-entropy)
//! backward:  R{gW_l} = R{delta_l} a_{l-1}^T + delta_l R{a_{l-1}}^T,   R{gb_l} = R{delta_l}
//!            R{delta_{l-1}} = s''(z_{l-1}) R{z_{l-1}} (W_l^T delta_l) + s'(z_{l-1}) (V_l^T delta_l + W_l^T R{delta_l})
//! ```
//!
//! where (V_l, c_l) is v's part for layer l. Everything that does not depend on
//! v (activations, s', s'' W^T delta, delta, softmax) is computed once when the
//! [`HessianOperator`] is built, so one product costs about two gradient passes.
//!
//! The dense Hessian is not built from one product per parameter: a unit
//! impulse on one pre-activation z_m[j] of a row gives, by linearity, the
//! Hessian entries of all parameters feeding z_m[j] at once (each scaled by its
//! input), so each layer needs only `fan_out` impulses per row, and the sum over
//! rows becomes one matrix product. The upper block triangle (layer m against
//! layers >= m) is filled that way and mirrored. See [`HessianOperator::dense`].

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use serde::{Deserialize, Serialize};

mod batched;

use crate::job::{self, Job};
use crate::model::{Layer, Mlp};
use crate::rng::Rng;

/// The largest network whose dense Hessian is built (its spectrum, the exact
/// trace): P^2 numbers of memory and O(P^3) time for the eigenvalues. 354
/// parameters (the reference net) take about 20 ms natively, 2048 about
/// 32 MiB and seconds; a 6 x 64 net (21122) would need 3.6 GB and hours.
/// Bigger networks get only the Hessian-vector-product measures.
pub const MAX_DENSE_PARAMS: usize = 2048;

/// The mean loss of `mlp` over fixed rows at fixed parameters, as a linear
/// operator v -> H v, with its loss and gradient.
#[derive(Clone, Debug)]
pub struct HessianOperator {
    cache: Cache,
    scratch: Scratch,
    /// The products' per-row tangents (see `batched`).
    batch: batched::Batch,
    hvps: usize,
}

/// Everything about the point w that a Hessian-vector product reuses.
#[derive(Clone, Debug)]
struct Cache {
    mlp: Mlp,
    params: Vec<f64>,
    rows: usize,
    inv_rows: f64,
    /// inputs[l]: the input of layer l for every row (`rows x fan_in`); inputs[0] is x.
    inputs: Vec<Vec<f64>>,
    /// Hidden layer l: s'(z_l) per row and unit.
    d1: Vec<Vec<f64>>,
    /// Hidden layer l: s''(z_l) * dL/da_l per row and unit.
    d2g: Vec<Vec<f64>>,
    /// delta[l] = dL/dz_l (mean loss, so already divided by rows).
    delta: Vec<Vec<f64>>,
    /// Softmax probabilities, `rows x classes`.
    probs: Vec<f64>,
    loss: f64,
    grad: Vec<f64>,
}

/// Per-row tangents, one vector per layer (width = fan_out of that layer).
#[derive(Clone, Debug)]
struct Scratch {
    rz: Vec<Vec<f64>>,
    ra: Vec<Vec<f64>>,
    rdelta: Vec<Vec<f64>>,
    rda: Vec<f64>,
    vtd: Vec<f64>,
}

/// What the R-pass differentiates along.
#[derive(Clone, Copy)]
enum Tangent<'a> {
    /// A parameter direction v (full H v). Products take it for all rows at
    /// once (`batched`); one row at a time it is what a test checks them against.
    #[cfg_attr(not(test), allow(dead_code))]
    Direction(&'a [f64]),
    /// A unit impulse on pre-activation `unit` of layer `layer`; only the
    /// gradient of parameters in layers >= `layer` is differentiated.
    Impulse { layer: usize, unit: usize },
}

impl HessianOperator {
    /// One forward and backward pass over all rows (`x` row-major `rows x inputs`).
    pub fn new(mlp: &Mlp, params: &[f64], x: &[f64], y: &[usize]) -> HessianOperator {
        assert_eq!(params.len(), mlp.num_params(), "parameters do not fit the model");
        assert_eq!(x.len(), y.len() * mlp.inputs, "one label per input row");
        assert!(!y.is_empty(), "a Hessian needs at least one row");
        let rows = y.len();
        let n_layers = mlp.layers.len();
        let k = mlp.classes;
        let inv_rows = 1.0 / rows as f64;
        let width = |l: usize| mlp.layers[l].fan_out;
        let mut inputs: Vec<Vec<f64>> = mlp.layers.iter().map(|l| vec![0.0; rows * l.fan_in]).collect();
        inputs[0].copy_from_slice(x);
        let mut d1: Vec<Vec<f64>> = (0..n_layers - 1).map(|l| vec![0.0; rows * width(l)]).collect();
        let mut d2g = d1.clone();
        let mut delta: Vec<Vec<f64>> = (0..n_layers).map(|l| vec![0.0; rows * width(l)]).collect();
        let mut probs = vec![0.0; rows * k];
        let mut grad = vec![0.0; params.len()];
        let mut loss = 0.0;
        let off_target = mlp.label_smoothing / k as f64;
        let mut z = vec![0.0; mlp.max_width()];
        let mut da = vec![0.0; mlp.max_width()];
        for r in 0..rows {
            // Forward, keeping s' and s'' (s'' is multiplied by dL/da on the way back).
            for (l, layer) in mlp.layers.iter().enumerate() {
                let (fi, fo) = (layer.fan_in, layer.fan_out);
                let input = &inputs[l][r * fi..(r + 1) * fi];
                for (j, zj) in z[..fo].iter_mut().enumerate() {
                    *zj = params[layer.bias_offset + j] + dot(weight_row(layer, params, j), input);
                }
                if l + 1 < n_layers {
                    for j in 0..fo {
                        let a = mlp.activation.apply(z[j]);
                        inputs[l + 1][r * fo + j] = a;
                        d1[l][r * fo + j] = mlp.activation.derivative(z[j], a);
                        d2g[l][r * fo + j] = mlp.activation.second_derivative(z[j], a);
                    }
                }
            }
            // Softmax cross-entropy on the logits z[..k] (same formula as crate::loss).
            let logits = &z[..k];
            let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let sum_exp: f64 = logits.iter().map(|&v| libm::exp(v - max)).sum();
            let log_z = max + libm::log(sum_exp);
            for (c, &v) in logits.iter().enumerate() {
                let q = off_target + if c == y[r] { 1.0 - mlp.label_smoothing } else { 0.0 };
                if q != 0.0 {
                    loss -= q * (v - log_z);
                }
                let p = libm::exp(v - log_z);
                probs[r * k + c] = p;
                delta[n_layers - 1][r * k + c] = (p - q) * inv_rows;
            }
            // Backward.
            for l in (0..n_layers).rev() {
                let layer = &mlp.layers[l];
                let (fi, fo) = (layer.fan_in, layer.fan_out);
                let input = &inputs[l][r * fi..(r + 1) * fi];
                let (lower, upper) = delta.split_at_mut(l);
                let d = &upper[0][r * fo..(r + 1) * fo];
                outer_add(&mut grad[layer.weight_offset..layer.bias_offset], d, input);
                for (g, &dj) in grad[layer.bias_offset..layer.bias_offset + fo].iter_mut().zip(d) {
                    *g += dj;
                }
                if l > 0 {
                    let da = &mut da[..fi];
                    transpose_mul(layer, params, d, da);
                    let idx = r * fi..(r + 1) * fi;
                    let rows = d2g[l - 1][idx.clone()].iter_mut().zip(&mut lower[l - 1][idx.clone()]);
                    for ((g2, dl), (&s1, &a)) in rows.zip(d1[l - 1][idx].iter().zip(da.iter())) {
                        *g2 *= a;
                        *dl = s1 * a;
                    }
                }
            }
        }
        let cache = Cache {
            mlp: mlp.clone(),
            params: params.to_vec(),
            rows,
            inv_rows,
            inputs,
            d1,
            d2g,
            delta,
            probs,
            loss: loss * inv_rows,
            grad,
        };
        let scratch = Scratch {
            rz: (0..n_layers).map(|l| vec![0.0; width(l)]).collect(),
            ra: (0..n_layers).map(|l| vec![0.0; width(l)]).collect(),
            rdelta: (0..n_layers).map(|l| vec![0.0; width(l)]).collect(),
            rda: vec![0.0; mlp.max_width()],
            vtd: vec![0.0; mlp.max_width()],
        };
        HessianOperator { cache, scratch, batch: batched::Batch::default(), hvps: 0 }
    }

    /// Number of network parameters: the Hessian is this size squared.
    pub fn num_params(&self) -> usize {
        self.cache.params.len()
    }

    /// Number of training rows the loss (and so the Hessian) averages over.
    pub fn rows(&self) -> usize {
        self.cache.rows
    }

    /// The weights (f64) at which the Hessian is taken.
    pub fn params(&self) -> &[f64] {
        &self.cache.params
    }

    /// The network whose loss the Hessian belongs to.
    pub fn mlp(&self) -> &Mlp {
        &self.cache.mlp
    }

    /// Mean loss at the point.
    pub fn loss(&self) -> f64 {
        self.cache.loss
    }

    /// Gradient of the mean loss at the point.
    pub fn grad(&self) -> &[f64] {
        &self.cache.grad
    }

    /// How many Hessian-vector products this operator has computed (cost accounting).
    pub fn hvp_count(&self) -> usize {
        self.hvps
    }

    /// `out = H v`, exact. Costs about two gradient evaluations over the rows.
    /// All rows at once (`batched`): the same bits as the row-by-row R-pass.
    pub fn hvp(&mut self, v: &[f64], out: &mut [f64]) {
        assert_eq!(v.len(), self.num_params());
        assert_eq!(out.len(), self.num_params());
        batched::hvp(&self.cache, &mut self.batch, v, out);
        self.hvps += 1;
    }

    /// [`HessianOperator::hvp`] one row at a time through [`r_pass`]: what the
    /// batched product is checked against.
    #[cfg(test)]
    fn hvp_row_by_row(&mut self, v: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        for r in 0..self.cache.rows {
            r_pass(&self.cache, &mut self.scratch, r, Tangent::Direction(v), out);
        }
    }

    /// The dense Hessian (symmetric, `P x P`), by layer-wise impulses: for a net
    /// with P parameters and N rows about N * P^2 / 2 multiply-adds, one block
    /// per hidden unit, instead of P separate products (~4 N P^2). A
    /// [`DenseHessian`] run to its end.
    pub fn dense(&mut self) -> DMatrix<f64> {
        let mut builder = DenseHessian::new(self);
        while !builder.step(self) {}
        builder.finish(self)
    }

    /// All eigenvalues of the dense Hessian, largest first, or None for a network
    /// above [`MAX_DENSE_PARAMS`] (whose matrix would not fit, or take hours).
    pub fn dense_spectrum(&mut self) -> Option<Vec<f64>> {
        (self.num_params() <= MAX_DENSE_PARAMS).then(|| spectrum(&self.dense()))
    }

    /// The Hessian's diagonal, exact, without the dense matrix: its sum is the
    /// exact trace. Per row, the Hessian of the loss with respect to each
    /// layer's pre-activations, G_l = d delta_l / d z_l, is carried backwards
    /// (G_out = (diag p - p p^T) / rows; G_{l-1} = diag(s''(z) dL/da) +
    /// diag(s'(z)) W_l^T G_l W_l diag(s'(z)), the impulse responses of
    /// [`DenseHessian`] collected as a matrix), and H[w_ji, w_ji] adds
    /// a_i^2 G_l[j, j], H[b_j, b_j] adds G_l[j, j]. For the reference net about
    /// 5k multiply-adds per row, a fraction of one dense Hessian. Sums run over
    /// the rows in order by our own loops, so every platform gets the same bits.
    pub fn diagonal(&self) -> Vec<f64> {
        let c = &self.cache;
        let layers = &c.mlp.layers;
        let k = c.mlp.classes;
        let mut diag = vec![0.0; c.params.len()];
        // G of the current layer (fo x fo, row-major), G W (fo x fi), the next G, and
        // the diagonal of W^T G W where only that is needed.
        let (mut g, mut gw, mut next, mut m_diag) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // Where `Iterator::sum` starts (-0.0 in today's Rust): the sums below add their
        // terms one by one from it, so that they keep the bits of the `.sum()`s they replaced.
        let zero: f64 = std::iter::empty::<f64>().sum();
        for r in 0..c.rows {
            let p = &c.probs[r * k..(r + 1) * k];
            g.clear();
            for a in 0..k {
                g.extend((0..k).map(|b| (if a == b { p[a] } else { 0.0 } - p[a] * p[b]) * c.inv_rows));
            }
            for l in (0..layers.len()).rev() {
                let layer = &layers[l];
                let (fi, fo) = (layer.fan_in, layer.fan_out);
                let input = &c.inputs[l][r * fi..(r + 1) * fi];
                for j in 0..fo {
                    let gjj = g[j * fo + j];
                    let start = layer.weight_offset + j * fi;
                    for (d, &a) in diag[start..start + fi].iter_mut().zip(input) {
                        *d += gjj * a * a;
                    }
                    diag[layer.bias_offset + j] += gjj;
                }
                if l == 0 {
                    break;
                }
                // gw = G W (fo x fi): row a of G times W, W's rows added in turn (a
                // vectorised multiply-add over W's contiguous rows); each entry adds its
                // terms in the order of, and from the start value of, a plain `.sum()`.
                let w = &c.params[layer.weight_offset..layer.weight_offset + fo * fi];
                gw.clear();
                gw.resize(fo * fi, zero);
                for (g_row, gw_row) in g.chunks_exact(fo).zip(gw.chunks_exact_mut(fi)) {
                    for (&gab, w_row) in g_row.iter().zip(w.chunks_exact(fi)) {
                        for (x, &wbi) in gw_row.iter_mut().zip(w_row) {
                            *x += gab * wbi;
                        }
                    }
                }
                // next = diag(d2g) + diag(d1) W^T (G W) diag(d1); below the first hidden
                // layer only its diagonal is used, so only that is computed there. m[i][i2]
                // = sum over a of W[a][i] * gw[a][i2], a row of W and of gw at a time.
                let idx = r * fi..(r + 1) * fi;
                let (d1, d2g) = (&c.d1[l - 1][idx.clone()], &c.d2g[l - 1][idx]);
                next.clear();
                if l == 1 {
                    m_diag.clear();
                    m_diag.resize(fi, zero);
                    for (w_row, gw_row) in w.chunks_exact(fi).zip(gw.chunks_exact(fi)) {
                        for ((m, &wai), &x) in m_diag.iter_mut().zip(w_row).zip(gw_row) {
                            *m += wai * x;
                        }
                    }
                    next.resize(fi * fi, 0.0);
                    for (i, &m) in m_diag.iter().enumerate() {
                        next[i * fi + i] = d1[i] * m * d1[i] + d2g[i];
                    }
                } else {
                    next.resize(fi * fi, zero);
                    for (i, next_row) in next.chunks_exact_mut(fi).enumerate() {
                        for (w_row, gw_row) in w.chunks_exact(fi).zip(gw.chunks_exact(fi)) {
                            let wai = w_row[i];
                            for (m, &x) in next_row.iter_mut().zip(gw_row) {
                                *m += wai * x;
                            }
                        }
                        for (i2, m) in next_row.iter_mut().enumerate() {
                            *m = d1[i] * *m * d1[i2] + if i == i2 { d2g[i] } else { 0.0 };
                        }
                    }
                }
                std::mem::swap(&mut g, &mut next);
            }
        }
        diag
    }

    /// The exact Hessian trace: the sum of [`HessianOperator::diagonal`].
    pub fn exact_trace(&self) -> f64 {
        self.diagonal().iter().sum()
    }

    /// The dense Hessian the slow way, one product per basis vector, without
    /// symmetrising: a reference for tests.
    pub fn dense_by_hvp(&mut self) -> DMatrix<f64> {
        let p = self.num_params();
        let mut h = DMatrix::<f64>::zeros(p, p);
        let mut e = vec![0.0; p];
        let mut col = vec![0.0; p];
        for i in 0..p {
            e[i] = 1.0;
            self.hvp(&e, &mut col);
            h.column_mut(i).copy_from_slice(&col);
            e[i] = 0.0;
        }
        h
    }
}

/// The dense Hessian built a block per [`DenseHessian::step`] call (one
/// hidden or output unit: its rows' impulse responses and their product with
/// the unit's inputs), so that a page can spread it over short tasks.
///
/// Every entry is a sum over the rows in order, by our own loop: nalgebra's
/// matrix product goes through matrixmultiply, whose x86 kernels (FMA) round
/// differently from wasm's, and a study's numbers must be the same bits on
/// every platform.
pub struct DenseHessian {
    h: DMatrix<f64>,
    /// The next (layer, unit).
    layer: usize,
    unit: usize,
    /// Scratch: one row's response, and the unit's block of the matrix as it
    /// sums over the rows (one row of sums per input of the unit, then its bias).
    response: Vec<f64>,
    sums: Vec<f64>,
}

impl DenseHessian {
    /// A dense Hessian of `op`'s network to be built a block of columns at a time.
    pub fn new(op: &HessianOperator) -> DenseHessian {
        let p = op.num_params();
        DenseHessian { h: DMatrix::zeros(p, p), layer: 0, unit: 0, response: vec![0.0; p], sums: Vec::new() }
    }

    /// Computes the next unit's block; returns whether the matrix is complete.
    pub fn step(&mut self, op: &mut HessianOperator) -> bool {
        let c = &op.cache;
        let Some(layer) = c.mlp.layers.get(self.layer) else { return true };
        let (p, rows, m, j) = (c.params.len(), c.rows, self.layer, self.unit);
        let (fi, col0) = (layer.fan_in, layer.weight_offset);
        let ncols = p - col0;
        // h[row(i), col0 + col] = the sum over rows r, in order, of row r's response in
        // column col times input i of row r (1 for the bias). Row by row, each input's
        // sums take the whole response at once (a vectorised multiply-add over the
        // columns, where one sum at a time waited on its own additions); each sum
        // still adds its rows in order from 0, so the bits are the same.
        self.sums.clear();
        self.sums.resize((fi + 1) * ncols, 0.0);
        for r in 0..rows {
            self.response[col0..].fill(0.0);
            r_pass(c, &mut op.scratch, r, Tangent::Impulse { layer: m, unit: j }, &mut self.response);
            let response = &self.response[col0..];
            let input = &c.inputs[m][r * fi..(r + 1) * fi];
            for (i, sums) in self.sums.chunks_exact_mut(ncols).enumerate() {
                let a = if i < fi { input[i] } else { 1.0 };
                for (sum, &v) in sums.iter_mut().zip(response) {
                    *sum += v * a;
                }
            }
        }
        for (i, sums) in self.sums.chunks_exact(ncols).enumerate() {
            let row = if i < fi { layer.weight_offset + j * fi + i } else { layer.bias_offset + j };
            for (col, &sum) in sums.iter().enumerate() {
                self.h[(row, col0 + col)] = sum;
            }
        }
        self.unit += 1;
        if self.unit == layer.fan_out {
            (self.layer, self.unit) = (self.layer + 1, 0);
        }
        self.layer >= c.mlp.layers.len()
    }

    /// Fraction of the blocks done (by units), in [0, 1].
    pub fn progress(&self, op: &HessianOperator) -> f64 {
        let layers = &op.cache.mlp.layers;
        let total: usize = layers.iter().map(|l| l.fan_out).sum();
        let done: usize = layers[..self.layer.min(layers.len())].iter().map(|l| l.fan_out).sum::<usize>() + self.unit;
        done as f64 / total.max(1) as f64
    }

    /// The symmetric matrix: the blocks below the diagonal mirrored, the
    /// diagonal blocks averaged with their transposes (symmetric up to rounding).
    pub fn finish(mut self, op: &HessianOperator) -> DMatrix<f64> {
        let h = &mut self.h;
        for layer in &op.cache.mlp.layers {
            let start = layer.weight_offset;
            let end = start + layer.num_params();
            for row in start..end {
                for col in 0..start {
                    h[(row, col)] = h[(col, row)];
                }
                for col in start..row {
                    let mean = 0.5 * (h[(row, col)] + h[(col, row)]);
                    h[(row, col)] = mean;
                    h[(col, row)] = mean;
                }
            }
        }
        self.h
    }
}

/// One row's contribution to R{grad} along `tangent`, added into `out`.
fn r_pass(c: &Cache, s: &mut Scratch, r: usize, tangent: Tangent, out: &mut [f64]) {
    let layers = &c.mlp.layers;
    let n_layers = layers.len();
    let w = &c.params;
    let start = match tangent {
        Tangent::Direction(_) => 0,
        Tangent::Impulse { layer, .. } => layer,
    };
    // Forward tangents from the first affected layer up.
    for (l, layer) in layers.iter().enumerate().skip(start) {
        let (fi, fo) = (layer.fan_in, layer.fan_out);
        let rz = &mut s.rz[l][..fo];
        match tangent {
            Tangent::Direction(v) => {
                let input = &c.inputs[l][r * fi..(r + 1) * fi];
                for (j, rzj) in rz.iter_mut().enumerate() {
                    *rzj = v[layer.bias_offset + j] + dot(weight_row(layer, v, j), input);
                }
            }
            Tangent::Impulse { unit, .. } => {
                rz.fill(0.0);
                if l == start {
                    rz[unit] = 1.0;
                }
            }
        }
        if l > start {
            let ra_prev = &s.ra[l - 1][..fi];
            for (j, rzj) in rz.iter_mut().enumerate() {
                *rzj += dot(weight_row(layer, w, j), ra_prev);
            }
        }
        if l + 1 < n_layers {
            let d1 = &c.d1[l][r * fo..(r + 1) * fo];
            for ((ra, &rzj), &d) in s.ra[l][..fo].iter_mut().zip(rz.iter()).zip(d1) {
                *ra = d * rzj;
            }
        }
    }
    // Through the softmax: R{delta_L} = (diag p - p p^T) R{z_L} / rows.
    let last = n_layers - 1;
    let k = c.mlp.classes;
    let p = &c.probs[r * k..(r + 1) * k];
    let pz = dot(p, &s.rz[last][..k]);
    for ((rd, &pj), &rzj) in s.rdelta[last][..k].iter_mut().zip(p).zip(&s.rz[last][..k]) {
        *rd = pj * (rzj - pz) * c.inv_rows;
    }
    // Backward tangents down to the first affected layer.
    for l in (start..n_layers).rev() {
        let layer = &layers[l];
        let (fi, fo) = (layer.fan_in, layer.fan_out);
        let input = &c.inputs[l][r * fi..(r + 1) * fi];
        let d = &c.delta[l][r * fo..(r + 1) * fo];
        let (lower, upper) = s.rdelta.split_at_mut(l);
        let rd = &upper[0][..fo];
        outer_add(&mut out[layer.weight_offset..layer.bias_offset], rd, input);
        if l > start {
            outer_add(&mut out[layer.weight_offset..layer.bias_offset], d, &s.ra[l - 1][..fi]);
        }
        for (o, &rdj) in out[layer.bias_offset..layer.bias_offset + fo].iter_mut().zip(rd) {
            *o += rdj;
        }
        if l > start {
            let rda = &mut s.rda[..fi];
            transpose_mul(layer, w, rd, rda);
            if let Tangent::Direction(v) = tangent {
                let vtd = &mut s.vtd[..fi];
                transpose_mul(layer, v, d, vtd);
                for (a, b) in rda.iter_mut().zip(vtd.iter()) {
                    *a += b;
                }
            }
            let idx = r * fi..(r + 1) * fi;
            let (d1, d2g) = (&c.d1[l - 1][idx.clone()], &c.d2g[l - 1][idx]);
            for i in 0..fi {
                lower[l - 1][i] = d2g[i] * s.rz[l - 1][i] + d1[i] * rda[i];
            }
        }
    }
}

#[inline]
fn weight_row<'a>(layer: &Layer, params: &'a [f64], j: usize) -> &'a [f64] {
    let start = layer.weight_offset + j * layer.fan_in;
    &params[start..start + layer.fan_in]
}

/// m[j, i] += a[j] * b[i] for a row-major `a.len() x b.len()` block.
#[inline]
fn outer_add(m: &mut [f64], a: &[f64], b: &[f64]) {
    for (row, &aj) in m.chunks_exact_mut(b.len()).zip(a) {
        for (mji, &bi) in row.iter_mut().zip(b) {
            *mji += aj * bi;
        }
    }
}

/// out[i] = sum_j W[j, i] * d[j] for the layer's weight block in `params`.
#[inline]
fn transpose_mul(layer: &Layer, params: &[f64], d: &[f64], out: &mut [f64]) {
    out.fill(0.0);
    for (j, &dj) in d.iter().enumerate() {
        for (o, &wji) in out.iter_mut().zip(weight_row(layer, params, j)) {
            *o += wji * dj;
        }
    }
}

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(v: &[f64]) -> f64 {
    libm::sqrt(dot(v, v))
}

/// A unit vector with i.i.d. normal entries.
fn random_unit(n: usize, rng: &mut Rng) -> Vec<f64> {
    let mut v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let s = 1.0 / norm(&v);
    v.iter_mut().for_each(|x| *x *= s);
    v
}

/// Eigenvectors are defined up to sign: make the largest-magnitude entry positive,
/// so a seed always gives the same picture.
pub fn canonical_sign(v: &mut [f64]) {
    let mut best = 0.0f64;
    let mut sign = 1.0;
    for &x in v.iter() {
        if x.abs() > best.abs() {
            best = x;
            sign = if x < 0.0 { -1.0 } else { 1.0 };
        }
    }
    v.iter_mut().for_each(|x| *x *= sign);
}

/// One eigenvalue estimate and its (unit) eigenvector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EigenEstimate {
    /// The eigenvalue estimate: the last Rayleigh quotient v^T H v.
    pub value: f64,
    /// The unit eigenvector, with a fixed sign so that runs compare.
    pub vector: Vec<f64>,
    /// Hessian-vector products used.
    pub iterations: usize,
    /// Whether the relative change fell below the tolerance before the limit.
    pub converged: bool,
}

/// Power iteration as in PyHessian: v <- H v / ||H v||, eigenvalue v^T H v,
/// stop when it changes by less than `tolerance` relative (PyHessian: 100
/// iterations, 1e-3). Finds the eigenvalue of largest magnitude, which at (or
/// near) a minimum is lambda_max.
pub fn power_iteration(
    op: &mut HessianOperator,
    rng: &mut Rng,
    max_iterations: usize,
    tolerance: f64,
) -> EigenEstimate {
    let mut p = PowerIteration::new(op.num_params(), rng, max_iterations, tolerance);
    job::finish(&mut p, op);
    p.finish()
}

/// lambda_max of the preconditioned Hessian P^-1 H for a diagonal
/// preconditioner `p` (all entries > 0): the sharpness Adam's edge of
/// stability bounds (Cohen et al. 2022). P^-1 H is similar to the symmetric
/// P^-1/2 H P^-1/2, whose largest eigenvalue power iteration finds with one
/// Hessian-vector product per iteration (same stopping rule as [`power_iteration`]).
pub fn preconditioned_lambda_max(
    op: &mut HessianOperator,
    p: &[f64],
    rng: &mut Rng,
    max_iterations: usize,
    tolerance: f64,
) -> f64 {
    let scale: Vec<f64> = p.iter().map(|&pi| 1.0 / pi.sqrt()).collect();
    let mut v = random_unit(op.num_params(), rng);
    let (mut scaled, mut hv) = (vec![0.0; v.len()], vec![0.0; v.len()]);
    let mut value: Option<f64> = None;
    for _ in 0..max_iterations.max(1) {
        scaled.iter_mut().zip(&v).zip(&scale).for_each(|((s, vi), c)| *s = vi * c);
        op.hvp(&scaled, &mut hv);
        hv.iter_mut().zip(&scale).for_each(|(h, c)| *h *= c); // P^-1/2 H P^-1/2 v
        let estimate = dot(&v, &hv);
        let size = norm(&hv);
        if size == 0.0 {
            return 0.0;
        }
        v.iter_mut().zip(&hv).for_each(|(vi, h)| *vi = h / size);
        let previous = value.replace(estimate);
        if previous.is_some_and(|prev| (estimate - prev).abs() / (prev.abs() + 1e-6) < tolerance) {
            break;
        }
    }
    value.unwrap_or(0.0)
}

/// [`power_iteration`] a product at a time, so that the page can stop between
/// products (one costs ~0.05 ms for the reference net, ~10 ms for a 6 x 64 one).
#[derive(Clone, Debug)]
pub struct PowerIteration {
    v: Vec<f64>,
    hv: Vec<f64>,
    value: Option<f64>,
    iterations: usize,
    max_iterations: usize,
    tolerance: f64,
    converged: bool,
    done: bool,
}

impl PowerIteration {
    /// Starts from a random unit vector of length `n` drawn from `rng`; stops after
    /// `max_iterations` products or a relative change below `tolerance`.
    pub fn new(n: usize, rng: &mut Rng, max_iterations: usize, tolerance: f64) -> PowerIteration {
        PowerIteration {
            v: random_unit(n, rng),
            hv: vec![0.0; n],
            value: None,
            iterations: 0,
            max_iterations: max_iterations.max(1),
            tolerance,
            converged: false,
            done: false,
        }
    }

    /// The result: the last estimate (0 if no product was taken) and its vector, sign fixed.
    pub fn finish(mut self) -> EigenEstimate {
        canonical_sign(&mut self.v);
        let (value, iterations, converged) = (self.value.unwrap_or(0.0), self.iterations, self.converged);
        EigenEstimate { value, vector: self.v, iterations, converged }
    }
}

/// A piece is one Hessian-vector product; done once the estimate has converged
/// or the iterations are spent (then [`PowerIteration::finish`]).
impl Job<HessianOperator> for PowerIteration {
    fn advance(&mut self, op: &mut HessianOperator) -> bool {
        if self.done {
            return true;
        }
        op.hvp(&self.v, &mut self.hv);
        self.iterations += 1;
        let estimate = dot(&self.v, &self.hv);
        let size = norm(&self.hv);
        if size == 0.0 {
            self.value = Some(0.0);
            self.converged = true;
            self.done = true;
            return true;
        }
        self.v.iter_mut().zip(&self.hv).for_each(|(vi, h)| *vi = h / size);
        let previous = self.value.replace(estimate);
        self.converged = previous.is_some_and(|prev| (estimate - prev).abs() / (prev.abs() + 1e-6) < self.tolerance);
        self.done = self.converged || self.iterations >= self.max_iterations;
        self.done
    }

    /// Products taken, as a fraction of the most it may take.
    fn progress(&self) -> f64 {
        self.iterations as f64 / self.max_iterations as f64
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// The largest eigenvalues (descending) with unit eigenvectors and residuals ||H x - lambda x||.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Eigenpairs {
    /// Eigenvalues, largest first.
    pub values: Vec<f64>,
    /// Unit eigenvector for each eigenvalue, in the same order.
    pub vectors: Vec<Vec<f64>>,
    /// Residual ||H x - lambda x|| for each pair: near 0 means the pair is accurate.
    pub residuals: Vec<f64>,
    /// Hessian-vector products used.
    pub hvps: usize,
}

/// The `k` algebraically largest eigenpairs by Lanczos with full
/// reorthogonalisation (`steps` products; 30 to 40 give the top few to many
/// digits for these nets). The small tridiagonal problem goes to nalgebra.
pub fn top_eigenpairs(op: &mut HessianOperator, k: usize, steps: usize, rng: &mut Rng) -> Eigenpairs {
    let mut lanczos = Lanczos::new(op.num_params(), k, steps, rng);
    job::finish(&mut lanczos, op);
    lanczos.finish()
}

/// [`top_eigenpairs`] a product at a time, so that the page can stop between
/// products (40 of them take ~8 ms for the reference net, ~0.35 s for a 6 x 64 one).
#[derive(Clone, Debug)]
pub struct Lanczos {
    k: usize,
    /// Products to take at most.
    m: usize,
    basis: Vec<Vec<f64>>,
    alpha: Vec<f64>,
    beta: Vec<f64>,
    w: Vec<f64>,
    done: bool,
}

impl Lanczos {
    /// A search for the top `k` eigenpairs of an `n`-parameter Hessian, taking at
    /// most `steps` products, from a random start vector drawn from `rng`.
    pub fn new(n: usize, k: usize, steps: usize, rng: &mut Rng) -> Lanczos {
        let m = steps.clamp(k.max(1), n);
        Lanczos {
            k,
            m,
            basis: vec![random_unit(n, rng)],
            alpha: Vec::with_capacity(m),
            beta: Vec::with_capacity(m),
            w: vec![0.0; n],
            done: false,
        }
    }

    /// The top `k` eigenpairs of the tridiagonal matrix built so far, lifted back.
    pub fn finish(self) -> Eigenpairs {
        let (n, k, basis, alpha, beta) = (self.w.len(), self.k, self.basis, self.alpha, self.beta);
        let size = alpha.len();
        let t = DMatrix::from_fn(size, size, |i, j| {
            if i == j {
                alpha[i]
            } else if i + 1 == j {
                beta[i]
            } else if j + 1 == i {
                beta[j]
            } else {
                0.0
            }
        });
        let eig = SymmetricEigen::new(t);
        let order = crate::stats::largest_first(eig.eigenvalues.as_slice());
        let last_beta = *beta.last().unwrap_or(&0.0);
        let mut out = Eigenpairs { values: vec![], vectors: vec![], residuals: vec![], hvps: size };
        for &i in order.iter().take(k) {
            let y = eig.eigenvectors.column(i);
            let mut x = vec![0.0; n];
            for (q, &yj) in basis.iter().zip(y.iter()) {
                x.iter_mut().zip(q).for_each(|(xi, qi)| *xi += yj * qi);
            }
            let s = 1.0 / norm(&x);
            x.iter_mut().for_each(|xi| *xi *= s);
            canonical_sign(&mut x);
            out.values.push(eig.eigenvalues[i]);
            // Lanczos residual: ||H x - theta x|| = |beta_m * y_m|.
            out.residuals.push((last_beta * y[size - 1]).abs());
            out.vectors.push(x);
        }
        out
    }
}

/// A piece is one Hessian-vector product and the basis vector it gives; done
/// once the basis is complete (then [`Lanczos::finish`]).
impl Job<HessianOperator> for Lanczos {
    fn advance(&mut self, op: &mut HessianOperator) -> bool {
        if self.done {
            return true;
        }
        let j = self.alpha.len();
        let w = &mut self.w;
        op.hvp(&self.basis[j], w);
        let a = dot(&self.basis[j], w);
        self.alpha.push(a);
        // Full reorthogonalisation, twice ("twice is enough"), keeps the basis orthonormal.
        for _ in 0..2 {
            for q in &self.basis {
                let c = dot(q, w);
                w.iter_mut().zip(q).for_each(|(wi, qi)| *wi -= c * qi);
            }
        }
        let b = norm(w);
        self.beta.push(b);
        if j + 1 == self.m || b < 1e-12 * a.abs().max(1e-12) {
            self.done = true;
        } else {
            self.basis.push(w.iter().map(|x| x / b).collect());
        }
        self.done
    }

    /// Products taken, as a fraction of the most it may take.
    fn progress(&self) -> f64 {
        if self.done {
            1.0
        } else {
            self.alpha.len() as f64 / self.m as f64
        }
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// A stochastic trace estimate with its standard error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceEstimate {
    /// The trace estimate: the mean of v^T H v over the draws.
    pub value: f64,
    /// Standard error of that mean (it shrinks like 1 / sqrt(samples)).
    pub std_error: f64,
    /// Number of random vectors drawn.
    pub samples: usize,
}

/// Hutchinson: tr H = E[v^T H v] for Rademacher v; mean over `samples` draws.
pub fn hutchinson_trace(op: &mut HessianOperator, samples: usize, rng: &mut Rng) -> TraceEstimate {
    let mut h = Hutchinson::new(op.num_params(), samples, rng.clone());
    job::finish(&mut h, op);
    // The caller's stream goes on after the draws, as if it had drawn them itself.
    *rng = h.rng.clone();
    h.finish()
}

/// [`hutchinson_trace`] a draw (one product) at a time.
#[derive(Clone, Debug)]
pub struct Hutchinson {
    /// The stream the Rademacher vectors are drawn from.
    rng: Rng,
    v: Vec<f64>,
    hv: Vec<f64>,
    draws: Vec<f64>,
    samples: usize,
}

impl Hutchinson {
    /// An estimate for an `n`-parameter Hessian from `samples` Rademacher
    /// vectors (at least 1) drawn from `rng`.
    pub fn new(n: usize, samples: usize, rng: Rng) -> Hutchinson {
        let samples = samples.max(1);
        Hutchinson { rng, v: vec![0.0; n], hv: vec![0.0; n], draws: Vec::with_capacity(samples), samples }
    }

    /// The mean and standard error of the draws taken so far.
    pub fn finish(self) -> TraceEstimate {
        let (value, std_error) = crate::stats::mean_and_std_error(&self.draws);
        TraceEstimate { value, std_error, samples: self.samples }
    }
}

/// A piece is one draw v^T H v (one product); done once all are in (then
/// [`Hutchinson::finish`]).
impl Job<HessianOperator> for Hutchinson {
    fn advance(&mut self, op: &mut HessianOperator) -> bool {
        if self.draws.len() < self.samples {
            let rng = &mut self.rng;
            self.v.iter_mut().for_each(|x| *x = rng.sign());
            op.hvp(&self.v, &mut self.hv);
            self.draws.push(dot(&self.v, &self.hv));
        }
        self.is_done()
    }

    fn progress(&self) -> f64 {
        self.draws.len() as f64 / self.samples as f64
    }

    fn is_done(&self) -> bool {
        self.draws.len() >= self.samples
    }
}

/// All eigenvalues of a symmetric matrix, largest first.
pub fn spectrum(h: &DMatrix<f64>) -> Vec<f64> {
    let values: Vec<f64> = h.clone().symmetric_eigenvalues().iter().copied().collect();
    crate::stats::largest_first(&values).into_iter().map(|i| values[i]).collect()
}

/// Full eigen-decomposition, largest eigenvalue first, unit eigenvectors with canonical sign.
pub fn eigen_decomposition(h: &DMatrix<f64>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let eig = SymmetricEigen::new(h.clone());
    let order = crate::stats::largest_first(eig.eigenvalues.as_slice());
    let values = order.iter().map(|&i| eig.eigenvalues[i]).collect();
    let vectors = order
        .iter()
        .map(|&i| {
            let mut v: Vec<f64> = eig.eigenvectors.column(i).iter().copied().collect();
            canonical_sign(&mut v);
            v
        })
        .collect();
    (values, vectors)
}

/// `v^T H v / v^T v` for a dense matrix (tests and reports).
pub fn rayleigh(h: &DMatrix<f64>, v: &[f64]) -> f64 {
    let v = DVector::from_column_slice(v);
    (v.transpose() * h * &v)[(0, 0)] / v.norm_squared()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::model::{ModelConfig, Workspace};

    #[test]
    fn preconditioned_lambda_max_is_the_top_eigenvalue_of_the_scaled_dense_hessian() {
        let mlp = Mlp::new(2, &ModelConfig { hidden: vec![5], ..Default::default() }, 2);
        let mut rng = Rng::new(21);
        let w = mlp.init_params(&mut rng);
        let x: Vec<f64> = (0..40).map(|_| rng.normal()).collect();
        let y: Vec<usize> = (0..20).map(|r| usize::from(x[2 * r] > 0.0)).collect();
        let p: Vec<f64> = (0..w.len()).map(|_| rng.uniform_in(0.05, 3.0)).collect();
        let mut op = HessianOperator::new(&mlp, &w, &x, &y);
        let mut scaled = op.dense();
        for i in 0..w.len() {
            for j in 0..w.len() {
                scaled[(i, j)] /= (p[i] * p[j]).sqrt();
            }
        }
        let values = spectrum(&scaled);
        let dominant =
            if values[0].abs() >= values[values.len() - 1].abs() { values[0] } else { values[values.len() - 1] };
        let got = preconditioned_lambda_max(&mut op, &p, &mut Rng::new(1), 2000, 1e-12);
        assert!((got - dominant).abs() <= 1e-6 * dominant.abs(), "{got} vs {dominant}");
    }

    fn random_problem(hidden: Vec<usize>, activation: Activation, classes: usize, rows: usize, seed: u64) -> Problem {
        let config = ModelConfig { hidden, activation, label_smoothing: 0.05, dropout: vec![] };
        let mlp = Mlp::new(2, &config, classes);
        let mut rng = Rng::new(seed);
        let params: Vec<f64> = mlp.init_params(&mut rng).iter().map(|p| 2.0 * p).collect();
        let x: Vec<f64> = (0..rows * 2).map(|_| rng.normal()).collect();
        let y: Vec<usize> = (0..rows).map(|_| rng.below(classes)).collect();
        Problem { mlp, params, x, y }
    }

    struct Problem {
        mlp: Mlp,
        params: Vec<f64>,
        x: Vec<f64>,
        y: Vec<usize>,
    }

    impl Problem {
        fn grad_at(&self, p: &[f64], ws: &mut Workspace) -> Vec<f64> {
            let mut g = vec![0.0; p.len()];
            self.mlp.loss_and_grad(p, &self.x, &self.y, &mut g, ws);
            g
        }
    }

    #[test]
    fn operator_loss_and_gradient_match_the_model() {
        let pb = random_problem(vec![5, 4], Activation::Gelu, 3, 9, 1);
        let op = HessianOperator::new(&pb.mlp, &pb.params, &pb.x, &pb.y);
        let mut ws = Workspace::new();
        let mut g = vec![0.0; pb.params.len()];
        let loss = pb.mlp.loss_and_grad(&pb.params, &pb.x, &pb.y, &mut g, &mut ws);
        assert!((op.loss() - loss).abs() < 1e-14);
        for (a, b) in op.grad().iter().zip(&g) {
            assert!((a - b).abs() < 1e-14);
        }
    }

    #[test]
    fn batched_hvp_has_the_bits_of_the_row_by_row_r_pass() {
        for activation in Activation::ALL {
            for (hidden, classes) in [(vec![], 2), (vec![6], 3), (vec![16, 16], 2), (vec![5, 9, 3], 4), (vec![20], 2)] {
                let pb = random_problem(hidden.clone(), activation, classes, 37, 5);
                let mut op = HessianOperator::new(&pb.mlp, &pb.params, &pb.x, &pb.y);
                let mut rng = Rng::new(9);
                for _ in 0..2 {
                    let v: Vec<f64> = (0..pb.params.len()).map(|_| rng.normal()).collect();
                    let (mut batched, mut by_row) = (vec![f64::NAN; v.len()], vec![f64::NAN; v.len()]);
                    op.hvp(&v, &mut batched);
                    op.hvp_row_by_row(&v, &mut by_row);
                    let bits = |u: &[f64]| u.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&batched), bits(&by_row), "{activation:?} {hidden:?}");
                }
            }
        }
    }

    #[test]
    fn hvp_matches_central_differences_of_the_gradient() {
        // (g(w + h v) - g(w - h v)) / 2h has truncation error O(h^2 |g'''|) and
        // rounding error ~ 1e-16 |g| / h; with h = 1e-4 both are ~1e-9, so we allow
        // 1e-6 relative to ||H v|| per entry (measured worst: ~1e-8).
        for activation in Activation::ALL {
            for hidden in [vec![], vec![6], vec![5, 4, 3]] {
                let pb = random_problem(hidden.clone(), activation, 3, 11, 7);
                let mut op = HessianOperator::new(&pb.mlp, &pb.params, &pb.x, &pb.y);
                let mut rng = Rng::new(3);
                let v: Vec<f64> = (0..pb.params.len()).map(|_| rng.normal()).collect();
                let mut hv = vec![0.0; v.len()];
                op.hvp(&v, &mut hv);
                let h = 1e-4;
                let mut ws = Workspace::new();
                let shifted = |s: f64| -> Vec<f64> { pb.params.iter().zip(&v).map(|(w, d)| w + s * d).collect() };
                let up = pb.grad_at(&shifted(h), &mut ws);
                let down = pb.grad_at(&shifted(-h), &mut ws);
                let scale = norm(&hv).max(1e-12);
                let worst = hv
                    .iter()
                    .zip(up.iter().zip(&down))
                    .map(|(a, (u, d))| (a - (u - d) / (2.0 * h)).abs() / scale)
                    .fold(0.0, f64::max);
                assert!(worst < 1e-6, "{activation:?} {hidden:?}: relative error {worst}");
            }
        }
    }

    #[test]
    fn fast_dense_hessian_equals_one_product_per_basis_vector_and_is_symmetric() {
        for (hidden, act) in [(vec![4, 3], Activation::Tanh), (vec![5], Activation::Relu), (vec![], Activation::Gelu)] {
            let pb = random_problem(hidden, act, 3, 13, 5);
            let mut op = HessianOperator::new(&pb.mlp, &pb.params, &pb.x, &pb.y);
            let slow = op.dense_by_hvp();
            let fast = op.dense();
            let scale = slow.amax();
            // The product-per-column matrix was never symmetrised: its symmetry tests the R-pass.
            let asym = (&slow - slow.transpose()).amax() / scale;
            assert!(asym < 1e-13, "asymmetry {asym}");
            let diff = (&slow - &fast).amax() / scale;
            assert!(diff < 1e-13, "fast vs slow dense Hessian: {diff}");
        }
    }

    /// The dense Hessian as `DenseHessian` built it before its row-by-row
    /// multiply-adds: every entry summed on its own, over the rows in order
    /// (then mirrored by `finish`). The bit reference for `dense`.
    fn dense_entry_by_entry(op: &mut HessianOperator) -> DMatrix<f64> {
        let (p, rows) = (op.num_params(), op.cache.rows);
        let mut reference = DenseHessian::new(op);
        for (m, layer) in op.cache.mlp.layers.clone().iter().enumerate() {
            let fi = layer.fan_in;
            for j in 0..layer.fan_out {
                let responses: Vec<Vec<f64>> = (0..rows)
                    .map(|r| {
                        let mut out = vec![0.0; p];
                        r_pass(&op.cache, &mut op.scratch, r, Tangent::Impulse { layer: m, unit: j }, &mut out);
                        out
                    })
                    .collect();
                for i in 0..=fi {
                    let row = if i < fi { layer.weight_offset + j * fi + i } else { layer.bias_offset + j };
                    for col in layer.weight_offset..p {
                        let mut sum = 0.0;
                        for (r, response) in responses.iter().enumerate() {
                            let a = if i < fi { op.cache.inputs[m][r * fi + i] } else { 1.0 };
                            sum += response[col] * a;
                        }
                        reference.h[(row, col)] = sum;
                    }
                }
            }
        }
        reference.finish(op)
    }

    #[test]
    fn dense_hessian_has_the_bits_of_entry_by_entry_sums() {
        for (hidden, act, classes) in
            [(vec![16, 16], Activation::Tanh, 2), (vec![5, 4, 3], Activation::Gelu, 3), (vec![], Activation::Relu, 2)]
        {
            let pb = random_problem(hidden.clone(), act, classes, 37, 4);
            let mut op = HessianOperator::new(&pb.mlp, &pb.params, &pb.x, &pb.y);
            let reference = dense_entry_by_entry(&mut op);
            let dense = op.dense();
            let same = dense.iter().zip(reference.iter()).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{hidden:?} {act:?}: the dense Hessian's bits changed");
        }
    }

    /// `HessianOperator::diagonal` as it was before its row-by-row multiply-adds,
    /// every entry of G W and W^T (G W) one `.sum()`: the bit reference.
    fn diagonal_by_sums(op: &HessianOperator) -> Vec<f64> {
        let c = &op.cache;
        let layers = &c.mlp.layers;
        let k = c.mlp.classes;
        let mut diag = vec![0.0; c.params.len()];
        // G of the current layer (fo x fo, row-major), G W (fo x fi), and the next G.
        let (mut g, mut gw, mut next) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..c.rows {
            let p = &c.probs[r * k..(r + 1) * k];
            g.clear();
            for a in 0..k {
                g.extend((0..k).map(|b| (if a == b { p[a] } else { 0.0 } - p[a] * p[b]) * c.inv_rows));
            }
            for l in (0..layers.len()).rev() {
                let layer = &layers[l];
                let (fi, fo) = (layer.fan_in, layer.fan_out);
                let input = &c.inputs[l][r * fi..(r + 1) * fi];
                for j in 0..fo {
                    let gjj = g[j * fo + j];
                    let start = layer.weight_offset + j * fi;
                    for (d, &a) in diag[start..start + fi].iter_mut().zip(input) {
                        *d += gjj * a * a;
                    }
                    diag[layer.bias_offset + j] += gjj;
                }
                if l == 0 {
                    break;
                }
                // gw = G W (fo x fi).
                gw.clear();
                for a in 0..fo {
                    let g_row = &g[a * fo..(a + 1) * fo];
                    gw.extend(
                        (0..fi).map(|i| {
                            (0..fo).map(|b| g_row[b] * c.params[layer.weight_offset + b * fi + i]).sum::<f64>()
                        }),
                    );
                }
                // next = diag(d2g) + diag(d1) W^T (G W) diag(d1); below the first hidden
                // layer only its diagonal is used, so only that is computed there.
                let idx = r * fi..(r + 1) * fi;
                let (d1, d2g) = (&c.d1[l - 1][idx.clone()], &c.d2g[l - 1][idx]);
                next.clear();
                next.resize(fi * fi, 0.0);
                for i in 0..fi {
                    let cols = if l == 1 { i..i + 1 } else { 0..fi };
                    for i2 in cols {
                        let m: f64 =
                            (0..fo).map(|a| c.params[layer.weight_offset + a * fi + i] * gw[a * fi + i2]).sum();
                        next[i * fi + i2] = d1[i] * m * d1[i2] + if i == i2 { d2g[i] } else { 0.0 };
                    }
                }
                std::mem::swap(&mut g, &mut next);
            }
        }
        diag
    }

    #[test]
    fn the_diagonal_has_the_bits_of_one_sum_per_entry() {
        for activation in Activation::ALL {
            for (hidden, classes) in [(vec![], 2), (vec![16, 16], 2), (vec![5, 4, 3], 3)] {
                let pb = random_problem(hidden.clone(), activation, classes, 29, 6);
                let op = HessianOperator::new(&pb.mlp, &pb.params, &pb.x, &pb.y);
                let (diag, reference) = (op.diagonal(), diagonal_by_sums(&op));
                let same = diag.iter().zip(&reference).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{activation:?} {hidden:?}: the diagonal's bits changed");
            }
        }
    }

    #[test]
    fn the_diagonal_is_that_of_one_product_per_basis_vector() {
        // Every activation (s'' terms), no hidden layer to three (the G recursion
        // and the first layer's diagonal-only shortcut), label smoothing, 3 classes.
        for activation in Activation::ALL {
            for hidden in [vec![], vec![6], vec![5, 4, 3]] {
                let pb = random_problem(hidden.clone(), activation, 3, 11, 8);
                let mut op = HessianOperator::new(&pb.mlp, &pb.params, &pb.x, &pb.y);
                let slow = op.dense_by_hvp();
                let diag = op.diagonal();
                let scale = slow.amax();
                let worst = diag.iter().enumerate().map(|(i, d)| (d - slow[(i, i)]).abs() / scale).fold(0.0, f64::max);
                assert!(worst < 1e-13, "{activation:?} {hidden:?}: {worst}");
                let trace: f64 = (0..diag.len()).map(|i| slow[(i, i)]).sum();
                assert!((op.exact_trace() - trace).abs() < 1e-12 * scale * diag.len() as f64);
            }
        }
    }

    #[test]
    fn estimators_agree_with_the_dense_spectrum() {
        let pb = random_problem(vec![8, 8], Activation::Tanh, 2, 64, 9);
        let mut op = HessianOperator::new(&pb.mlp, &pb.params, &pb.x, &pb.y);
        let h = op.dense();
        let values = spectrum(&h);
        let exact_trace: f64 = values.iter().sum();
        let dominant =
            if values[0].abs() >= values.last().unwrap().abs() { values[0] } else { *values.last().unwrap() };
        // Power iteration to 1e-8 relative change: the estimate is within 1e-4 of |lambda|.
        let pw = power_iteration(&mut op, &mut Rng::new(1), 1000, 1e-8);
        assert!((pw.value - dominant).abs() < 1e-4 * dominant.abs(), "power {} vs {dominant}", pw.value);
        // Lanczos, 40 steps: top 3 to 1e-8 relative.
        let top = top_eigenpairs(&mut op, 3, 40, &mut Rng::new(2));
        for i in 0..3 {
            assert!(
                (top.values[i] - values[i]).abs() < 1e-8 * values[0].abs(),
                "{i}: {:?} vs {:?}",
                top.values,
                values
            );
            assert!((rayleigh(&h, &top.vectors[i]) - values[i]).abs() < 1e-8 * values[0].abs());
        }
        // Hutchinson with Rademacher vectors: error variance 2 * sum_{i != j} H_ij^2 per
        // sample; with 400 samples we allow 4 standard errors of that exact variance.
        let off: f64 = (0..h.nrows())
            .flat_map(|i| (0..h.ncols()).map(move |j| (i, j)))
            .filter(|(i, j)| i != j)
            .map(|(i, j)| h[(i, j)].powi(2))
            .sum();
        let sigma = (2.0 * off / 400.0).sqrt();
        let tr = hutchinson_trace(&mut op, 400, &mut Rng::new(3));
        assert!((tr.value - exact_trace).abs() < 4.0 * sigma, "trace {} vs {exact_trace} (sigma {sigma})", tr.value);
        // and its own standard error is in the right range
        assert!(tr.std_error > 0.5 * sigma && tr.std_error < 2.0 * sigma);
    }
}
