// Prepended to the kernels that only run models forward (forward.wgsl,
// evaluate.wgsl). They declare the `params` buffer this reads.

// Runs the MLP whose parameter vector starts at params[base] on the input already
// in buf[0 .. inputs]. Layers ping-pong between the halves of buf; returns the
// offset of the logits.
fn mlp_forward(shape: ptr<function, Shape>, base: u32, buf: ptr<function, array<f32, 128>>) -> u32 {
    let n_layers = (*shape).n_layers;
    let kind = (*shape).activation;
    var in_off = 0u;
    var w = base;
    for (var l = 0u; l < n_layers; l++) {
        let fan_in = (*shape).widths[l];
        let fan_out = (*shape).widths[l + 1u];
        let out_off = MAX_WIDTH - in_off;
        let bias = w + fan_out * fan_in;
        let is_output = l + 1u == n_layers;
        for (var j = 0u; j < fan_out; j++) {
            let row = w + j * fan_in;
            var z = 0.0;
            for (var i = 0u; i < fan_in; i++) {
                z += params[row + i] * (*buf)[in_off + i];
            }
            z += params[bias + j];
            (*buf)[out_off + j] = select(activate(kind, z), z, is_output);
        }
        w = bias + fan_out;
        in_off = out_off;
    }
    return in_off;
}
