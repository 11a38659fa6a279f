//! Seeded randomness that gives the same numbers on every platform.
//!
//! Everything random in a run (data, initial weights, batch order, landscape
//! directions) is drawn from a [`Rng`] built from the run's seed, so a run can
//! be replayed bit for bit natively and in the browser. We use ChaCha8 (a
//! portable, well-specified stream) and draw floats and normals ourselves with
//! `libm`, because the platform maths libraries differ in the last bit.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// A reproducible random stream.
#[derive(Clone, Debug)]
pub struct Rng {
    inner: ChaCha8Rng,
}

impl Rng {
    /// A stream seeded with `seed`: the same seed gives the same numbers everywhere.
    /// Use [`Rng::derive`] to get one stream per purpose.
    pub fn new(seed: u64) -> Self {
        Rng { inner: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// A child stream for one purpose (e.g. "data", "init"), so that changing
    /// how many numbers one purpose draws never shifts another purpose's numbers.
    pub fn derive(seed: u64, purpose: &str) -> Self {
        // FNV-1a over the purpose string, mixed into the seed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in purpose.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng::new(seed ^ h.rotate_left(17))
    }

    /// The next 64 random bits (the raw ChaCha8 output the other draws are built from).
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn uniform_in(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal by Box-Muller (one of the pair is discarded: simple, not hot).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
        let u2 = self.uniform();
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(std::f64::consts::TAU * u2)
    }

    /// Uniform integer in [0, n) without modulo bias (Lemire's method).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0)");
        let n = n as u64;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            let low = m as u64;
            if low >= n.wrapping_neg() % n {
                return (m >> 64) as usize;
            }
        }
    }

    /// +1 or -1 with equal probability (Rademacher).
    pub fn sign(&mut self) -> f64 {
        if self.next_u64() & 1 == 0 {
            1.0
        } else {
            -1.0
        }
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// `k` of the indices `0..n` drawn at random, listed in increasing order:
    /// the first `k` of a shuffle of `0..n`, sorted (without a sort, which
    /// would add a sorting routine to the page's module for this alone).
    pub fn subset_in_order(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        self.shuffle(&mut order);
        let mut chosen = vec![false; n];
        for &i in order.iter().take(k) {
            chosen[i] = true;
        }
        (0..n).filter(|&i| chosen[i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_purposes_differ() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(Rng::derive(7, "data").next_u64(), Rng::derive(7, "init").next_u64());
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut r = Rng::new(1);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }

    #[test]
    fn below_is_in_range_and_shuffle_is_a_permutation() {
        let mut r = Rng::new(3);
        for n in 1..50 {
            assert!(r.below(n) < n);
        }
        let mut v: Vec<usize> = (0..100).collect();
        r.shuffle(&mut v);
        let mut s = v.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_ne!(v, s);
    }

    #[test]
    fn subset_in_order_is_the_sorted_head_of_a_shuffle() {
        for (n, k) in [(10, 3), (100, 40), (5, 5), (7, 0), (4, 9)] {
            let mut shuffled: Vec<usize> = (0..n).collect();
            Rng::new(11).shuffle(&mut shuffled);
            shuffled.truncate(k);
            shuffled.sort_unstable();
            assert_eq!(Rng::new(11).subset_in_order(n, k), shuffled, "n {n}, k {k}");
        }
    }
}
