//! Element-wise non-linearities and their derivatives.

use serde::{Deserialize, Serialize};

/// The hidden-layer non-linearity (the output layer is always linear: its
/// logits go to the softmax in [`crate::loss`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Tanh,
    Relu,
    /// PyTorch's default (exact) GELU: x * Phi(x).
    Gelu,
    Sigmoid,
}

impl Activation {
    pub const ALL: [Activation; 4] = [Activation::Tanh, Activation::Relu, Activation::Gelu, Activation::Sigmoid];

    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Gelu => "gelu",
            Activation::Sigmoid => "sigmoid",
        }
    }

    pub fn apply(self, z: f64) -> f64 {
        match self {
            Activation::Tanh => libm::tanh(z),
            Activation::Relu => z.max(0.0),
            Activation::Gelu => 0.5 * z * (1.0 + libm::erf(z * std::f64::consts::FRAC_1_SQRT_2)),
            Activation::Sigmoid => 1.0 / (1.0 + libm::exp(-z)),
        }
    }

    /// d activation / d z, given the pre-activation `z` and the output `a = apply(z)`
    /// (passing both lets tanh and sigmoid reuse `a` instead of recomputing it).
    pub fn derivative(self, z: f64, a: f64) -> f64 {
        match self {
            Activation::Tanh => 1.0 - a * a,
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Gelu => {
                let cdf = 0.5 * (1.0 + libm::erf(z * std::f64::consts::FRAC_1_SQRT_2));
                let pdf = libm::exp(-0.5 * z * z) / (2.0 * std::f64::consts::PI).sqrt();
                cdf + z * pdf
            }
            Activation::Sigmoid => a * (1.0 - a),
        }
    }

    /// d^2 activation / d z^2, given `z` and `a = apply(z)`. Exact Hessian-vector
    /// products need it (see [`crate::hessian`]). ReLU's is 0 (almost everywhere).
    pub fn second_derivative(self, z: f64, a: f64) -> f64 {
        match self {
            Activation::Tanh => -2.0 * a * (1.0 - a * a),
            Activation::Relu => 0.0,
            // d/dz (Phi + z phi) = 2 phi + z phi' = phi (2 - z^2)
            Activation::Gelu => libm::exp(-0.5 * z * z) / (2.0 * std::f64::consts::PI).sqrt() * (2.0 - z * z),
            Activation::Sigmoid => a * (1.0 - a) * (1.0 - 2.0 * a),
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("unknown activation `{s}` (expected one of tanh, relu, gelu, sigmoid)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_central_differences() {
        for act in Activation::ALL {
            for &z in &[-3.0, -0.7, -0.1, 0.2, 0.9, 2.5] {
                let h = 1e-6;
                let fd = (act.apply(z + h) - act.apply(z - h)) / (2.0 * h);
                let an = act.derivative(z, act.apply(z));
                assert!((fd - an).abs() < 1e-8, "{act:?} at {z}: fd {fd} vs {an}");
            }
        }
    }

    #[test]
    fn second_derivatives_match_central_differences() {
        for act in Activation::ALL {
            for &z in &[-3.0, -0.7, -0.1, 0.2, 0.9, 2.5] {
                let h = 1e-5;
                let d = |z: f64| act.derivative(z, act.apply(z));
                let fd = (d(z + h) - d(z - h)) / (2.0 * h);
                let an = act.second_derivative(z, act.apply(z));
                assert!((fd - an).abs() < 1e-8, "{act:?} at {z}: fd {fd} vs {an}");
            }
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(Activation::Relu.apply(-2.0), 0.0);
        assert!((Activation::Sigmoid.apply(0.0) - 0.5).abs() < 1e-15);
        // torch.nn.functional.gelu(torch.tensor(1.0, dtype=torch.float64)) = 0.8413447460685429
        assert!((Activation::Gelu.apply(1.0) - 0.841_344_746_068_542_9).abs() < 1e-15);
    }
}
