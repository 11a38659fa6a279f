//! The Hessian-vector product over every row at once.
//!
//! [`super::r_pass`] takes one row at a time: a few dot products of 16 numbers
//! each, one long chain of dependent additions apiece, which in wasm ran about
//! four times slower than natively and made lambda_max the biggest cost of a
//! study's per-run measures. Here each stage runs over all rows before the
//! next, in the blocked loops of the training step (`crate::model`: a block of
//! units' sums side by side, in SIMD lanes). Every number is still the same sum
//! of the same terms added in the same order as in `r_pass`, so the product
//! has the same bits (a test checks that against `r_pass`).

use super::{Cache, Layer};
use crate::model::{backprop_through_weights, blocks, linear_forward, transpose_weights, with_block_len};

/// Per-layer tangents for every row (`rows x fan_out` each), allocated on the first product.
#[derive(Clone, Debug, Default)]
pub(super) struct Batch {
    /// R{z_l}: the pre-activations' tangent.
    rz: Vec<Vec<f64>>,
    /// R{a_l} = s'(z_l) R{z_l}, one per hidden layer (the output layer has no activation).
    ra: Vec<Vec<f64>>,
    /// R{delta_l}: the tangent of dL/dz_l.
    rdelta: Vec<Vec<f64>>,
    /// W^T R{delta} and V^T delta for one layer (`rows x fan_in`).
    rda: Vec<f64>,
    vtd: Vec<f64>,
    /// One layer's weights, transposed (`fan_in x fan_out`).
    transposed: Vec<f64>,
}

/// `out = H v` at the cache's point: [`super::HessianOperator::hvp`].
pub(super) fn hvp(c: &Cache, s: &mut Batch, v: &[f64], out: &mut [f64]) {
    let layers = &c.mlp.layers;
    let n_layers = layers.len();
    let rows = c.rows;
    let w = &c.params;
    if s.rz.len() != n_layers {
        let sized = |l: &Layer| vec![0.0; rows * l.fan_out];
        s.rz = layers.iter().map(sized).collect();
        s.ra = layers[..n_layers - 1].iter().map(sized).collect();
        s.rdelta = layers.iter().map(sized).collect();
        s.rda = vec![0.0; rows * c.mlp.max_width()];
        s.vtd = s.rda.clone();
    }
    // Forward tangents: R{z_l} = V_l a_{l-1} + v_b + W_l R{a_{l-1}}.
    for (l, layer) in layers.iter().enumerate() {
        let rz = &mut s.rz[l];
        // v_b + V_l a_{l-1}: the model's forward pass with v as the weights.
        linear_forward(layer, v, &c.inputs[l], rz, &mut s.transposed);
        if l > 0 {
            add_product(layer, w, &s.ra[l - 1], rz, &mut s.transposed);
        }
        if l + 1 < n_layers {
            for ((ra, &rzj), &d) in s.ra[l].iter_mut().zip(rz.iter()).zip(&c.d1[l]) {
                *ra = d * rzj;
            }
        }
    }
    // Through the softmax: R{delta_L} = (diag p - p p^T) R{z_L} / rows.
    let last = n_layers - 1;
    let k = c.mlp.classes;
    for ((p, rz), rd) in c.probs.chunks_exact(k).zip(s.rz[last].chunks_exact(k)).zip(s.rdelta[last].chunks_exact_mut(k))
    {
        let pz = super::dot(p, rz);
        for ((rd, &pj), &rzj) in rd.iter_mut().zip(p).zip(rz) {
            *rd = pj * (rzj - pz) * c.inv_rows;
        }
    }
    // Backward tangents, and the product: the gradient's tangent, layer by layer.
    out.fill(0.0);
    for l in (0..n_layers).rev() {
        let layer = &layers[l];
        let (fi, fo) = (layer.fan_in, layer.fan_out);
        let (lower, upper) = s.rdelta.split_at_mut(l);
        let rd = &upper[0][..rows * fo];
        let below = (l > 0).then(|| (&c.delta[l][..], &s.ra[l - 1][..]));
        weight_tangents(layer, rd, &c.inputs[l], below, out);
        for (j, o) in out[layer.bias_offset..layer.bias_offset + fo].iter_mut().enumerate() {
            *o = rd.chunks_exact(fo).fold(*o, |sum, rd_row| sum + rd_row[j]);
        }
        if l > 0 {
            let (rda, vtd) = (&mut s.rda[..rows * fi], &mut s.vtd[..rows * fi]);
            // W^T R{delta} and V^T delta, each summed over j in order from 0.0 (as `transpose_mul`).
            backprop_through_weights(layer, w, rd, rda);
            backprop_through_weights(layer, v, &c.delta[l], vtd);
            let (d1, d2g, rz) = (&c.d1[l - 1], &c.d2g[l - 1], &s.rz[l - 1]);
            for (x, rdl) in lower[l - 1][..rows * fi].iter_mut().enumerate() {
                let a = rda[x] + vtd[x];
                *rdl = d2g[x] * rz[x] + d1[x] * a;
            }
        }
    }
}

/// z[r, j] += sum_i M[j, i] * x[r, i] (as `z[j] += dot(..)`: each sum added
/// in order of i from -0.0, then onto z), for the layer's weight block M in `params`.
fn add_product(layer: &Layer, params: &[f64], x: &[f64], z: &mut [f64], wt: &mut Vec<f64>) {
    let (fi, fo) = (layer.fan_in, layer.fan_out);
    transpose_weights(layer, params, wt);
    for (x_row, z_row) in x.chunks_exact(fi).zip(z.chunks_exact_mut(fo)) {
        for (j, len) in blocks(fo) {
            with_block_len!(len, add_product_block(wt, fo, j, x_row, &mut z_row[j..]));
        }
    }
}

#[inline(always)]
fn add_product_block<const N: usize>(wt: &[f64], fo: usize, j: usize, x_row: &[f64], z: &mut [f64]) {
    let mut acc = [-0.0; N];
    for (wt_row, &xi) in wt.chunks_exact(fo).zip(x_row) {
        for (a, &mji) in acc.iter_mut().zip(&wt_row[j..j + N]) {
            *a += mji * xi;
        }
    }
    for (zj, a) in z[..N].iter_mut().zip(acc) {
        *zj += a;
    }
}

/// The weight block of `out` += sum over rows r, in order, of rd[r, j] x[r, i]
/// and then (for a layer with one below) delta[r, j] R{a}[r, i].
fn weight_tangents(layer: &Layer, rd: &[f64], x: &[f64], below: Option<(&[f64], &[f64])>, out: &mut [f64]) {
    let (fi, fo) = (layer.fan_in, layer.fan_out);
    let out_w = &mut out[layer.weight_offset..layer.bias_offset];
    for (j, out_row) in out_w.chunks_exact_mut(fi).enumerate() {
        for (i, len) in blocks(fi) {
            with_block_len!(len, weight_block(rd, x, below, (fi, fo), j, i, &mut out_row[i..]));
        }
    }
}

#[inline(always)]
fn weight_block<const N: usize>(
    rd: &[f64],
    x: &[f64],
    below: Option<(&[f64], &[f64])>,
    fan: (usize, usize),
    j: usize,
    i: usize,
    out: &mut [f64],
) {
    let (fi, fo) = fan;
    let mut acc: [f64; N] = out[..N].try_into().expect("block fits");
    match below {
        None => {
            for (rd_row, x_row) in rd.chunks_exact(fo).zip(x.chunks_exact(fi)) {
                let rdj = rd_row[j];
                for (a, &xi) in acc.iter_mut().zip(&x_row[i..i + N]) {
                    *a += rdj * xi;
                }
            }
        }
        Some((delta, ra)) => {
            let rows = rd.chunks_exact(fo).zip(x.chunks_exact(fi)).zip(delta.chunks_exact(fo).zip(ra.chunks_exact(fi)));
            for ((rd_row, x_row), (d_row, ra_row)) in rows {
                let (rdj, dj) = (rd_row[j], d_row[j]);
                for ((a, &xi), &rai) in acc.iter_mut().zip(&x_row[i..i + N]).zip(&ra_row[i..i + N]) {
                    *a += rdj * xi;
                    *a += dj * rai;
                }
            }
        }
    }
    out[..N].copy_from_slice(&acc);
}
