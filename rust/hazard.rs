//! The cumulative-hazard walk: exact sampling of independent Bernoullis in O(#fires) per row.
//!
//! Feature i gets the span `[S_i, S_{i+1})` of length `λ_i = -ln(1 - p_i)` on a line. A unit-rate
//! Poisson process on that line puts at least one point into span i with probability
//! `1 - e^{-λ_i} = p_i`, independently across spans. The walk draws the process one exponential gap
//! at a time; after a point lands in span j it restarts at `S_{j+1}` (memorylessness), so each row
//! costs exactly `#fires + 1` exponentials, never rejects, and yields sorted, unique indices.
//!
//! `p = 0` gives an empty span (never fires); `p = 1` (λ = ∞) features are kept out of the line and
//! merged into the output. A guide table over the line finds the span of a point in O(1) expected.
//! Spans are f64, so a feature's firing probability is exact up to about one ulp of the total
//! hazard (≈ 1e-14 absolute for L0 ≈ 60).

use crate::error::{Error, Result};
use rand::Rng;
use rand_distr::{Distribution, Exp1};

/// Precomputed line of cumulative hazards for one probability vector.
#[derive(Debug, Clone)]
pub struct HazardTable {
    /// `cum[i]` = Σ_{k<i} λ_k over features with p < 1 (length N + 1).
    cum: Vec<f64>,
    /// `guide[c]` = first feature whose span end lies in guide cell c or later.
    guide: Vec<u32>,
    /// Cells per unit of hazard.
    scale: f64,
    /// Features with p = 1, ascending.
    certain: Vec<u32>,
}

impl HazardTable {
    /// Builds the table of `p`, checked by [`check_probabilities`] (`name` labels errors).
    pub fn new(p: &[f64], name: &'static str) -> Result<Self> {
        check_probabilities(p, name)?;
        let mut cum = Vec::with_capacity(p.len() + 1);
        let mut certain = Vec::new();
        let mut total = 0.0f64;
        cum.push(0.0);
        for (i, &pi) in p.iter().enumerate() {
            if pi == 1.0 {
                certain.push(i as u32);
            } else {
                total += -(-pi).ln_1p();
            }
            cum.push(total);
        }
        // About two cells per feature (capped at 64 MiB of guide): O(1) expected scan per lookup.
        let cells = (2 * p.len()).min(1 << 24);
        let scale = if total > 0.0 {
            cells as f64 / total
        } else {
            0.0
        };
        let mut table = HazardTable {
            cum,
            guide: vec![0; cells],
            scale,
            certain,
        };
        // guide[c] = smallest j with cell(S_{j+1}) >= c. For a point x in cell c the span holding x
        // has S_{j+1} > x, hence cell(S_{j+1}) >= c: the scan from guide[c] can never overshoot it.
        let mut c = 0;
        for j in 0..p.len() {
            let cj = table.cell(table.cum[j + 1]);
            while c <= cj {
                table.guide[c] = j as u32;
                c += 1;
            }
        }
        Ok(table)
    }

    #[inline]
    fn cell(&self, x: f64) -> usize {
        ((x * self.scale) as usize).min(self.guide.len() - 1)
    }

    /// Number of features.
    pub fn num_features(&self) -> usize {
        self.cum.len() - 1
    }

    /// Features with p = 1 (they fire in every row), ascending.
    pub fn certain(&self) -> &[u32] {
        &self.certain
    }

    /// The span holding point `x` (requires `0 <= x < total`).
    #[inline]
    fn find(&self, x: f64) -> usize {
        let mut j = self.guide[self.cell(x)] as usize;
        // x < total = cum[N], so the scan stops at some j < N.
        while self.cum[j + 1] <= x {
            j += 1;
        }
        j
    }

    /// Walks the line for `live <= K` rows at once, lane k drawing from `rngs[k]`; calls
    /// `emit(k, i)` for lane k's firing features, ascending per lane. Certain (p = 1) features are
    /// not emitted: merge [`Self::certain`]. Each lane's draws and output are exactly those of a
    /// lone walk; running lanes in lockstep only lets the CPU overlap their memory latencies.
    #[inline]
    pub fn walk_lanes<R: Rng, const K: usize>(
        &self,
        rngs: &mut [R; K],
        live: usize,
        mut emit: impl FnMut(usize, u32),
    ) {
        let total = self.cum[self.cum.len() - 1];
        let mut x = [f64::INFINITY; K];
        for (xk, rng) in x.iter_mut().zip(rngs.iter_mut()).take(live) {
            *xk = Exp1.sample(rng);
        }
        loop {
            let mut running = false;
            for k in 0..K {
                if x[k] < total {
                    running = true;
                    let j = self.find(x[k]);
                    emit(k, j as u32);
                    let gap: f64 = Exp1.sample(&mut rngs[k]);
                    x[k] = self.cum[j + 1] + gap;
                }
            }
            if !running {
                return;
            }
        }
    }

    /// Draws one row: calls `emit(i)` for every firing feature (certain ones included), ascending.
    pub fn walk<R: Rng>(&self, rng: &mut R, mut emit: impl FnMut(u32)) {
        let mut line = Vec::new();
        self.walk_lanes(std::array::from_mut(rng), 1, |_, j| line.push(j));
        merge_sorted(&line, &self.certain, |j| j, &mut emit);
    }
}

/// Checks firing probabilities: at least one, at most 2^31 - 1 (indices are i32 in Python), each in
/// `[0, 1]` (so not NaN). Errors name the argument `name`.
pub fn check_probabilities(p: &[f64], name: &'static str) -> Result<()> {
    if p.is_empty() {
        return Err(Error::value(name, "must have at least one feature"));
    }
    if p.len() > i32::MAX as usize {
        return Err(Error::value(
            name,
            format!("has {} features; at most 2^31 - 1 are supported", p.len()),
        ));
    }
    match p.iter().position(|pi| !(0.0..=1.0).contains(pi)) {
        Some(i) => Err(Error::value(
            name,
            format!("must be in [0, 1]; entry {i} is {}", p[i]),
        )),
        None => Ok(()),
    }
}

/// Calls `emit` on the union of two lists ascending and disjoint by `key`, in ascending order.
#[inline]
pub fn merge_sorted<T: Copy>(a: &[T], b: &[T], key: impl Fn(T) -> u32, mut emit: impl FnMut(T)) {
    if b.is_empty() {
        return a.iter().copied().for_each(emit);
    }
    let (mut i, mut k) = (0, 0);
    while i < a.len() || k < b.len() {
        if k == b.len() || (i < a.len() && key(a[i]) < key(b[k])) {
            emit(a[i]);
            i += 1;
        } else {
            emit(b[k]);
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{row_rng, Stream};

    fn fires(t: &HazardTable, rows: u64) -> Vec<u64> {
        let mut counts = vec![0u64; t.num_features()];
        for r in 0..rows {
            let mut prev: Option<u32> = None;
            t.walk(&mut row_rng(3, Stream::Firing, r), |i| {
                assert!(prev.is_none_or(|p| p < i), "not strictly ascending");
                prev = Some(i);
                counts[i as usize] += 1;
            });
        }
        counts
    }

    #[test]
    fn zero_and_one_probabilities_are_exact() {
        let t = HazardTable::new(&[0.0, 1.0, 0.5, 0.0, 1.0, 1.0, 0.0], "p").unwrap();
        let c = fires(&t, 4000);
        assert_eq!((c[0], c[3], c[6]), (0, 0, 0));
        assert_eq!((c[1], c[4], c[5]), (4000, 4000, 4000));
        // Binomial(4000, 0.5): sd = 31.6; 5 sd tolerance.
        assert!((c[2] as f64 - 2000.0).abs() < 5.0 * 31.7, "{}", c[2]);
    }

    #[test]
    fn all_certain_and_all_zero() {
        assert_eq!(
            fires(&HazardTable::new(&[1.0; 5], "p").unwrap(), 10),
            vec![10; 5]
        );
        assert_eq!(
            fires(&HazardTable::new(&[0.0; 5], "p").unwrap(), 10),
            vec![0; 5]
        );
    }

    #[test]
    fn marginals_within_five_sigma() {
        let p: Vec<f64> = (0..300)
            .map(|i| 0.9 * ((i * 37 % 300) as f64 / 300.0).powi(3))
            .collect();
        let t = HazardTable::new(&p, "p").unwrap();
        let n = 20_000u64;
        for (i, &c) in fires(&t, n).iter().enumerate() {
            let mean = n as f64 * p[i];
            let sd = (mean * (1.0 - p[i])).sqrt();
            assert!(
                (c as f64 - mean).abs() <= 5.0 * sd + 1e-9,
                "feature {i}: {c} vs {mean}"
            );
        }
    }

    #[test]
    fn rejects_bad_probabilities() {
        for bad in [f64::NAN, -0.1, 1.5, f64::INFINITY] {
            let e = HazardTable::new(&[0.2, bad], "firing_probabilities").unwrap_err();
            assert!(e.to_string().starts_with("firing_probabilities: "), "{e}");
        }
        assert!(HazardTable::new(&[], "p").is_err());
    }
}
