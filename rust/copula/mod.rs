//! The low-rank Gaussian copula, sampled conditionally on its factor.
//!
//! Feature i fires iff `z_i = F_i·ε + s_i η_i > t_i` with ε ~ N(0, I_r), η_i ~ N(0, 1) independent,
//! `s_i = sqrt(d_i)` and `t_i = Φ⁻¹(1 - p_i)`. Given ε the features are independent Bernoullis with
//! `p_i(ε) = Φ̄(w_i)`, `w_i = (t_i - u_i)/s_i`, `u_i = F_i·ε`, so η is never drawn: a row needs r
//! normals plus work per candidate. The exact load `u_i` ([`Copula::load`]) is an f32 sum in a
//! fixed order without fused multiply-adds, so it is bit-identical on every machine; the top-level
//! walk only needs cheap upper bounds of the hazards ([`FactorColumns`]), and exact loads of its
//! candidates.
//!
//! * this file: the exact model ([`Copula`]: parameters, exact loads, the firing test);
//! * `thinning.rs`: Φ̄, the hazard, the thinning test and the tangent bounds of the log-hazard;
//! * `bounds.rs`: [`FactorColumns`], the integer copies of F and their rate lines, and the block
//!   layout of [`RowBounds`] that the walk reads through [`BoundsRow`];
//! * `kernels.rs`: the kernels of the bounds (AVX-512 with or without VNNI, AVX2, portable).

mod bounds;
mod kernels;
mod thinning;

pub use bounds::{BoundsRow, FactorColumns, RowBounds};
pub use thinning::{hazard, normal_sf, survives_thinning};

use crate::error::{Error, Result};

/// Copula parameters for the features it covers.
#[derive(Debug, Clone)]
pub struct Copula {
    /// r.
    pub rank: usize,
    /// F, row-major `[N, r]`.
    pub factor: Vec<f32>,
    /// `sqrt(d_i)`.
    pub scale: Vec<f32>,
    /// `t_i = Φ⁻¹(1 - p_i)` (+inf never fires, -inf always fires).
    pub threshold: Vec<f32>,
}

impl Copula {
    /// Validates shapes and values: `factor` `[N, r]` finite, `diag` finite and > 0, thresholds
    /// not NaN.
    pub fn new(
        num_features: usize,
        factor: Vec<f32>,
        diag: &[f32],
        threshold: Vec<f32>,
    ) -> Result<Self> {
        if diag.len() != num_features {
            return Err(Error::value(
                "correlation_diag",
                format!("must have shape ({num_features},), got {}", diag.len()),
            ));
        }
        if num_features == 0 || factor.is_empty() || !factor.len().is_multiple_of(num_features) {
            return Err(Error::value(
                "correlation_factor",
                format!("must have shape ({num_features}, rank) with rank >= 1"),
            ));
        }
        if let Some(i) = factor.iter().position(|x| !x.is_finite()) {
            return Err(Error::value(
                "correlation_factor",
                format!("must be finite; entry {i} is {}", factor[i]),
            ));
        }
        if let Some(i) = diag.iter().position(|&d| !(d > 0.0 && d.is_finite())) {
            return Err(Error::value(
                "correlation_diag",
                format!("must be finite and > 0; entry {i} is {}", diag[i]),
            ));
        }
        if threshold.len() != num_features || threshold.iter().any(|t| t.is_nan()) {
            return Err(Error::value(
                "thresholds",
                format!("must be {num_features} non-NaN values"),
            ));
        }
        Ok(Copula {
            rank: factor.len() / num_features,
            factor,
            scale: diag.iter().map(|d| d.sqrt()).collect(),
            threshold,
        })
    }

    /// `u_i = F_i·ε` over feature i's contiguous row: eight fixed partial sums (lane l takes k ≡ l
    /// mod 8, in order) then a fixed pairwise tree. Any SIMD width computes the same lanes, so the
    /// value does not depend on the machine.
    #[inline(always)]
    pub fn load(&self, i: u32, eps: &[f32]) -> f32 {
        const L: usize = 8;
        let row = &self.factor[i as usize * self.rank..(i as usize + 1) * self.rank];
        let mut part = [0.0f32; L];
        let full = row.len() / L * L;
        for (f, e) in row[..full].chunks_exact(L).zip(eps.chunks_exact(L)) {
            for l in 0..L {
                part[l] += f[l] * e[l];
            }
        }
        for (l, (f, e)) in row[full..].iter().zip(&eps[full..]).enumerate() {
            part[l] += f * e;
        }
        ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]))
    }

    /// Asks the cache for feature i's factor row, soon to be read by [`Self::load`].
    #[inline(always)]
    pub fn prefetch(&self, i: u32) {
        self.prefetch_rows(i, 1);
    }

    /// Asks the cache for the factor rows of features `first..first + count`.
    #[inline(always)]
    pub fn prefetch_rows(&self, first: u32, count: u32) {
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (first, count); // a hint only: none on other architectures
        #[cfg(target_arch = "x86_64")]
        if count > 0 {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let rows = self
                .factor
                .as_ptr()
                .wrapping_add(first as usize * self.rank)
                .cast::<i8>();
            let last = count as usize * self.rank * 4 - 1;
            let mut at = 0;
            // Every 64-byte line the rows touch: their start, every 64 bytes on, their last byte.
            while at < last {
                // SAFETY: prefetching never faults, whatever the address.
                unsafe { _mm_prefetch(rows.wrapping_add(at), _MM_HINT_T0) };
                at += 64;
            }
            // SAFETY: as above.
            unsafe { _mm_prefetch(rows.wrapping_add(last), _MM_HINT_T0) };
        }
    }

    /// `w_i = (t_i - u_i)/s_i` in f64.
    #[inline]
    pub fn gap(&self, i: usize, u: f32) -> f64 {
        (self.threshold[i] as f64 - u as f64) / self.scale[i] as f64
    }

    /// Whether feature i fires given its load u and its own normal η: `η > (t_i - u)/s_i`,
    /// tested as `η·s_i > t_i - u` (no division).
    #[inline]
    pub fn fires(&self, i: usize, u: f32, eta: f64) -> bool {
        eta * self.scale[i] as f64 > self.threshold[i] as f64 - u as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stream of f32 in [-1, 1).
    pub(super) fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|x| ((x * 7919 + seed * 104_729) % 9973) as f32 / 4986.5 - 1.0)
            .collect()
    }

    /// `n` features of rank r with factor entries scaled by `size`, some rows zero or tiny, and
    /// thresholds from -8 to 8; the diagonal is small enough for large gaps.
    pub(super) fn copula(n: usize, r: usize, size: f32) -> Copula {
        let mut factor: Vec<f32> = values(n * r, r).iter().map(|x| x * size).collect();
        factor[..r].fill(0.0);
        factor[r..2 * r].iter_mut().for_each(|x| *x *= 1e-30);
        let diag = (0..n)
            .map(|i| 0.05 + (i % 5) as f32 * 0.2)
            .collect::<Vec<_>>();
        let thresholds = (0..n).map(|i| (i % 33) as f32 / 2.0 - 8.0).collect();
        Copula::new(n, factor, &diag, thresholds).unwrap()
    }

    pub(super) fn rows_of_eps(rows: usize, r: usize) -> Vec<f32> {
        let mut eps: Vec<f32> = values(rows * r, 3).iter().map(|x| x * 3.0).collect();
        eps[..r].fill(0.0); // a zero row
        if rows > 1 {
            eps[r] = 40.0; // one large entry
            eps[r + 1] = 1e-40; // a subnormal one
        }
        eps
    }

    #[test]
    fn exact_load_is_the_dot_product() {
        let (n, r) = (40, 19);
        let c = Copula::new(n, values(n * r, 2), &vec![0.5; n], vec![1.0; n]).unwrap();
        let eps = values(r, 5);
        for i in 0..n {
            let direct: f64 = (0..r)
                .map(|k| c.factor[i * r + k] as f64 * eps[k] as f64)
                .sum();
            assert!((c.load(i as u32, &eps) as f64 - direct).abs() < 1e-5);
        }
    }

    #[test]
    fn rejects_bad_shapes_and_values() {
        assert!(Copula::new(2, vec![0.1; 3], &[0.5, 0.5], vec![0.0; 2]).is_err());
        assert!(Copula::new(2, vec![0.1; 4], &[0.5, 0.0], vec![0.0; 2]).is_err());
        assert!(Copula::new(2, vec![f32::NAN; 4], &[0.5, 0.5], vec![0.0; 2]).is_err());
        assert!(Copula::new(2, vec![0.1; 4], &[0.5, 0.5], vec![f32::NAN; 2]).is_err());
        assert_eq!(
            Copula::new(2, vec![0.1; 4], &[0.5, 0.5], vec![0.0; 2])
                .unwrap()
                .rank,
            2
        );
    }
}
