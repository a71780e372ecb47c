//! The low-rank Gaussian copula, sampled conditionally on its factor.
//!
//! Feature i fires iff `z_i = F_i·ε + s_i η_i > t_i` with ε ~ N(0, I_r), η_i ~ N(0, 1) independent,
//! `s_i = sqrt(d_i)` and `t_i = Φ⁻¹(1 - p_i)`. Given ε the features are independent Bernoullis with
//! `p_i(ε) = Φ̄(w_i)`, `w_i = (t_i - u_i)/s_i`, `u_i = F_i·ε`, so η is never drawn: a row needs r
//! normals plus work per candidate. `u_i` is summed over k = 0..r in f32 in a fixed order without
//! fused multiply-adds, so it is bit-identical for any SIMD width.

use crate::error::{Error, Result};

/// `Φ̄(w) = P(N(0, 1) > w)`.
#[inline]
pub fn normal_sf(w: f64) -> f64 {
    0.5 * libm::erfc(w * std::f64::consts::FRAC_1_SQRT_2)
}

/// The hazard `-ln Φ(w) = -ln(1 - Φ̄(w))` of firing when the threshold gap is w.
#[inline]
pub fn hazard(w: f64) -> f64 {
    -(-normal_sf(w)).ln_1p()
}

/// Upper bounds of [`hazard`] on a grid: `bound(w) >= hazard(w)` for every w.
#[derive(Debug, Clone)]
pub struct HazardBound {
    lo: f64,
    per_unit: f64,
    cells: Vec<f64>,
}

impl Default for HazardBound {
    fn default() -> Self {
        // Cells of width 1/32 on [-6, 9]. hazard is decreasing, so a cell's value at its left edge
        // bounds it; the 1e-9 margin absorbs rounding of the edge and of erfc.
        let (lo, hi, per_unit) = (-6.0, 9.0, 32.0);
        let n = ((hi - lo) * per_unit) as usize + 1;
        let cells = (0..n)
            .map(|k| hazard(lo + k as f64 / per_unit) * (1.0 + 1e-9))
            .collect();
        HazardBound {
            lo,
            per_unit,
            cells,
        }
    }
}

impl HazardBound {
    /// A value `>= hazard(w)`; exact below the grid (w < -6, where firing is all but certain).
    #[inline]
    pub fn bound(&self, w: f64) -> f64 {
        let k = (w - self.lo) * self.per_unit;
        if k < 0.0 {
            return hazard(w);
        }
        self.cells[(k as usize).min(self.cells.len() - 1)]
    }
}

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
    /// Validates shapes and values: `factor` `[N, r]` finite, `diag > 0` finite, thresholds not NaN.
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
        if factor.is_empty() || factor.len() % num_features != 0 {
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

    /// `u_i = F_i·ε` for one feature (fixed order, f32, no FMA).
    #[inline]
    pub fn load(&self, i: usize, eps: &[f32]) -> f32 {
        let row = &self.factor[i * self.rank..(i + 1) * self.rank];
        row.iter().zip(eps).fold(0.0f32, |acc, (f, e)| acc + f * e)
    }

    /// `w_i = (t_i - u_i)/s_i` in f64.
    #[inline]
    pub fn gap(&self, i: usize, u: f32) -> f64 {
        (self.threshold[i] as f64 - u as f64) / self.scale[i] as f64
    }
}

/// `F` columns of a subset of features, `[r, T]`, so that `u = Fε` over the subset vectorises across
/// features; same summation order as [`Copula::load`].
#[derive(Debug, Clone)]
pub struct FactorColumns {
    pub features: Vec<u32>,
    columns: Vec<f32>,
}

impl FactorColumns {
    pub fn new(copula: &Copula, features: Vec<u32>) -> Self {
        let (r, t) = (copula.rank, features.len());
        let mut columns = vec![0.0f32; r * t];
        for (j, &i) in features.iter().enumerate() {
            for k in 0..r {
                columns[k * t + j] = copula.factor[i as usize * r + k];
            }
        }
        FactorColumns { features, columns }
    }

    /// `u[j] = F_{features[j]}·ε` for every feature of the subset.
    pub fn loads(&self, eps: &[f32], u: &mut Vec<f32>) {
        let t = self.features.len();
        u.clear();
        u.resize(t, 0.0);
        for (column, &e) in self.columns.chunks_exact(t.max(1)).zip(eps) {
            for (acc, &f) in u.iter_mut().zip(column) {
                *acc += f * e;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_dominates_hazard() {
        let b = HazardBound::default();
        let mut w = -8.0;
        while w < 12.0 {
            assert!(b.bound(w) >= hazard(w), "w = {w}");
            w += 0.001_7;
        }
        // Tight: at most ~1/32 of a unit of w above the true hazard in the tail.
        assert!(b.bound(3.0) < hazard(3.0 - 1.0 / 32.0) * 1.000_001);
    }

    #[test]
    fn column_loads_equal_row_loads_bit_for_bit() {
        let (n, r) = (37, 5);
        let factor: Vec<f32> = (0..n * r)
            .map(|x| ((x * 7919 % 97) as f32 - 48.0) / 97.0)
            .collect();
        let c = Copula::new(n, factor, &vec![0.5; n], vec![1.0; n]).unwrap();
        let eps = [0.3, -1.2, 0.7, 2.1, -0.4];
        let cols = FactorColumns::new(&c, (0..n as u32).rev().collect());
        let mut u = Vec::new();
        cols.loads(&eps, &mut u);
        for (j, &i) in cols.features.iter().enumerate() {
            assert_eq!(u[j].to_bits(), c.load(i as usize, &eps).to_bits());
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
