//! A multilayer perceptron whose parameters live in one flat vector.
//!
//! Layout (PyTorch `nn.Linear`, layer after layer): for each layer the weight
//! matrix W (fan_out x fan_in, row-major), then its bias b (fan_out). So a
//! 2-16-16-2 net is `[W0 (16x2), b0 (16), W1 (16x16), b1 (16), W2 (2x16), b2 (2)]`,
//! 354 numbers. Everything that perturbs or probes a model (optimisers, SAM,
//! landscape directions, Hessian-vector products) works on this one `&[f64]`.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::loss::{softmax_cross_entropy, softmax_cross_entropy_from};
use crate::rng::Rng;

/// The network's shape and non-linearity, as it appears in a run config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Widths of the hidden layers: 0 to 6 layers of 1 to 64 units.
    pub hidden: Vec<usize>,
    /// Non-linearity of every hidden layer (the output layer stays linear).
    pub activation: Activation,
    /// Label smoothing of the cross-entropy, in [0, 1).
    pub label_smoothing: f64,
    /// Dropout probability after each hidden layer's activation, during
    /// training only: empty for none, one value for every hidden layer, or one
    /// per hidden layer (see [`crate::dropout`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropout: Vec<f64>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig { hidden: vec![16, 16], activation: Activation::Tanh, label_smoothing: 0.0, dropout: vec![] }
    }
}

/// An architecture as plain data: what [`Mlp::new`] builds a model from (the
/// page sends it to its GPU module; see `backend::requests`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// Number of input features (2 for the sandbox's 2D points).
    pub inputs: usize,
    /// Number of output classes, i.e. logits.
    pub classes: usize,
    /// Hidden layers, activation and label smoothing.
    pub model: ModelConfig,
}

impl Architecture {
    /// The plain-data description of an existing model.
    pub fn of(mlp: &Mlp) -> Architecture {
        let hidden = mlp.layers[..mlp.layers.len() - 1].iter().map(|l| l.fan_out).collect();
        let dropout = if mlp.has_dropout() { mlp.dropout.clone() } else { vec![] };
        let model = ModelConfig { hidden, activation: mlp.activation, label_smoothing: mlp.label_smoothing, dropout };
        Architecture { inputs: mlp.inputs, classes: mlp.classes, model }
    }

    /// Builds the model this architecture describes.
    pub fn build(&self) -> Mlp {
        Mlp::new(self.inputs, &self.model, self.classes)
    }
}

/// Where one layer's W and b sit in the flat parameter vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Number of inputs to the layer (columns of W).
    pub fan_in: usize,
    /// Number of outputs of the layer (rows of W, length of b).
    pub fan_out: usize,
    /// Index of W[0][0]; W[j][i] is at `weight_offset + j * fan_in + i`.
    pub weight_offset: usize,
    /// Index of b[0].
    pub bias_offset: usize,
}

impl Layer {
    /// W as a `fan_out x fan_in` view, PyTorch nn.Linear layout.
    pub fn weights<'a>(&self, params: &'a [f64]) -> ArrayView2<'a, f64> {
        ArrayView2::from_shape((self.fan_out, self.fan_in), &params[self.weight_offset..self.bias_offset])
            .expect("layer shape matches its slice")
    }

    /// b, one entry per output.
    pub fn bias<'a>(&self, params: &'a [f64]) -> &'a [f64] {
        &params[self.bias_offset..self.bias_offset + self.fan_out]
    }

    /// Weights plus biases: `fan_out * (fan_in + 1)`.
    pub fn num_params(&self) -> usize {
        self.fan_out * (self.fan_in + 1)
    }
}

/// The architecture: layer shapes and offsets. Holds no parameters itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// The layers in order, hidden layers first and the linear output layer last.
    pub layers: Vec<Layer>,
    /// Non-linearity of the hidden layers.
    pub activation: Activation,
    /// Label smoothing of the cross-entropy, in [0, 1); 0 means none.
    pub label_smoothing: f64,
    /// Number of input features.
    pub inputs: usize,
    /// Number of output classes.
    pub classes: usize,
    /// Dropout probability of each hidden layer during training (0 = none);
    /// one entry per hidden layer. Evaluation never drops.
    pub dropout: Vec<f64>,
}

impl Mlp {
    /// Lays out the layers back to back in one flat parameter vector.
    pub fn new(inputs: usize, config: &ModelConfig, classes: usize) -> Mlp {
        let mut widths = vec![inputs];
        widths.extend(&config.hidden);
        widths.push(classes);
        let mut layers = Vec::new();
        let mut offset = 0;
        for pair in widths.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            layers.push(Layer { fan_in, fan_out, weight_offset: offset, bias_offset: offset + fan_in * fan_out });
            offset += fan_out * (fan_in + 1);
        }
        let hidden = config.hidden.len();
        let dropout = match config.dropout.len() {
            1 => vec![config.dropout[0]; hidden],
            n if n == hidden => config.dropout.clone(),
            _ => vec![0.0; hidden], // none (a config with another length does not validate)
        };
        Mlp { layers, activation: config.activation, label_smoothing: config.label_smoothing, inputs, classes, dropout }
    }

    /// Whether any hidden layer drops units during training.
    pub fn has_dropout(&self) -> bool {
        self.dropout.iter().any(|&p| p > 0.0)
    }

    /// Length of the flat parameter vector.
    pub fn num_params(&self) -> usize {
        self.layers.iter().map(Layer::num_params).sum()
    }

    /// Widest layer output, used to size scratch buffers.
    pub fn max_width(&self) -> usize {
        self.layers.iter().map(|l| l.fan_out).chain([self.inputs]).max().unwrap_or(1)
    }

    /// PyTorch's default `nn.Linear` initialisation: W and b uniform in
    /// +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5) reduces to this bound).
    pub fn init_params(&self, rng: &mut Rng) -> Vec<f64> {
        let mut params = vec![0.0; self.num_params()];
        for layer in &self.layers {
            let bound = 1.0 / (layer.fan_in as f64).sqrt();
            for p in &mut params[layer.weight_offset..layer.bias_offset + layer.fan_out] {
                *p = rng.uniform_in(-bound, bound);
            }
        }
        params
    }

    /// Logits for `rows` inputs (row-major `rows x inputs`), written into the
    /// workspace; returns them as a `rows x classes` slice. No dropout: this is
    /// the network at evaluation.
    pub fn forward<'w>(&self, params: &[f64], x: &[f64], ws: &'w mut Workspace) -> &'w [f64] {
        self.forward_with(params, x, ws, None)
    }

    /// [`Mlp::forward`] in training mode with fixed dropout masks: `masks[l]`
    /// holds hidden layer l's `rows x width` multipliers (0 or 1/(1-p), see
    /// [`crate::dropout`]); an empty one leaves that layer undropped.
    pub fn forward_dropout<'w>(
        &self,
        params: &[f64],
        x: &[f64],
        masks: &[Vec<f64>],
        ws: &'w mut Workspace,
    ) -> &'w [f64] {
        self.forward_with(params, x, ws, Some(masks))
    }

    fn forward_with<'w>(
        &self,
        params: &[f64],
        x: &[f64],
        ws: &'w mut Workspace,
        masks: Option<&[Vec<f64>]>,
    ) -> &'w [f64] {
        let rows = x.len() / self.inputs;
        ws.prepare(self, rows);
        ws.activations[0][..x.len()].copy_from_slice(x);
        for (l, layer) in self.layers.iter().enumerate() {
            let is_output = l + 1 == self.layers.len();
            let (before, after) = ws.activations.split_at_mut(l + 1);
            // The layer's input: the previous layer's output, after its dropout if any.
            let input = match layer_mask(masks, l.wrapping_sub(1)) {
                Some(_) => &ws.dropped[l - 1][..rows * layer.fan_in],
                None => &before[l][..rows * layer.fan_in],
            };
            let z = &mut ws.pre_activations[l][..rows * layer.fan_out];
            linear_forward(layer, params, input, z, &mut ws.transposed);
            let out = &mut after[0][..rows * layer.fan_out];
            if is_output {
                out.copy_from_slice(z);
            } else {
                self.activation.apply_slice(z, out);
                if let Some(mask) = layer_mask(masks, l) {
                    // Inverted dropout: kept units are already scaled by 1/(1-p).
                    for ((d, &a), &m) in ws.dropped[l][..out.len()].iter_mut().zip(out.iter()).zip(mask) {
                        *d = a * m;
                    }
                }
            }
        }
        &ws.activations[self.layers.len()][..rows * self.classes]
    }

    /// Mean loss over the batch and the gradient of that mean w.r.t. every
    /// parameter, written into `grad` (same layout as `params`).
    pub fn loss_and_grad(&self, params: &[f64], x: &[f64], y: &[usize], grad: &mut [f64], ws: &mut Workspace) -> f64 {
        grad.fill(0.0);
        let loss_sum = self.accumulate_loss_and_grad(params, x, y, None, y.len(), 0.0, grad, ws);
        loss_sum * (1.0 / y.len() as f64)
    }

    /// [`Mlp::loss_and_grad`] of the network with fixed dropout masks (see
    /// [`Mlp::forward_dropout`]): the loss and gradient of one training step.
    pub fn loss_and_grad_dropout(
        &self,
        params: &[f64],
        x: &[f64],
        y: &[usize],
        masks: &[Vec<f64>],
        grad: &mut [f64],
        ws: &mut Workspace,
    ) -> f64 {
        grad.fill(0.0);
        let loss_sum = self.accumulate_loss_and_grad(params, x, y, Some(masks), y.len(), 0.0, grad, ws);
        loss_sum * (1.0 / y.len() as f64)
    }

    /// One piece of [`Mlp::loss_and_grad`] over a batch of `batch_rows` rows:
    /// the rows `x`, `y` (a consecutive run of the batch, in order) add their
    /// share of the mean's gradient to `grad` (zeroed before the first piece),
    /// and their losses to `loss_sum`, which is returned. Every sum adds its
    /// terms row by row, so working a batch piece by piece gives exactly the
    /// bits of one call: a big batch can be split to keep each piece short.
    /// With dropout `masks` (whole-batch masks, see [`Mlp::forward_dropout`]) the
    /// batch must come in one piece.
    #[allow(clippy::too_many_arguments)]
    pub fn accumulate_loss_and_grad(
        &self,
        params: &[f64],
        x: &[f64],
        y: &[usize],
        masks: Option<&[Vec<f64>]>,
        batch_rows: usize,
        loss_sum: f64,
        grad: &mut [f64],
        ws: &mut Workspace,
    ) -> f64 {
        let rows = y.len();
        self.forward_with(params, x, ws, masks);
        let n_layers = self.layers.len();
        let (loss_sum, _) = {
            let logits = &ws.activations[n_layers][..rows * self.classes];
            let delta = &mut ws.deltas[n_layers - 1][..rows * self.classes];
            softmax_cross_entropy_from(loss_sum, logits, y, self.classes, self.label_smoothing, Some(delta))
        };
        // d(mean)/d logits = (softmax - q) / rows of the whole batch
        let inv_rows = 1.0 / batch_rows as f64;
        for d in &mut ws.deltas[n_layers - 1][..rows * self.classes] {
            *d *= inv_rows;
        }
        for l in (0..n_layers).rev() {
            let layer = &self.layers[l];
            let (lower, upper) = ws.deltas.split_at_mut(l);
            let delta = &upper[0][..rows * layer.fan_out];
            let mask = layer_mask(masks, l.wrapping_sub(1));
            // What the layer saw: the previous output after dropout; the activation's own output for its derivative.
            let output = &ws.activations[l][..rows * layer.fan_in];
            let input = if mask.is_some() { &ws.dropped[l - 1][..rows * layer.fan_in] } else { output };
            accumulate_weight_grads(layer, delta, input, grad);
            if l > 0 {
                // Back through W, then through the previous layer's dropout and activation.
                let d_in = &mut lower[l - 1][..rows * layer.fan_in];
                backprop_through_weights(layer, params, delta, d_in);
                if let Some(mask) = mask {
                    for (d, &m) in d_in.iter_mut().zip(mask) {
                        *d *= m;
                    }
                }
                let z = &ws.pre_activations[l - 1][..rows * layer.fan_in];
                for ((d, &zv), &a) in d_in.iter_mut().zip(z).zip(output) {
                    *d *= self.activation.derivative(zv, a);
                }
            }
        }
        loss_sum
    }

    /// Mean loss and accuracy over a whole set, in chunks (no gradient).
    pub fn evaluate(&self, params: &[f64], x: &[f64], y: &[usize], ws: &mut Workspace) -> (f64, f64) {
        if y.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        let (loss, correct) = self.evaluate_sums((0.0, 0), params, x, y, ws);
        (loss / y.len() as f64, correct as f64 / y.len() as f64)
    }

    /// The sums behind [`Mlp::evaluate`] (loss, correct rows) over `x`, `y`,
    /// added to `sums` one chunk of [`EVAL_CHUNK`] rows at a time. A set worked
    /// in pieces that start at multiples of `EVAL_CHUNK` gives exactly the bits of
    /// one call, so the page can evaluate a big net a bounded piece at a time.
    pub fn evaluate_sums(
        &self,
        sums: (f64, usize),
        params: &[f64],
        x: &[f64],
        y: &[usize],
        ws: &mut Workspace,
    ) -> (f64, usize) {
        let (mut loss, mut correct) = sums;
        for (xc, yc) in x.chunks(EVAL_CHUNK * self.inputs).zip(y.chunks(EVAL_CHUNK)) {
            let logits = self.forward(params, xc, ws);
            let (l, c) = softmax_cross_entropy(logits, yc, self.classes, self.label_smoothing, None);
            loss += l;
            correct += c;
        }
        (loss, correct)
    }
}

/// Hidden layer `l`'s dropout mask, if `masks` drops that layer (`l` may be
/// `usize::MAX`, "the layer before the first": none).
fn layer_mask(masks: Option<&[Vec<f64>]>, l: usize) -> Option<&[f64]> {
    masks.and_then(|m| m.get(l)).map(Vec::as_slice).filter(|m| !m.is_empty())
}

/// Rows per forward pass when a whole set is evaluated (keeps the scratch small).
pub const EVAL_CHUNK: usize = 256;

// The three loops below keep a block of up to BLOCK running sums in
// registers (SIMD lanes) instead of in memory. Every sum still adds its terms
// one at a time in the plain loop's order, so the results are bit-identical
// to `sum_i w * x` written out (and to the wasm build). 16 sums cover a
// 16-wide layer in one block: eight independent two-lane chains, enough to
// hide the adder's latency (8 gave four, and a 5-10% slower training step).
pub(crate) const BLOCK: usize = 16;

/// Splits `0..n` into blocks of BLOCK, 8, 4, 2 and 1: (start, len).
pub(crate) fn blocks(n: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let len = [BLOCK, 8, 4, 2, 1].into_iter().find(|&len| start + len <= n)?;
        start += len;
        Some((start - len, len))
    })
}

/// Calls `$f::<len>($args)` for a block length known only at run time.
macro_rules! with_block_len {
    ($len:expr, $f:ident($($arg:expr),*)) => {
        match $len {
            $crate::model::BLOCK => $f::<{ $crate::model::BLOCK }>($($arg),*),
            8 => $f::<8>($($arg),*),
            4 => $f::<4>($($arg),*),
            2 => $f::<2>($($arg),*),
            _ => $f::<1>($($arg),*),
        }
    };
}
pub(crate) use with_block_len;

/// z[r, j] = b[j] + sum_i W[j, i] * input[r, i], summed in order of i (from
/// -0.0, as `Iterator::sum`). `wt` receives W transposed, so that a block of
/// outputs reads its weights contiguously.
pub(crate) fn linear_forward(layer: &Layer, params: &[f64], input: &[f64], z: &mut [f64], wt: &mut Vec<f64>) {
    let (fan_in, fan_out) = (layer.fan_in, layer.fan_out);
    let b = &params[layer.bias_offset..layer.bias_offset + fan_out];
    transpose_weights(layer, params, wt);
    for (x_row, z_row) in input.chunks_exact(fan_in).zip(z.chunks_exact_mut(fan_out)) {
        for (j, len) in blocks(fan_out) {
            with_block_len!(len, forward_block(wt, fan_out, j, x_row, &b[j..], &mut z_row[j..]));
        }
    }
}

/// `wt` = the layer's weight block in `params` (`fan_out x fan_in`), transposed.
pub(crate) fn transpose_weights(layer: &Layer, params: &[f64], wt: &mut Vec<f64>) {
    let (fan_in, fan_out) = (layer.fan_in, layer.fan_out);
    wt.resize(fan_in * fan_out, 0.0);
    for (j, w_row) in params[layer.weight_offset..layer.bias_offset].chunks_exact(fan_in).enumerate() {
        for (i, &v) in w_row.iter().enumerate() {
            wt[i * fan_out + j] = v;
        }
    }
}

#[inline(always)]
fn forward_block<const N: usize>(wt: &[f64], fan_out: usize, j: usize, x_row: &[f64], b: &[f64], z: &mut [f64]) {
    let mut acc = [-0.0; N];
    for (wt_row, &xi) in wt.chunks_exact(fan_out).zip(x_row) {
        for (a, &wji) in acc.iter_mut().zip(&wt_row[j..j + N]) {
            *a += wji * xi;
        }
    }
    for ((zj, &bj), a) in z[..N].iter_mut().zip(&b[..N]).zip(acc) {
        *zj = bj + a;
    }
}

/// gW[j, i] += sum_r delta[r, j] * input[r, i];  gb[j] += sum_r delta[r, j]
/// (summed in order of r).
fn accumulate_weight_grads(layer: &Layer, delta: &[f64], input: &[f64], grad: &mut [f64]) {
    let (fan_in, fan_out) = (layer.fan_in, layer.fan_out);
    let (gw, rest) = grad[layer.weight_offset..].split_at_mut(fan_in * fan_out);
    let gb = &mut rest[..fan_out];
    for (j, (gw_row, gbj)) in gw.chunks_exact_mut(fan_in).zip(gb.iter_mut()).enumerate() {
        for (i, len) in blocks(fan_in) {
            with_block_len!(len, grad_block(delta, input, (fan_in, fan_out), j, i, &mut gw_row[i..]));
        }
        *gbj = delta.chunks_exact(fan_out).fold(*gbj, |sum, d_row| sum + d_row[j]);
    }
}

#[inline(always)]
fn grad_block<const N: usize>(delta: &[f64], input: &[f64], fan: (usize, usize), j: usize, i: usize, g: &mut [f64]) {
    let (fan_in, fan_out) = fan;
    let mut acc: [f64; N] = g[..N].try_into().expect("block fits");
    for (d_row, x_row) in delta.chunks_exact(fan_out).zip(input.chunks_exact(fan_in)) {
        let dj = d_row[j];
        for (a, &xi) in acc.iter_mut().zip(&x_row[i..i + N]) {
            *a += dj * xi;
        }
    }
    g[..N].copy_from_slice(&acc);
}

/// d_in[r, i] = sum_j delta[r, j] * W[j, i] (summed in order of j, from 0.0)
pub(crate) fn backprop_through_weights(layer: &Layer, params: &[f64], delta: &[f64], d_in: &mut [f64]) {
    let w = &params[layer.weight_offset..layer.bias_offset];
    for (d_row, din_row) in delta.chunks_exact(layer.fan_out).zip(d_in.chunks_exact_mut(layer.fan_in)) {
        for (i, len) in blocks(layer.fan_in) {
            with_block_len!(len, backprop_block(w, layer.fan_in, i, d_row, &mut din_row[i..]));
        }
    }
}

#[inline(always)]
fn backprop_block<const N: usize>(w: &[f64], fan_in: usize, i: usize, d_row: &[f64], d_in: &mut [f64]) {
    let mut acc = [0.0; N];
    for (&dj, w_row) in d_row.iter().zip(w.chunks_exact(fan_in)) {
        for (a, &wji) in acc.iter_mut().zip(&w_row[i..i + N]) {
            *a += dj * wji;
        }
    }
    d_in[..N].copy_from_slice(&acc);
}

/// Scratch buffers for forward and backward passes. They grow to the largest
/// batch seen and are then reused, so the training loop does not allocate.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    rows: usize,
    /// The layer widths (inputs first) the buffers were sized for: a workspace
    /// may serve models of different shapes, one after the other.
    widths: Vec<usize>,
    /// activations[0] is the input; activations[l + 1] the output of layer l.
    activations: Vec<Vec<f64>>,
    pre_activations: Vec<Vec<f64>>,
    /// deltas[l] = d loss / d z of layer l.
    deltas: Vec<Vec<f64>>,
    /// One layer's weights, transposed (see `linear_forward`).
    transposed: Vec<f64>,
    /// dropped[l]: hidden layer l's output after its dropout mask (training only).
    dropped: Vec<Vec<f64>>,
}

impl Workspace {
    /// Empty scratch space; it grows to fit on first use.
    pub fn new() -> Self {
        Self::default()
    }

    fn prepare(&mut self, mlp: &Mlp, rows: usize) {
        let same_shape = self.widths.len() == mlp.layers.len() + 1
            && self.widths[0] == mlp.inputs
            && self.widths[1..].iter().zip(&mlp.layers).all(|(&w, l)| w == l.fan_out);
        if same_shape && rows <= self.rows {
            return;
        }
        let rows = if same_shape { rows.max(self.rows) } else { rows };
        self.rows = rows;
        self.widths = std::iter::once(mlp.inputs).chain(mlp.layers.iter().map(|l| l.fan_out)).collect();
        let widths = &self.widths;
        self.activations = widths.iter().map(|w| vec![0.0; rows * w]).collect();
        self.pre_activations = widths[1..].iter().map(|w| vec![0.0; rows * w]).collect();
        self.deltas = widths[1..].iter().map(|w| vec![0.0; rows * w]).collect();
        self.dropped = widths[1..widths.len() - 1].iter().map(|w| vec![0.0; rows * w]).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finite_difference_check(hidden: Vec<usize>, activation: Activation, classes: usize, smoothing: f64) {
        let config = ModelConfig { hidden, activation, label_smoothing: smoothing, dropout: vec![] };
        let mlp = Mlp::new(2, &config, classes);
        let mut rng = Rng::new(11);
        let params = mlp.init_params(&mut rng);
        let rows = 7;
        let x: Vec<f64> = (0..rows * 2).map(|_| rng.normal()).collect();
        let y: Vec<usize> = (0..rows).map(|_| rng.below(classes)).collect();
        let mut ws = Workspace::new();
        let mut grad = vec![0.0; params.len()];
        mlp.loss_and_grad(&params, &x, &y, &mut grad, &mut ws);
        let loss_at = |p: &[f64], ws: &mut Workspace| mlp.evaluate(p, &x, &y, ws).0;
        let h = 1e-6;
        let mut worst: f64 = 0.0;
        for i in 0..params.len() {
            let mut p = params.clone();
            p[i] += h;
            let up = loss_at(&p, &mut ws);
            p[i] -= 2.0 * h;
            let down = loss_at(&p, &mut ws);
            let fd = (up - down) / (2.0 * h);
            // Allowed: 1e-6 relative plus 1e-8 absolute, because the central difference
            // itself carries ~1e-10 of rounding error (machine eps * loss / h) at h = 1e-6.
            let err = (fd - grad[i]).abs() / (1e-8 + 1e-6 * fd.abs().max(grad[i].abs()));
            worst = worst.max(err);
        }
        assert!(worst < 1.0, "{activation:?} {:?}: error {worst} times the allowed", config.hidden);
    }

    #[test]
    fn gradient_matches_finite_differences_for_every_activation_and_depth() {
        for activation in Activation::ALL {
            for hidden in [vec![], vec![5], vec![4, 3], vec![3, 4, 3, 2, 3, 2]] {
                finite_difference_check(hidden, activation, 3, 0.1);
            }
        }
        finite_difference_check(vec![16, 16], Activation::Tanh, 2, 0.0);
    }

    #[test]
    fn blocked_loops_match_the_plain_sums_bit_for_bit() {
        // The plain loops the blocked ones replace, in their order of operations.
        let mut rng = Rng::new(5);
        for (fan_in, fan_out) in [(1, 1), (2, 16), (16, 16), (16, 2), (3, 7), (13, 9), (64, 64), (5, 17)] {
            let layer = Layer { fan_in, fan_out, weight_offset: 0, bias_offset: fan_in * fan_out };
            let params: Vec<f64> = (0..layer.num_params()).map(|_| rng.normal()).collect();
            let rows = 11;
            let x: Vec<f64> = (0..rows * fan_in).map(|_| rng.normal()).collect();
            let delta: Vec<f64> = (0..rows * fan_out).map(|_| rng.normal()).collect();
            let (w, b) = params.split_at(layer.bias_offset);

            let mut z = vec![0.0; rows * fan_out];
            linear_forward(&layer, &params, &x, &mut z, &mut Vec::new());
            for r in 0..rows {
                for j in 0..fan_out {
                    let sum: f64 = (0..fan_in).map(|i| w[j * fan_in + i] * x[r * fan_in + i]).sum();
                    assert_eq!(z[r * fan_out + j].to_bits(), (b[j] + sum).to_bits());
                }
            }

            let mut grad = vec![0.0; params.len()];
            accumulate_weight_grads(&layer, &delta, &x, &mut grad);
            let mut expected = vec![0.0; params.len()];
            for r in 0..rows {
                for j in 0..fan_out {
                    expected[layer.bias_offset + j] += delta[r * fan_out + j];
                    for i in 0..fan_in {
                        expected[j * fan_in + i] += delta[r * fan_out + j] * x[r * fan_in + i];
                    }
                }
            }
            assert!(grad.iter().zip(&expected).all(|(a, e)| a.to_bits() == e.to_bits()), "{fan_in}x{fan_out}");

            let mut d_in = vec![0.0; rows * fan_in];
            backprop_through_weights(&layer, &params, &delta, &mut d_in);
            for r in 0..rows {
                for i in 0..fan_in {
                    let mut sum = 0.0;
                    for j in 0..fan_out {
                        sum += delta[r * fan_out + j] * w[j * fan_in + i];
                    }
                    assert_eq!(d_in[r * fan_in + i].to_bits(), sum.to_bits());
                }
            }
        }
    }

    #[test]
    fn one_workspace_serves_models_of_different_widths() {
        let mut ws = Workspace::new();
        let x = [0.3, -0.2, 1.1, 0.4];
        let mut rng = Rng::new(5);
        for hidden in [vec![3, 3], vec![8, 5], vec![2, 9], vec![4]] {
            let mlp = Mlp::new(2, &ModelConfig { hidden, ..Default::default() }, 2);
            let params = mlp.init_params(&mut rng);
            let shared = mlp.forward(&params, &x, &mut ws).to_vec();
            let fresh = mlp.forward(&params, &x, &mut Workspace::new()).to_vec();
            assert_eq!(shared, fresh);
        }
    }

    #[test]
    fn layout_is_pytorch_linear() {
        let mlp = Mlp::new(2, &ModelConfig::default(), 2);
        assert_eq!(mlp.num_params(), 16 * 3 + 16 * 17 + 2 * 17);
        let l0 = mlp.layers[0];
        assert_eq!((l0.weight_offset, l0.bias_offset), (0, 32));
        assert_eq!(mlp.layers[1].weight_offset, 48);
        // W[j][i] is params[weight_offset + j * fan_in + i]
        let params: Vec<f64> = (0..mlp.num_params()).map(|i| i as f64).collect();
        assert_eq!(l0.weights(&params)[[3, 1]], 7.0);
        assert_eq!(l0.bias(&params)[0], 32.0);
    }

    #[test]
    fn init_respects_pytorch_bounds() {
        let mlp = Mlp::new(2, &ModelConfig::default(), 2);
        let params = mlp.init_params(&mut Rng::new(0));
        for layer in &mlp.layers {
            let bound = 1.0 / (layer.fan_in as f64).sqrt();
            let slice = &params[layer.weight_offset..layer.bias_offset + layer.fan_out];
            assert!(slice.iter().all(|p| p.abs() <= bound));
            // and uses the range: the largest magnitude is near the bound
            assert!(slice.iter().fold(0.0f64, |m, p| m.max(p.abs())) > 0.8 * bound);
        }
    }

    #[test]
    fn linear_model_logits_by_hand() {
        // No hidden layers: logits = W x + b.
        let mlp = Mlp::new(2, &ModelConfig { hidden: vec![], ..Default::default() }, 2);
        let params = [1.0, 2.0, -1.0, 0.5, 0.1, -0.2];
        let mut ws = Workspace::new();
        let logits = mlp.forward(&params, &[3.0, -1.0], &mut ws).to_vec();
        // row 0: 1*3 + 2*(-1) + 0.1; row 1: (-1)*3 + 0.5*(-1) - 0.2
        assert_eq!(logits, vec![1.1, -3.7]);
    }
}
