// Kernel 3: R independent replicas trained side by side, all state on the GPU.
// One optimiser step is a short sequence of dispatches (see src/gpu/replicas.rs):
//   forward_backward -> gradient [-> sam_perturb -> forward_backward -> gradient] -> sgd_step -> advance
// The gradient is always taken at `probe`: sgd_step leaves probe = weights, and
// sam_perturb moves it to weights + e for the second pass of a SAM step.

struct Config {
    shape: Shape,
    n_replicas: u32,
    n_params: u32,
    // Slots per (step, replica) in `batch_index`: the batch size.
    batch_stride: u32,
    // Floats of `scratch` per (replica, slot): 3 x the sum of all layer widths.
    scratch_stride: u32,
    // Sum of all layer widths (inputs .. classes): the size of one scratch region.
    level_total: u32,
    label_smoothing: f32,
}

// One replica's optimiser (torch.optim.SGD) and SAM settings.
struct Hyper {
    momentum: f32,
    dampening: f32,
    weight_decay: f32,
    nesterov: u32,
    rho: f32,
    // 0: plain SGD, 1: SAM, 2: ASAM.
    sam: u32,
}

// Which step of the uploaded plan runs now; advanced on the GPU by `advance`.
struct Step {
    // Index into this chunk's batch plan and learning rates.
    local: u32,
    // Steps taken since the start (torch's momentum buffer starts at step 0).
    global: u32,
}

@group(0) @binding(0) var<storage, read> config: Config;
@group(0) @binding(1) var<storage, read> hypers: array<Hyper>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read> ys: array<u32>;
// [local step][replica][slot]: indices into the training set.
@group(0) @binding(4) var<storage, read> batch_index: array<u32>;
// [local step][replica]: the batch size of that step (the last of an epoch may be short).
@group(0) @binding(5) var<storage, read> batch_len: array<u32>;
// [local step][replica]: the learning rate after the schedule.
@group(0) @binding(6) var<storage, read> lrs: array<f32>;
// [replica][parameter] for the next five.
@group(0) @binding(7) var<storage, read_write> weights: array<f32>;
@group(0) @binding(8) var<storage, read_write> probe: array<f32>;
@group(0) @binding(9) var<storage, read_write> grad: array<f32>;
@group(0) @binding(10) var<storage, read_write> momentum_buf: array<f32>;
// [replica][slot]: activations, activation derivatives and deltas of one sample,
// each region laid out by level (level 0 = input, level n_layers = logits).
@group(0) @binding(11) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(12) var<storage, read_write> step: Step;

// Offset of level l within a scratch region.
fn level_offset(shape: ptr<function, Shape>, l: u32) -> u32 {
    var offset = 0u;
    for (var m = 0u; m < l; m++) {
        offset += (*shape).widths[m];
    }
    return offset;
}

// One thread per (replica, batch slot): forward pass at `probe`, storing each hidden
// layer's output and activation derivative, then back-propagation of
// d(mean batch loss)/d z to every layer (z = pre-activation).
@compute @workgroup_size(WG)
fn forward_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = thread_index(gid, nwg);
    let slots = config.batch_stride;
    if t >= config.n_replicas * slots {
        return;
    }
    let r = t / slots;
    let b = t % slots;
    let plan = step.local * config.n_replicas + r;
    let rows = batch_len[plan];
    if b >= rows {
        return;
    }
    let n = batch_index[plan * slots + b];
    var shape = config.shape;
    let n_layers = shape.n_layers;
    let kind = shape.activation;
    let total = config.level_total;
    let acts = t * config.scratch_stride;
    let dacts = acts + total;
    let deltas = acts + 2u * total;
    let base = r * config.n_params;

    var buf: array<f32, 128>;
    let inputs = shape.widths[0];
    for (var c = 0u; c < inputs; c++) {
        buf[c] = xs[n * inputs + c];
        scratch[acts + c] = buf[c];
    }
    var in_off = 0u;
    var level = 0u;
    for (var l = 0u; l < n_layers; l++) {
        let fan_in = shape.widths[l];
        let fan_out = shape.widths[l + 1u];
        let w = base + layer_offset(&shape, l);
        let out_off = MAX_WIDTH - in_off;
        let is_output = l + 1u == n_layers;
        let next_level = level + fan_in;
        for (var j = 0u; j < fan_out; j++) {
            var z = 0.0;
            for (var i = 0u; i < fan_in; i++) {
                z += probe[w + j * fan_in + i] * buf[in_off + i];
            }
            z += probe[w + fan_out * fan_in + j];
            if is_output {
                buf[out_off + j] = z;
            } else {
                let a = activate(kind, z);
                buf[out_off + j] = a;
                scratch[acts + next_level + j] = a;
                scratch[dacts + next_level + j] = activate_grad(kind, z, a);
            }
        }
        in_off = out_off;
        level = next_level;
    }

    // d(mean loss)/d logits = (softmax - q) / rows, as in Mlp::loss_and_grad.
    let k = shape.widths[n_layers];
    let y = ys[n];
    let eps = config.label_smoothing;
    let log_z = log_sum_exp(&buf, in_off, k);
    let inv_rows = 1.0 / f32(rows);
    let out_off = MAX_WIDTH - in_off;
    for (var c = 0u; c < k; c++) {
        let d = (exp(buf[in_off + c] - log_z) - smoothed_target(c, y, k, eps)) * inv_rows;
        buf[out_off + c] = d;
        scratch[deltas + level + c] = d;
    }
    // Back through layer l's weights, then through the activation below it.
    var d_off = out_off;
    for (var l = n_layers - 1u; l > 0u; l--) {
        let fan_in = shape.widths[l];
        let fan_out = shape.widths[l + 1u];
        let w = base + layer_offset(&shape, l);
        let below = level - fan_in;
        let new_off = MAX_WIDTH - d_off;
        for (var i = 0u; i < fan_in; i++) {
            var s = 0.0;
            for (var j = 0u; j < fan_out; j++) {
                s += buf[d_off + j] * probe[w + j * fan_in + i];
            }
            let d = s * scratch[dacts + below + i];
            buf[new_off + i] = d;
            scratch[deltas + below + i] = d;
        }
        d_off = new_off;
        level = below;
    }
}

// One thread per (replica, parameter): sums delta x input over the batch slots
// (a fixed order, so the result does not depend on scheduling).
@compute @workgroup_size(WG)
fn gradient(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = thread_index(gid, nwg);
    let n_params = config.n_params;
    if t >= config.n_replicas * n_params {
        return;
    }
    let r = t / n_params;
    let p = t % n_params;
    var shape = config.shape;
    // Find p's layer, then whether it is W[j][i] or b[j].
    var l = 0u;
    var offset = 0u;
    var level = 0u;
    loop {
        let size = shape.widths[l + 1u] * (shape.widths[l] + 1u);
        if p < offset + size {
            break;
        }
        offset += size;
        level += shape.widths[l];
        l++;
    }
    let fan_in = shape.widths[l];
    let local = p - offset;
    let is_bias = local >= fan_in * shape.widths[l + 1u];
    let j = select(local / fan_in, local - fan_in * shape.widths[l + 1u], is_bias);
    let i = local % fan_in;
    let total = config.level_total;
    let delta_at = 2u * total + level + fan_in + j;
    let input_at = level + i;
    let rows = batch_len[step.local * config.n_replicas + r];
    var g = 0.0;
    for (var b = 0u; b < rows; b++) {
        let slot = (r * config.batch_stride + b) * config.scratch_stride;
        let x = select(scratch[slot + input_at], 1.0, is_bias);
        g += scratch[slot + delta_at] * x;
    }
    grad[t] = g;
}

var<workgroup> norm_part: array<f32, WG>;

// One workgroup per replica: SAM's ascent step e = rho g / (||g|| + 1e-12)
// (ASAM: rho w^2 g / (||w g|| + 1e-12)), as in src/sam.rs; probe = weights + e.
@compute @workgroup_size(WG)
fn sam_perturb(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let r = group_index(wid, nwg);
    let n_params = config.n_params;
    // Uniform per workgroup: replicas without SAM keep probe = weights.
    if r >= config.n_replicas || hypers[r].sam == 0u {
        return;
    }
    let adaptive = hypers[r].sam == 2u;
    let base = r * n_params;
    var s = 0.0;
    for (var p = lid; p < n_params; p += WG) {
        let g = grad[base + p];
        let tg = select(g, abs(weights[base + p]) * g, adaptive);
        s += tg * tg;
    }
    norm_part[lid] = s;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if lid < half {
            norm_part[lid] += norm_part[lid + half];
        }
        workgroupBarrier();
    }
    let scale = hypers[r].rho / (sqrt(norm_part[0]) + 1e-12);
    for (var p = lid; p < n_params; p += WG) {
        let w = weights[base + p];
        let g = grad[base + p];
        probe[base + p] = w + select(g, w * w * g, adaptive) * scale;
    }
}

// One thread per (replica, parameter): torch.optim.SGD (single-tensor path) as
// in src/optim.rs, from `weights` with the gradient taken at `probe`.
@compute @workgroup_size(WG)
fn sgd_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = thread_index(gid, nwg);
    if t >= config.n_replicas * config.n_params {
        return;
    }
    let r = t / config.n_params;
    let h = hypers[r];
    let lr = lrs[step.local * config.n_replicas + r];
    var w = weights[t];
    var d = grad[t] + h.weight_decay * w;
    if h.momentum != 0.0 {
        var m = d;
        if step.global > 0u {
            m = h.momentum * momentum_buf[t] + (1.0 - h.dampening) * d;
        }
        momentum_buf[t] = m;
        d = select(m, d + h.momentum * m, h.nesterov == 1u);
    }
    w -= lr * d;
    weights[t] = w;
    probe[t] = w;
}

// One thread: the next step reads the next entry of the plan.
@compute @workgroup_size(1)
fn advance() {
    step.local += 1u;
    step.global += 1u;
}
