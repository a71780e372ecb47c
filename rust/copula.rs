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

/// Upper bounds of [`hazard`] on a grid, for gaps computed in f32.
///
/// Cells have width 1/32 on [-6, 9]; hazard decreases in w, so a cell's value at its left edge
/// bounds the whole cell. The cell is chosen for `w - MARGIN`, which covers the f32 rounding of w
/// (|error| < 1e-4 for |w| < 100), and values are rounded up to f32. Above the grid the last cell
/// bounds everything; below it `BELOW` = 700 bounds `hazard(w)` for w > -37, and for smaller w
/// `Φ̄(w)` is 1 in f64 so any bound with `1 - e^{-λ̂} = 1` thins exactly.
#[derive(Debug, Clone)]
pub struct HazardBound {
    /// `cells[0]` = BELOW, then the grid. A fixed size lets the lookup vectorise.
    cells: Box<[f32; CELLS]>,
}

const BOUND_LO: f32 = -6.0;
const BOUND_PER_UNIT: f32 = 32.0;
const BOUND_MARGIN: f32 = 1e-3;
const BELOW: f32 = 700.0;
const CELLS: usize = 1 + 15 * 32 + 1;

impl Default for HazardBound {
    fn default() -> Self {
        let grid = (0..CELLS - 1).map(|k| {
            let v = hazard(BOUND_LO as f64 + k as f64 / BOUND_PER_UNIT as f64) * (1.0 + 1e-9);
            let f = v as f32;
            if (f as f64) < v {
                f.next_up()
            } else {
                f
            }
        });
        let cells: Vec<f32> = std::iter::once(BELOW).chain(grid).collect();
        HazardBound {
            cells: cells.into_boxed_slice().try_into().expect("CELLS entries"),
        }
    }
}

impl HazardBound {
    /// A value `>= hazard(w_exact)` for any `w_exact` within 1e-3 of `w`. Branch-free.
    #[inline(always)]
    pub fn bound(&self, w: f32) -> f32 {
        let k = ((w - BOUND_MARGIN - BOUND_LO) * BOUND_PER_UNIT + 1.0)
            .max(0.0)
            .min((CELLS - 1) as f32);
        self.cells[(k as i32 as usize).min(CELLS - 1)]
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
    /// `1 / sqrt(d_i)`, for the approximate gaps that only choose bounds.
    pub inv_scale: Vec<f32>,
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
            inv_scale: diag.iter().map(|d| 1.0 / d.sqrt()).collect(),
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
    threshold: Vec<f32>,
    inv_scale: Vec<f32>,
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
        FactorColumns {
            threshold: features
                .iter()
                .map(|&i| copula.threshold[i as usize])
                .collect(),
            inv_scale: features
                .iter()
                .map(|&i| copula.inv_scale[i as usize])
                .collect(),
            features,
            columns,
        }
    }

    /// `u[j] = F_{features[j]}·ε` and `lam[j] = bound((t - u) / s)` for every feature of the subset.
    pub fn loads_and_bounds(
        &self,
        eps: &[f32],
        bound: &HazardBound,
        u: &mut Vec<f32>,
        lam: &mut Vec<f32>,
    ) {
        let t = self.features.len();
        u.clear();
        u.resize(t, 0.0);
        lam.clear();
        lam.resize(t, 0.0);
        // Wider vectors change speed only: every lane performs the same operations in the same order.
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked above).
                return unsafe { self.avx512(eps, bound, u, lam) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked above).
                return unsafe { self.avx2(eps, bound, u, lam) };
            }
        }
        self.portable(eps, bound, u, lam);
    }

    #[inline(always)]
    fn portable(&self, eps: &[f32], bound: &HazardBound, u: &mut [f32], lam: &mut [f32]) {
        loads_tiled(&self.columns, eps, u);
        for (((l, &uj), &tj), &inv) in lam
            .iter_mut()
            .zip(u.iter())
            .zip(&self.threshold)
            .zip(&self.inv_scale)
        {
            *l = bound.bound((tj - uj) * inv);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(&self, eps: &[f32], bound: &HazardBound, u: &mut [f32], lam: &mut [f32]) {
        self.portable(eps, bound, u, lam)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512(&self, eps: &[f32], bound: &HazardBound, u: &mut [f32], lam: &mut [f32]) {
        self.portable(eps, bound, u, lam)
    }
}

/// Features per register tile: 64 gives several independent accumulator chains per k step.
const TILE: usize = 64;

/// `u += columnsᵀ ε` by tiles of 64 features whose accumulators stay in registers. Each lane sums
/// k = 0..r in order with separate multiplies and adds, so every instruction set gives the same bits.
#[inline(always)]
fn loads_tiled(columns: &[f32], eps: &[f32], u: &mut [f32]) {
    let t = u.len();
    let full = t / TILE * TILE;
    for lo in (0..full).step_by(TILE) {
        let mut acc = [0.0f32; TILE];
        for (k, &e) in eps.iter().enumerate() {
            let col = &columns[k * t + lo..k * t + lo + TILE];
            for l in 0..TILE {
                acc[l] += col[l] * e;
            }
        }
        u[lo..lo + TILE].copy_from_slice(&acc);
    }
    for (j, uj) in u.iter_mut().enumerate().skip(full) {
        *uj = eps
            .iter()
            .enumerate()
            .fold(0.0f32, |a, (k, &e)| a + columns[k * t + j] * e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_dominates_hazard() {
        let b = HazardBound::default();
        let mut w = -45.0f64;
        while w < 12.0 {
            // Any f32 rounding of w (here up to 1e-4 off) still gets a bound above the exact hazard,
            // or (w < -37) one that thins exactly because Φ̄(w) = 1 = 1 - e^{-λ̂} in f64.
            for off in [-1e-4, 0.0, 1e-4] {
                let l = b.bound((w + off) as f32) as f64;
                assert!(
                    l >= hazard(w) || (normal_sf(w) == 1.0 && -(-l).exp_m1() == 1.0),
                    "w = {w}"
                );
            }
            w += 0.001_7;
        }
        // Tight: at most ~1/32 + margin of a unit of w above the true hazard in the tail.
        assert!((b.bound(3.0) as f64) < hazard(3.0 - 1.0 / 32.0 - 1e-3) * 1.000_001);
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
        let (mut u, mut lam) = (Vec::new(), Vec::new());
        cols.loads_and_bounds(&eps, &HazardBound::default(), &mut u, &mut lam);
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
