// Prepended to every kernel: the MLP's shape and parameter layout, the
// activations and the softmax cross-entropy, in f32. Mirrors src/model.rs,
// src/activation.rs and src/loss.rs (which work in f64).

// Widest layer (inputs, hidden units and classes all fit).
const MAX_WIDTH: u32 = 64u;
// Threads per workgroup in every kernel.
const WG: u32 = 64u;

// Layer widths of one MLP: widths[0] = inputs, widths[n_layers] = classes.
// Parameters follow PyTorch nn.Linear, layer after layer: W (fan_out x fan_in,
// row-major), then b. Only u32 fields, so the Rust side writes it as plain words.
struct Shape {
    n_layers: u32,
    // 0 tanh, 1 relu, 2 gelu (exact, erf), 3 sigmoid; the output layer is linear.
    activation: u32,
    widths: array<u32, 8>,
}

// Index of layer l's W[0][0] in a parameter vector.
fn layer_offset(shape: ptr<function, Shape>, l: u32) -> u32 {
    var offset = 0u;
    for (var m = 0u; m < l; m++) {
        offset += (*shape).widths[m + 1u] * ((*shape).widths[m] + 1u);
    }
    return offset;
}

// A flat thread index from a 2D dispatch (a dimension holds at most 65535 workgroups).
fn thread_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// A flat workgroup index from a 2D dispatch.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// erf by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7, below f32's resolution
// of values near 1); WGSL has no erf.
fn erf_approx(x: f32) -> f32 {
    let ax = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * ax);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * exp(-ax * ax);
    return select(y, -y, x < 0.0);
}

const SQRT_HALF: f32 = 0.70710678118654752;
const INV_SQRT_2PI: f32 = 0.39894228040143268;

fn activate(kind: u32, z: f32) -> f32 {
    switch kind {
        // Some adapters return NaN from tanh for |z| > ~88; tanh(15) is 1 in f32 anyway.
        case 0u: { return tanh(clamp(z, -15.0, 15.0)); }
        case 1u: { return max(z, 0.0); }
        case 2u: { return 0.5 * z * (1.0 + erf_approx(z * SQRT_HALF)); }
        // Clamped so exp never overflows (drivers differ on inf); the error is < 1e-34.
        default: { return 1.0 / (1.0 + exp(-clamp(z, -80.0, 80.0))); }
    }
}

// d activation / d z from the pre-activation z and the output a = activate(z).
fn activate_grad(kind: u32, z: f32, a: f32) -> f32 {
    switch kind {
        case 0u: { return 1.0 - a * a; }
        case 1u: { return select(0.0, 1.0, z > 0.0); }
        case 2u: {
            return 0.5 * (1.0 + erf_approx(z * SQRT_HALF)) + z * INV_SQRT_2PI * exp(-0.5 * z * z);
        }
        default: { return a * (1.0 - a); }
    }
}

// log sum_c exp(buf[off + c]) over k logits, with the largest subtracted first so
// that large logits never overflow.
fn log_sum_exp(buf: ptr<function, array<f32, 128>>, off: u32, k: u32) -> f32 {
    var top = (*buf)[off];
    for (var c = 1u; c < k; c++) {
        top = max(top, (*buf)[off + c]);
    }
    var sum_exp = 0.0;
    for (var c = 0u; c < k; c++) {
        sum_exp += exp((*buf)[off + c] - top);
    }
    return top + log(sum_exp);
}

// The predicted class: the first of the largest logits, as in src/loss.rs.
fn arg_max(buf: ptr<function, array<f32, 128>>, off: u32, k: u32) -> u32 {
    var best = 0u;
    for (var c = 1u; c < k; c++) {
        if (*buf)[off + c] > (*buf)[off + best] {
            best = c;
        }
    }
    return best;
}

// Target probability of class c for label y with label smoothing eps:
// q_c = (1 - eps) [c == y] + eps / k.
fn smoothed_target(c: u32, y: u32, k: u32, eps: f32) -> f32 {
    return eps / f32(k) + select(0.0, 1.0 - eps, c == y);
}

// Softmax cross-entropy -sum_c q_c log softmax_c of the logits buf[off .. off + k],
// given their log_sum_exp.
fn cross_entropy(buf: ptr<function, array<f32, 128>>, off: u32, k: u32, y: u32, eps: f32, log_z: f32) -> f32 {
    var loss = 0.0;
    for (var c = 0u; c < k; c++) {
        loss -= smoothed_target(c, y, k, eps) * ((*buf)[off + c] - log_z);
    }
    return loss;
}
