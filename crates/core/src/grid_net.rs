//! A fast, approximate forward pass for the decision heatmap only.
//!
//! The heatmap needs 2 x 128 x 128 forward passes several times a second.
//! The core's forward is exact f64 with libm's `tanh`, which in wasm costs
//! more than all the multiply-adds together. Here the same network runs in
//! f32, one grid row (128 points) at a time with points in the innermost loop,
//! and with short polynomial `exp`/`erf` approximations: probabilities within
//! about 1e-5 of the core's (checked by tests/web.rs for every activation),
//! which no colour or boundary pixel can show. Training and every metric
//! still use the core's exact numerics.

use crate::activation::Activation;
use crate::model::Mlp;

/// A network's parameters copied to f32, with row buffers for the forward pass.
#[derive(Default)]
pub struct GridNet {
    /// (fan_in, fan_out) per layer.
    shapes: Vec<(usize, usize)>,
    /// W (fan_out x fan_in, row-major) then b, layer after layer: the core's layout.
    params: Vec<f32>,
    activation: Option<Activation>,
    current: Vec<f32>,
    next: Vec<f32>,
}

impl GridNet {
    /// Copies `params` of `mlp` (two inputs); reuses the buffers.
    pub fn load(&mut self, mlp: &Mlp, params: &[f64]) {
        self.shapes.clear();
        self.shapes.extend(mlp.layers.iter().map(|l| (l.fan_in, l.fan_out)));
        self.params.clear();
        self.params.extend(params.iter().map(|&p| p as f32));
        self.activation = Some(mlp.activation);
    }

    /// Class probabilities of the points `(xs[p], y)`, written row-major
    /// (`xs.len() x classes`) into `out`.
    pub fn row_probs(&mut self, xs: &[f64], y: f64, out: &mut [f64]) {
        // SAFETY-free: on wasm a missing feature fails validation at load, it
        // is never undefined behaviour; every current browser has SIMD. Native
        // builds (tests) run the same loops without the attribute.
        self.row_probs_simd(xs, y, out)
    }

    /// The loops below run over the 128 points of a row; compiled with
    /// wasm SIMD, LLVM turns them into 4-wide vector code. (This module lives
    /// in the core, not in `src/web`, so that it is compiled at opt-level 3
    /// where the page's own code is built for size: at "z" LLVM does not
    /// vectorise these loops and the heatmap takes 2.5x as long.)
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    fn row_probs_simd(&mut self, xs: &[f64], y: f64, out: &mut [f64]) {
        let n = xs.len();
        let act = self.activation.expect("load() first");
        let widest = self.shapes.iter().map(|s| s.1).max().unwrap_or(1);
        self.current.resize(widest * n, 0.0);
        self.next.resize(widest * n, 0.0);
        let last = self.shapes.len() - 1;
        let mut offset = 0;
        for (l, &(fan_in, fan_out)) in self.shapes.iter().enumerate() {
            let w = &self.params[offset..offset + fan_in * fan_out];
            let b = &self.params[offset + fan_in * fan_out..offset + fan_out * (fan_in + 1)];
            offset += fan_out * (fan_in + 1);
            // Unit-major buffers: next[k * n + p] is unit k at point p.
            if l == 0 {
                // The row shares y: each unit is a line in x.
                for k in 0..fan_out {
                    let (wx, c) = (w[2 * k], w[2 * k + 1] * y as f32 + b[k]);
                    for (z, &x) in self.next[k * n..(k + 1) * n].iter_mut().zip(xs) {
                        *z = wx * x as f32 + c;
                    }
                }
            } else {
                for k in 0..fan_out {
                    let z = &mut self.next[k * n..(k + 1) * n];
                    z.fill(b[k]);
                    for i in 0..fan_in {
                        let wki = w[k * fan_in + i];
                        for (zp, &a) in z.iter_mut().zip(&self.current[i * n..(i + 1) * n]) {
                            *zp += wki * a;
                        }
                    }
                }
            }
            if l < last {
                activate(act, &mut self.next[..fan_out * n]);
            }
            std::mem::swap(&mut self.current, &mut self.next);
        }
        // Softmax over the logits of each point.
        let k = self.shapes[last].1;
        for p in 0..n {
            let max = (0..k).map(|c| self.current[c * n + p]).fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for c in 0..k {
                let e = fast_exp(self.current[c * n + p] - max);
                out[p * k + c] = e as f64;
                sum += e;
            }
            for o in &mut out[p * k..(p + 1) * k] {
                *o /= sum as f64;
            }
        }
    }
}

/// The activation over a whole buffer: one loop per kind, so each vectorises.
#[inline(always)]
fn activate(act: Activation, zs: &mut [f32]) {
    match act {
        Activation::Tanh => zs.iter_mut().for_each(|z| *z = fast_tanh(*z)),
        Activation::Relu => zs.iter_mut().for_each(|z| *z = z.max(0.0)),
        Activation::Sigmoid => zs.iter_mut().for_each(|z| *z = 1.0 / (1.0 + fast_exp(-*z))),
        Activation::Gelu => {
            zs.iter_mut().for_each(|z| *z = 0.5 * *z * (1.0 + fast_erf(*z * std::f32::consts::FRAC_1_SQRT_2)))
        }
    }
}

/// e^x with a relative error below 2e-7 (2^n from the exponent bits times a
/// degree-6 polynomial for 2^f, f in [-0.5, 0.5]). NaN stays NaN (clamp
/// keeps it, the integer cast makes it 0, the polynomial keeps it).
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    let y = x.clamp(-87.0, 88.0) * std::f32::consts::LOG2_E;
    let n = (y + 0.5).floor();
    let f = y - n;
    let p = 1.0
        + f * (std::f32::consts::LN_2
            + f * (0.240_226_5
                + f * (0.055_504_11 + f * (0.009_618_129 + f * (0.001_333_355_8 + f * 0.000_154_035_3)))));
    p * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// tanh through `fast_exp`; absolute error below about 3e-7.
#[inline(always)]
pub fn fast_tanh(x: f32) -> f32 {
    let e = fast_exp(2.0 * x.clamp(-10.0, 10.0));
    (e - 1.0) / (e + 1.0)
}

/// erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7).
#[inline(always)]
pub fn fast_erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t * (0.254_829_6 + t * (-0.284_496_7 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let r = 1.0 - poly * fast_exp(-x * x);
    if x < 0.0 {
        -r
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, Workspace};
    use crate::rng::Rng;

    /// The f32 row pass gives the core's exact softmax probabilities to
    /// within 1e-5 for every activation (the heatmap cannot show less).
    #[test]
    fn row_probs_match_the_exact_forward() {
        for activation in [Activation::Tanh, Activation::Relu, Activation::Gelu, Activation::Sigmoid] {
            let config = ModelConfig { hidden: vec![16, 8], activation, label_smoothing: 0.0, dropout: vec![] };
            let mlp = Mlp::new(2, &config, 3);
            let params = mlp.init_params(&mut Rng::new(7));
            let xs: Vec<f64> = (0..128).map(|i| -3.0 + 6.0 * i as f64 / 127.0).collect();
            let y = 0.7;
            let mut net = GridNet::default();
            net.load(&mlp, &params);
            let mut probs = vec![0.0; xs.len() * 3];
            net.row_probs(&xs, y, &mut probs);

            let input: Vec<f64> = xs.iter().flat_map(|&x| [x, y]).collect();
            let mut ws = Workspace::new();
            let logits = mlp.forward(&params, &input, &mut ws);
            for (p, row) in logits.chunks(3).enumerate() {
                let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = row.iter().map(|z| (z - max).exp()).sum();
                for c in 0..3 {
                    let exact = (row[c] - max).exp() / sum;
                    let got = probs[p * 3 + c];
                    assert!((got - exact).abs() < 1e-5, "{activation:?} point {p} class {c}: {got} vs {exact}");
                }
            }
        }
    }
}
