//! Element-wise non-linearities and their derivatives.

use serde::{Deserialize, Serialize};

/// The hidden-layer non-linearity (the output layer is always linear: its
/// logits go to the softmax in [`crate::loss`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Hyperbolic tangent: smooth, output in (-1, 1).
    Tanh,
    /// Rectified linear unit: max(0, x).
    Relu,
    /// PyTorch's default (exact) GELU: x * Phi(x).
    Gelu,
    /// Logistic sigmoid: 1 / (1 + e^-x), output in (0, 1).
    Sigmoid,
}

impl Activation {
    /// Every activation, in declaration order.
    pub const ALL: [Activation; 4] = [Activation::Tanh, Activation::Relu, Activation::Gelu, Activation::Sigmoid];

    /// The lower-case name, the same one configs use, e.g. `"relu"`.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Gelu => "gelu",
            Activation::Sigmoid => "sigmoid",
        }
    }

    /// The activation of the pre-activation `z`.
    pub fn apply(self, z: f64) -> f64 {
        match self {
            Activation::Tanh => tanh(z),
            Activation::Relu => z.max(0.0),
            Activation::Gelu => 0.5 * z * (1.0 + libm::erf(z * std::f64::consts::FRAC_1_SQRT_2)),
            Activation::Sigmoid => 1.0 / (1.0 + libm::exp(-z)),
        }
    }

    /// `out[i] = apply(z[i])`. The match sits outside the loop so that the
    /// branch-free [`tanh`] vectorises (two f64 lanes in wasm SIMD).
    pub fn apply_slice(self, z: &[f64], out: &mut [f64]) {
        match self {
            Activation::Tanh => out.iter_mut().zip(z).for_each(|(a, &z)| *a = tanh(z)),
            other => out.iter_mut().zip(z).for_each(|(a, &z)| *a = other.apply(z)),
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

/// tanh in f64 without branches or library calls, so that training loops
/// vectorise and the wasm build gives bit-identical results to the native one
/// (only IEEE +, *, / and bit operations, which every platform rounds alike).
/// Within 1e-15 relative error of `libm::tanh` (a test sweeps 800k points);
/// it is 3-4x faster than `libm::tanh`, which was most of a training step.
///
/// tanh|x| = m / (m + 2) with m = expm1(2|x|) = 2^k (1 + p) - 1, where
/// k = round(2|x| / ln 2), r = 2|x| - k ln 2 (so |r| <= ln2 / 2) and
/// p = expm1(r) by a polynomial.
pub fn tanh(x: f64) -> f64 {
    // |x| > 19.1 rounds to 1 in f64; clamping keeps 2^k finite. Written as a
    // select (not f64::min) so that NaN stays NaN.
    let ax = x.abs();
    let ax = if ax > 20.0 { 20.0 } else { ax };
    let y = 2.0 * ax;
    // Round y / ln2 to an integer with the 1.5 * 2^52 trick: the sum's low
    // mantissa bits then hold k, which becomes the exponent of 2^k below.
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    let shifted = y * std::f64::consts::LOG2_E + SHIFTER;
    let k = shifted - SHIFTER;
    // ln 2 split in two (fdlibm's constants) so that k * LN2_HI is exact.
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    let p = r * expm1_over_r(r);
    let two_to_k = f64::from_bits((shifted.to_bits().wrapping_add(1023)) << 52);
    let m = two_to_k * p + (two_to_k - 1.0);
    (m / (m + 2.0)).copysign(x)
}

/// (e^r - 1) / r for |r| <= ln2 / 2, by Horner's rule. The coefficients are
/// the Taylor series r^n / (n+1)! economised to degree 10 with Chebyshev
/// polynomials on [-0.3467, 0.3467] (near-minimax: error below 2e-17, where the
/// plain Taylor series needs degree 12 for the same).
fn expm1_over_r(r: f64) -> f64 {
    const C: [f64; 11] = [
        1.0,
        0.500_000_000_000_000_6,
        0.166_666_666_666_666_8,
        0.041_666_666_666_572_86,
        0.008_333_333_333_319_56,
        0.001_388_888_893_258_668_4,
        0.000_198_412_698_901_562,
        2.480_150_422_300_442_6e-5,
        2.755_724_080_211_158_8e-6,
        2.762_640_870_867_916_7e-7,
        2.511_008_060_918_044_5e-8,
    ];
    C.iter().rev().fold(0.0, |acc, &c| acc * r + c)
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
    fn fast_tanh_is_within_1e_15_relative_of_libm() {
        let mut worst = (0.0, 0.0);
        // A dense sweep over where tanh bends, log-spaced tiny values, and the saturated tail.
        let dense = (-400_000..=400_000).map(|i| i as f64 * 5.123e-5);
        let tiny = (0..600).map(|i| 10f64.powf(-300.0 + i as f64 * 0.5));
        let tail = (0..2_000).map(|i| 15.0 + i as f64 * 0.01);
        for x in dense.chain(tiny).chain(tail).flat_map(|x| [x, -x]) {
            let exact = libm::tanh(x);
            let rel = if exact == 0.0 { tanh(x).abs() } else { ((tanh(x) - exact) / exact).abs() };
            if rel > worst.0 {
                worst = (rel, x);
            }
        }
        assert!(worst.0 <= 1e-15, "relative error {:e} at x = {}", worst.0, worst.1);
    }

    #[test]
    fn fast_tanh_special_values() {
        assert!(tanh(f64::NAN).is_nan(), "a diverged pre-activation must stay NaN");
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert_eq!(tanh(f64::NEG_INFINITY), -1.0);
        assert_eq!(tanh(1e300), 1.0);
        assert_eq!(tanh(0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(tanh(f64::MIN_POSITIVE * 0.5), f64::MIN_POSITIVE * 0.5);
        for x in [0.1, 0.7, 3.0, 12.0] {
            assert_eq!(tanh(-x), -tanh(x));
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(Activation::Relu.apply(-2.0), 0.0);
        assert_eq!(Activation::Tanh.apply(0.5), tanh(0.5));
        assert!((Activation::Sigmoid.apply(0.0) - 0.5).abs() < 1e-15);
        // torch.nn.functional.gelu(torch.tensor(1.0, dtype=torch.float64)) = 0.8413447460685429
        assert!((Activation::Gelu.apply(1.0) - 0.841_344_746_068_542_9).abs() < 1e-15);
    }
}
