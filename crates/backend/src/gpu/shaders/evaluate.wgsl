// Kernel 2: mean loss and accuracy of many parameter vectors (one model shape)
// over one dataset: landscape surfaces and slices, replica metrics. One workgroup
// per vector; its threads split the points, then sum in a fixed tree order.

struct Config {
    shape: Shape,
    // Distance between consecutive vectors in `params`.
    stride: u32,
    n_vectors: u32,
    n_points: u32,
    label_smoothing: f32,
}

@group(0) @binding(0) var<storage, read> config: Config;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read> ys: array<u32>;
// [vector][loss, accuracy]
@group(0) @binding(4) var<storage, read_write> results: array<f32>;

var<workgroup> loss_part: array<f32, WG>;
var<workgroup> hit_part: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let v = group_index(wid, nwg);
    var shape = config.shape;
    let inputs = shape.widths[0];
    let k = shape.widths[shape.n_layers];
    var loss = 0.0;
    var hits = 0.0;
    // `v` is the same for the whole workgroup, so the barriers below stay uniform.
    if v < config.n_vectors {
        var buf: array<f32, 128>;
        for (var n = lid; n < config.n_points; n += WG) {
            for (var c = 0u; c < inputs; c++) {
                buf[c] = xs[n * inputs + c];
            }
            let off = mlp_forward(&shape, v * config.stride, &buf);
            let y = ys[n];
            loss += cross_entropy(&buf, off, k, y, config.label_smoothing, log_sum_exp(&buf, off, k));
            hits += select(0.0, 1.0, arg_max(&buf, off, k) == y);
        }
    }
    loss_part[lid] = loss;
    hit_part[lid] = hits;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if lid < half {
            loss_part[lid] += loss_part[lid + half];
            hit_part[lid] += hit_part[lid + half];
        }
        workgroupBarrier();
    }
    if lid == 0u && v < config.n_vectors {
        let n = f32(config.n_points);
        results[2u * v] = loss_part[0] / n;
        results[2u * v + 1u] = hit_part[0] / n;
    }
}
