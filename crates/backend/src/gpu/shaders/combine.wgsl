// Landscape points without uploading them: vector g is w + a_g d1 + b_g d2.
// One thread per (vector, parameter).

struct Config {
    n_params: u32,
    n_vectors: u32,
}

@group(0) @binding(0) var<storage, read> config: Config;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> d1: array<f32>;
@group(0) @binding(3) var<storage, read> d2: array<f32>;
// (a, b) per vector.
@group(0) @binding(4) var<storage, read> coords: array<f32>;
@group(0) @binding(5) var<storage, read_write> vectors: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = thread_index(gid, nwg);
    if t >= config.n_params * config.n_vectors {
        return;
    }
    let g = t / config.n_params;
    let p = t % config.n_params;
    vectors[t] = w[p] + coords[2u * g] * d1[p] + coords[2u * g + 1u] * d2[p];
}
