// Kernel 1: class probabilities of several models at many points (decision
// boundaries of both sides, ensembles). One thread per (model, point).

struct Config {
    n_points: u32,
    n_models: u32,
    // 1: point i is on the grid below (no upload); 0: read it from `points`.
    on_grid: u32,
    nx: u32,
    ny: u32,
    x_min: f32,
    x_max: f32,
    y_min: f32,
    y_max: f32,
}

struct Model {
    shape: Shape,
    // Where this model's parameters start in `params`.
    param_offset: u32,
    // Where its n_points x classes probabilities start in `probs`.
    out_offset: u32,
}

@group(0) @binding(0) var<storage, read> config: Config;
@group(0) @binding(1) var<storage, read> models: array<Model>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> points: array<f32>;
@group(0) @binding(4) var<storage, read_write> probs: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = thread_index(gid, nwg);
    if t >= config.n_points * config.n_models {
        return;
    }
    let m = t / config.n_points;
    let i = t % config.n_points;
    var shape = models[m].shape;
    let inputs = shape.widths[0];
    var buf: array<f32, 128>;
    if config.on_grid == 1u {
        // Same formula as Grid2d::points: x_min + ix * (x_max - x_min) / (nx - 1).
        let ix = i % config.nx;
        let iy = i / config.nx;
        let dx = select(0.0, (config.x_max - config.x_min) / f32(config.nx - 1u), config.nx > 1u);
        let dy = select(0.0, (config.y_max - config.y_min) / f32(config.ny - 1u), config.ny > 1u);
        buf[0] = config.x_min + f32(ix) * dx;
        buf[1] = config.y_min + f32(iy) * dy;
    } else {
        for (var c = 0u; c < inputs; c++) {
            buf[c] = points[i * inputs + c];
        }
    }
    let off = mlp_forward(&shape, models[m].param_offset, &buf);
    let k = shape.widths[shape.n_layers];
    let log_z = log_sum_exp(&buf, off, k);
    let out = models[m].out_offset + i * k;
    for (var c = 0u; c < k; c++) {
        probs[out + c] = exp(buf[off + c] - log_z);
    }
}
