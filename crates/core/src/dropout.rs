//! Inverted dropout, as `torch.nn.Dropout` in training mode: each hidden unit
//! is kept with probability 1 - p and a kept unit is scaled by 1 / (1 - p), so
//! the expected input of the next layer is what it is without dropout; at
//! evaluation (metrics, boundaries, landscape, sharpness) nothing is dropped.
//!
//! A mask is a vector of multipliers, one per (row, unit) of a batch: 0 for a
//! dropped unit, 1/(1-p) for a kept one. A run draws its masks once per step
//! from its own stream (`Rng::derive(seed, "dropout")`), so runs stay
//! reproducible and the two sides of a pair (same seed, same batch sizes) drop
//! the same units; SAM uses the step's mask for both of its gradients.

use crate::error::{check_range, ConfigError};
use crate::model::Mlp;
use crate::rng::Rng;

/// The largest dropout probability a config accepts (at 1 nothing would pass).
pub const MAX_DROPOUT: f64 = 0.9;

/// Checks a config's dropout list against the number of hidden layers:
/// empty, one value for all, or one value per hidden layer, each in [0, 0.9].
pub fn validate(dropout: &[f64], hidden_layers: usize) -> Result<(), ConfigError> {
    if dropout.len() > 1 && dropout.len() != hidden_layers {
        return Err(ConfigError::new(
            "",
            format!(
                "has {} values but the model has {hidden_layers} hidden layers (give one value for all, or one per layer)",
                dropout.len()
            ),
        ));
    }
    for (i, &p) in dropout.iter().enumerate() {
        check_range(&format!("[{i}]"), p, 0.0, MAX_DROPOUT).map_err(|e| ConfigError::new(e.field, e.message))?;
    }
    Ok(())
}

/// A run's dropout masks for one step: `masks[l]` for hidden layer l (empty
/// where that layer has p = 0), sized once for the largest batch.
#[derive(Clone, Debug)]
pub struct Masks {
    rng: Rng,
    /// One multiplier per (row, unit) of each hidden layer, row-major.
    pub masks: Vec<Vec<f64>>,
}

impl Masks {
    /// Buffers for batches of up to `max_rows`, drawing from `Rng::derive(seed, "dropout")`.
    pub fn new(mlp: &Mlp, max_rows: usize, seed: u64) -> Masks {
        let hidden = &mlp.layers[..mlp.layers.len() - 1];
        let masks = hidden
            .iter()
            .zip(&mlp.dropout)
            .map(|(layer, &p)| if p > 0.0 { vec![0.0; max_rows * layer.fan_out] } else { Vec::new() })
            .collect();
        Masks { rng: Rng::derive(seed, "dropout"), masks }
    }

    /// Draws fresh masks for a batch of `rows` and returns them, each cut to
    /// `rows x width`. Draws nothing for layers without dropout.
    pub fn draw(&mut self, mlp: &Mlp, rows: usize) -> &[Vec<f64>] {
        for ((mask, layer), &p) in self.masks.iter_mut().zip(&mlp.layers).zip(&mlp.dropout) {
            if p > 0.0 {
                let n = rows * layer.fan_out;
                mask.resize(n, 0.0); // only shrinks or regrows to a size it had: no allocation
                let scale = 1.0 / (1.0 - p);
                for m in mask.iter_mut() {
                    // torch: bernoulli(1 - p) keeps the unit
                    *m = if self.rng.uniform() < 1.0 - p { scale } else { 0.0 };
                }
            }
        }
        &self.masks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::model::{ModelConfig, Workspace};

    fn relu_net(hidden: Vec<usize>, dropout: Vec<f64>) -> Mlp {
        Mlp::new(2, &ModelConfig { hidden, activation: Activation::Relu, label_smoothing: 0.0, dropout }, 3)
    }

    #[test]
    fn masks_keep_with_probability_one_minus_p_and_scale_the_kept() {
        let mlp = relu_net(vec![50, 40], vec![0.3, 0.0]);
        let mut masks = Masks::new(&mlp, 200, 7);
        let m = masks.draw(&mlp, 200);
        assert!(m[1].is_empty(), "p = 0: no mask");
        assert_eq!(m[0].len(), 200 * 50);
        let kept = m[0].iter().filter(|&&v| v != 0.0).count() as f64 / m[0].len() as f64;
        // 10000 Bernoulli(0.7) draws: standard error 0.0046; 5 of them is a failure by chance 1 in 10^6.
        assert!((kept - 0.7).abs() < 5.0 * (0.21f64 / 10000.0).sqrt(), "kept fraction {kept}");
        assert!(m[0].iter().all(|&v| v == 0.0 || v == 1.0 / 0.7));
        // Smaller batches cut the same buffers.
        assert_eq!(masks.draw(&mlp, 3)[0].len(), 150);
    }

    #[test]
    fn the_expected_output_over_all_masks_is_the_undropped_output() {
        // One hidden layer of 4 units, then the linear output layer: the logits are linear in the
        // dropped activations, so their expectation over the 2^4 masks (each with probability
        // p^dropped (1-p)^kept) is exactly the network without dropout (the closed form of inverted dropout).
        let p = 0.4;
        let mlp = relu_net(vec![4], vec![p]);
        let params = mlp.init_params(&mut Rng::new(3));
        let x = [0.3, -1.2, 0.8, 0.5];
        let mut ws = Workspace::new();
        let plain = mlp.forward(&params, &x, &mut ws).to_vec();
        let mut expected = vec![0.0; plain.len()];
        for bits in 0u32..(1 << 8) {
            // 2 rows x 4 units: 8 independent units
            let mask: Vec<f64> = (0..8).map(|i| if bits >> i & 1 == 1 { 1.0 / (1.0 - p) } else { 0.0 }).collect();
            let kept = bits.count_ones() as i32;
            let prob = (1.0 - p).powi(kept) * p.powi(8 - kept);
            let out = mlp.forward_dropout(&params, &x, &[mask], &mut ws);
            for (e, &o) in expected.iter_mut().zip(out) {
                *e += prob * o;
            }
        }
        for (e, o) in expected.iter().zip(&plain) {
            assert!((e - o).abs() < 1e-12, "E[output] {e} vs undropped {o}");
        }
    }

    #[test]
    fn gradient_with_a_fixed_mask_matches_finite_differences() {
        for activation in Activation::ALL {
            let config = ModelConfig { hidden: vec![5, 4], activation, label_smoothing: 0.1, dropout: vec![0.5, 0.25] };
            let mlp = Mlp::new(2, &config, 3);
            let mut rng = Rng::new(11);
            let params = mlp.init_params(&mut rng);
            let rows = 6;
            let x: Vec<f64> = (0..rows * 2).map(|_| rng.normal()).collect();
            let y: Vec<usize> = (0..rows).map(|_| rng.below(3)).collect();
            let mut masks = Masks::new(&mlp, rows, 5);
            let masks = masks.draw(&mlp, rows).to_vec();
            assert!(masks[0].contains(&0.0) && masks[0].contains(&2.0), "the mask drops and keeps");
            let mut ws = Workspace::new();
            let mut grad = vec![0.0; params.len()];
            mlp.loss_and_grad_dropout(&params, &x, &y, &masks, &mut grad, &mut ws);
            let mut scratch = vec![0.0; params.len()];
            let mut loss_at = |p: &[f64]| mlp.loss_and_grad_dropout(p, &x, &y, &masks, &mut scratch, &mut ws);
            let h = 1e-6;
            for i in 0..params.len() {
                let mut p = params.clone();
                p[i] += h;
                let up = loss_at(&p);
                p[i] -= 2.0 * h;
                let down = loss_at(&p);
                let fd = (up - down) / (2.0 * h);
                let err = (fd - grad[i]).abs() / (1e-8 + 1e-6 * fd.abs().max(grad[i].abs()));
                assert!(err < 1.0, "{activation:?} parameter {i}: fd {fd} vs {}", grad[i]);
            }
        }
    }

    #[test]
    fn all_ones_masks_are_the_plain_network_bit_for_bit() {
        let config =
            ModelConfig { hidden: vec![6, 5], activation: Activation::Tanh, label_smoothing: 0.0, dropout: vec![] };
        let mlp = Mlp::new(2, &config, 2);
        let mut rng = Rng::new(2);
        let params = mlp.init_params(&mut rng);
        let x: Vec<f64> = (0..10).map(|_| rng.normal()).collect();
        let y = [0, 1, 1, 0, 1];
        let ones = vec![vec![1.0; 5 * 6], vec![1.0; 5 * 5]];
        let mut ws = Workspace::new();
        let (mut g1, mut g2) = (vec![0.0; params.len()], vec![0.0; params.len()]);
        let l1 = mlp.loss_and_grad(&params, &x, &y, &mut g1, &mut ws);
        let l2 = mlp.loss_and_grad_dropout(&params, &x, &y, &ones, &mut g2, &mut ws);
        assert_eq!((l1.to_bits(), g1), (l2.to_bits(), g2));
    }

    #[test]
    fn bad_dropout_lists_are_named() {
        assert!(validate(&[], 2).is_ok() && validate(&[0.5], 2).is_ok() && validate(&[0.1, 0.2], 2).is_ok());
        assert!(validate(&[0.1, 0.2, 0.3], 2).unwrap_err().message.contains("2 hidden layers"));
        assert_eq!(validate(&[0.1, 0.95], 2).unwrap_err().field, "[1]");
        assert!(validate(&[f64::NAN], 2).is_err());
    }
}
