//! Kendall's rank correlation tau-b between two measurements of the same
//! items (e.g. a sharpness measure and the OOD accuracy of each trained run):
//! +1 when they order every pair of items the same way, -1 when opposite, 0
//! when agreement and disagreement balance. Tau-b corrects for ties (many runs
//! reach exactly the same accuracy), as scipy.stats.kendalltau does by default:
//!
//!   tau_b = (concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y)),
//!
//! with n0 = n (n - 1) / 2 and ties_x, ties_y the pairs tied in x or in y.
//! Computed in O(n log n) (Knight 1966, as scipy): sort by (x, y), then count
//! discordant pairs with a Fenwick tree, because a study's bootstrap
//! recomputes it thousands of times over a thousand runs or more.

/// Tau-b of the pairs (x_i, y_i); None when it is undefined: fewer than two
/// items, or all x (or all y) equal. NaN values must be filtered out first.
pub fn tau_b(x: &[f64], y: &[f64]) -> Option<f64> {
    assert_eq!(x.len(), y.len(), "tau_b needs paired values");
    let n = x.len();
    if n < 2 {
        return None;
    }
    // Sort the pairs themselves, as integer keys in f64's total order: no
    // index indirection or float comparisons in the sort (a study's bootstrap
    // spends its time here).
    let mut xy: Vec<(i64, i64)> = x.iter().zip(y).map(|(&a, &b)| (order_key(a), order_key(b))).collect();
    xy.sort_unstable();
    // Dense ranks (1-based) of x along the (x, y) order, and of each item's y.
    let mut ys: Vec<i64> = xy.iter().map(|&(_, b)| b).collect();
    ys.sort_unstable();
    let pairs = |count: u64| count * count.saturating_sub(1) / 2;
    let total = pairs(n as u64);
    let ties_y = tied_pairs(&ys, |i| ys[i]);
    ys.dedup();
    let ry: Vec<usize> = xy.iter().map(|(_, b)| ys.partition_point(|v| v < b) + 1).collect();
    let mut rx = Vec::with_capacity(n);
    let mut rank = 0;
    for k in 0..n {
        if k == 0 || xy[k].0 != xy[k - 1].0 {
            rank += 1;
        }
        rx.push(rank);
    }
    let ties_x = tied_pairs(&rx, |i| rx[i]);
    // Pairs tied in both x and y: runs of equal (x, y) in the (x, y) order.
    let ties_xy = tied_pairs(&xy, |i| xy[i]);
    let discordant = discordant_pairs(&rx, &ry);
    if total == ties_x || total == ties_y {
        return None;
    }
    let concordant_minus_discordant =
        total as i128 - ties_x as i128 - ties_y as i128 + ties_xy as i128 - 2 * discordant as i128;
    Some(concordant_minus_discordant as f64 / ((total - ties_x) as f64).sqrt() / ((total - ties_y) as f64).sqrt())
}

/// An integer whose order is `f64::total_cmp`'s (the same bit trick), with
/// -0.0 and 0.0 one value (total_cmp would order them apart).
fn order_key(v: f64) -> i64 {
    let bits = (v + 0.0).to_bits() as i64;
    bits ^ (((bits >> 63) as u64) >> 1) as i64
}

/// Sum of m (m - 1) / 2 over the runs of equal keys in a sorted sequence.
fn tied_pairs<T, K: PartialEq>(items: &[T], key: impl Fn(usize) -> K) -> u64 {
    let mut total = 0;
    let mut run = 1u64;
    for i in 1..=items.len() {
        if i < items.len() && key(i) == key(i - 1) {
            run += 1;
        } else {
            total += run * (run - 1) / 2;
            run = 1;
        }
    }
    total
}

/// Pairs i, j with x_i < x_j and y_i > y_j, for items sorted by (x, y) given
/// as dense ranks: for each group of equal x, the items of earlier groups with
/// a larger y (a Fenwick tree of the y ranks seen so far).
fn discordant_pairs(rx: &[usize], ry: &[usize]) -> u64 {
    let n = rx.len();
    let size = ry.iter().copied().max().unwrap_or(0) + 1;
    let mut tree = vec![0u64; size];
    let (mut dis, mut i, mut k) = (0u64, 0, 0);
    while i < n {
        // Items of the group starting at i: count earlier items above their y.
        while k < n && rx[k] == rx[i] {
            let mut at_most = 0;
            let mut idx = ry[k];
            while idx > 0 {
                at_most += tree[idx];
                idx &= idx - 1;
            }
            dis += i as u64 - at_most;
            k += 1;
        }
        // Then add the group to the tree.
        while i < k {
            let mut idx = ry[i];
            while idx < size {
                tree[idx] += 1;
                idx += idx & idx.wrapping_neg();
            }
            i += 1;
        }
    }
    dis
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The sort of the first version (indices ordered by `total_cmp` of the
    /// floats), kept to check that the integer-key sort gives the same bits.
    fn tau_b_by_index_sort(x: &[f64], y: &[f64]) -> Option<f64> {
        let n = x.len();
        if n < 2 {
            return None;
        }
        let x: Vec<f64> = x.iter().map(|v| v + 0.0).collect();
        let y: Vec<f64> = y.iter().map(|v| v + 0.0).collect();
        let (x, y) = (&x[..], &y[..]);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(y[a].total_cmp(&y[b])));
        let rx = dense_ranks(&order, x);
        let mut by_y: Vec<usize> = (0..n).collect();
        by_y.sort_by(|&a, &b| y[a].total_cmp(&y[b]));
        let mut y_rank_of = vec![0; n];
        for (&item, &r) in by_y.iter().zip(&dense_ranks(&by_y, y)) {
            y_rank_of[item] = r;
        }
        let ry: Vec<usize> = order.iter().map(|&i| y_rank_of[i]).collect();
        let pairs = |count: u64| count * count.saturating_sub(1) / 2;
        let total = pairs(n as u64);
        let ties_x = tied_pairs(&rx, |i| rx[i]);
        let mut sorted = ry.clone();
        sorted.sort_unstable();
        let ties_y = tied_pairs(&sorted, |i| sorted[i]);
        let ties_xy = tied_pairs(&rx, |i| (rx[i], ry[i]));
        let discordant = discordant_pairs(&rx, &ry);
        if total == ties_x || total == ties_y {
            return None;
        }
        let c = total as i128 - ties_x as i128 - ties_y as i128 + ties_xy as i128 - 2 * discordant as i128;
        Some(c as f64 / ((total - ties_x) as f64).sqrt() / ((total - ties_y) as f64).sqrt())
    }

    /// Dense ranks (1, 2, ...) of `values` visited in `order` (which sorts them).
    fn dense_ranks(order: &[usize], values: &[f64]) -> Vec<usize> {
        let mut ranks = Vec::with_capacity(order.len());
        let mut rank = 0;
        for (k, &i) in order.iter().enumerate() {
            if k == 0 || values[i] != values[order[k - 1]] {
                rank += 1;
            }
            ranks.push(rank);
        }
        ranks
    }

    #[test]
    fn the_integer_key_sort_gives_the_bits_of_the_float_sort() {
        let mut rng = Rng::new(21);
        // Ties, both signs, -0.0 against 0.0, infinities, subnormals.
        let special = [0.0, -0.0, 1.0, -1.0, f64::INFINITY, f64::NEG_INFINITY, 5e-324, -5e-324, 1e300];
        for n in [2, 3, 17, 200, 1000] {
            for levels in [2, 7, 0] {
                let draw = |rng: &mut Rng| {
                    if levels == 0 {
                        rng.normal() * 10f64.powi(rng.below(7) as i32 - 3)
                    } else if rng.below(4) == 0 {
                        special[rng.below(special.len())]
                    } else {
                        rng.below(levels) as f64 - 2.0
                    }
                };
                let x: Vec<f64> = (0..n).map(|_| draw(&mut rng)).collect();
                let y: Vec<f64> = (0..n).map(|_| draw(&mut rng)).collect();
                let (fast, reference) = (tau_b(&x, &y), tau_b_by_index_sort(&x, &y));
                assert_eq!(fast.map(f64::to_bits), reference.map(f64::to_bits), "n {n} levels {levels}");
            }
        }
    }

    /// The definition, pair by pair: O(n^2), for checking.
    fn tau_b_by_pairs(x: &[f64], y: &[f64]) -> Option<f64> {
        let n = x.len();
        let (mut s, mut tx, mut ty, mut total) = (0i64, 0i64, 0i64, 0i64);
        for i in 0..n {
            for j in i + 1..n {
                let (dx, dy) = (x[i] - x[j], y[i] - y[j]);
                total += 1;
                tx += i64::from(dx == 0.0);
                ty += i64::from(dy == 0.0);
                s += (dx.signum() * dy.signum()) as i64 * i64::from(dx != 0.0 && dy != 0.0);
            }
        }
        (total > tx && total > ty).then(|| s as f64 / (((total - tx) * (total - ty)) as f64).sqrt())
    }

    #[test]
    fn closed_forms() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        // 10 / sqrt(10) / sqrt(10): 1 up to rounding (scipy gives 0.9999999999999999 too).
        assert!((tau_b(&x, &x).unwrap() - 1.0).abs() < 1e-15);
        assert!((tau_b(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-15);
        // One swapped neighbour: 9 concordant, 1 discordant of 10.
        assert!((tau_b(&x, &[1.0, 2.0, 3.0, 5.0, 4.0]).unwrap() - 0.8).abs() < 1e-15);
        // Ties: x = (1, 1, 2), y = (1, 2, 3): 2 concordant, 0 discordant, 1 tie in x
        // -> 2 / sqrt((3 - 1) 3) = sqrt(2/3).
        let t = tau_b(&[1.0, 1.0, 2.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!((t - (2.0f64 / 3.0).sqrt()).abs() < 1e-15, "{t}");
        assert_eq!(tau_b(&[1.0], &[2.0]), None);
        assert_eq!(tau_b(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None, "constant x");
        assert_eq!(tau_b(&[1.0, 2.0, 3.0], &[4.0, 4.0, 4.0]), None, "constant y");
    }

    #[test]
    fn equals_the_pairwise_definition_with_many_ties() {
        let mut rng = Rng::new(9);
        for n in [2, 3, 10, 57, 300] {
            for levels in [2, 5, 1000] {
                let x: Vec<f64> = (0..n).map(|_| rng.below(levels) as f64).collect();
                let y: Vec<f64> = (0..n).map(|_| rng.below(levels) as f64 * 0.5 - 1.0).collect();
                let (fast, slow) = (tau_b(&x, &y), tau_b_by_pairs(&x, &y));
                match (fast, slow) {
                    (Some(a), Some(b)) => assert!((a - b).abs() < 1e-14, "n {n} levels {levels}: {a} vs {b}"),
                    (a, b) => assert_eq!(a, b),
                }
            }
        }
    }
}
