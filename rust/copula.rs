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

/// Gather-free upper bounds of [`hazard`], for gaps computed in f32.
///
/// `L(w) = log2 hazard(w)` is concave (checked densely in the tests), so each tangent line lies
/// above it and their minimum is an upper bound, tight near the tangent points (one per unit of w
/// on [-6, 9]: at most ~15 % high there). `2^y` is then taken with Schraudolph's trick: writing
/// `(y + 127)·2^23` into the float's bits gives `2^n (1 + f) >= 2^(n + f)` (the chord of a convex
/// function lies above it), plus one ulp. A margin of 1e-3 in log2 covers the f32 rounding of the
/// tangent evaluation and of w itself (relative error ~2e-7 · |w|). Values are capped at 700, which
/// still bounds `hazard(w)` for w > -37; below that `Φ̄(w)` is 1 in f64 and thinning is exact anyway.
#[derive(Debug, Clone)]
pub struct HazardBound {
    slope: [f32; TANGENTS],
    intercept: [f32; TANGENTS],
}

const TANGENTS: usize = 16;
const LOG2_MARGIN: f32 = 1e-3;
const LOG2_CAP: f32 = 9.45; // 2^9.45 ≈ 699.4

impl Default for HazardBound {
    fn default() -> Self {
        let (mut slope, mut intercept) = ([0.0f32; TANGENTS], [0.0f32; TANGENTS]);
        for k in 0..TANGENTS {
            let w = -6.0 + k as f64;
            let h = 1e-5;
            let l = |w: f64| hazard(w).log2();
            let d = (l(w + h) - l(w - h)) / (2.0 * h);
            slope[k] = d as f32;
            intercept[k] = (l(w) - d * w) as f32;
        }
        HazardBound { slope, intercept }
    }
}

impl HazardBound {
    /// A value `>= hazard(w_exact)` for any `w_exact` within ~1e-3·max(1, |w|)/|L'| of `w`.
    #[inline(always)]
    pub fn bound(&self, w: f32) -> f32 {
        self.bound_lanes(&[w; 1])[0]
    }

    /// [`Self::bound`] of `W` gaps at once; written with selects so it compiles to vector min/max.
    #[inline(always)]
    pub fn bound_lanes<const W: usize>(&self, w: &[f32; W]) -> [f32; W] {
        let mut y = [f32::INFINITY; W];
        for k in 0..TANGENTS {
            for l in 0..W {
                let v = self.intercept[k] + self.slope[k] * w[l];
                y[l] = if v < y[l] { v } else { y[l] };
            }
        }
        let mut out = [0.0f32; W];
        for l in 0..W {
            let v = y[l] + LOG2_MARGIN;
            let v = if v > LOG2_CAP { LOG2_CAP } else { v };
            let v = if v < -126.0 { -126.0 } else { v };
            // SAFETY: v is clamped to [-126, 9.45] and not NaN (inputs are finite), so the product is
            // in [8.4e6, 1.14e9], inside i32; the unchecked conversion lets this loop vectorise.
            let bits: i32 = unsafe { ((v + 127.0) * 8_388_608.0).to_int_unchecked() };
            out[l] = f32::from_bits(bits as u32 + 1);
        }
        out
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

    /// `u_i = F_i·ε` for the given features, each over its contiguous row: eight fixed partial sums
    /// (lane l takes k ≡ l mod 8, in order) then a fixed pairwise tree. Any SIMD width computes the
    /// same lanes, so the values do not depend on the machine.
    pub fn loads_into(&self, features: &[u32], eps: &[f32], out: &mut Vec<f32>) {
        const L: usize = 8;
        out.clear();
        out.extend(features.iter().map(|&i| {
            let row = &self.factor[i as usize * self.rank..(i as usize + 1) * self.rank];
            let mut part = [0.0f32; L];
            for (f, e) in row.chunks(L).zip(eps.chunks(L)) {
                for l in 0..f.len() {
                    part[l] += f[l] * e[l];
                }
            }
            ((part[0] + part[1]) + (part[2] + part[3]))
                + ((part[4] + part[5]) + (part[6] + part[7]))
        }));
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
        while w < 40.0 {
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
        // Tight where it matters: within 25 % of the hazard on [-6, 9].
        let mut w = -6.0f64;
        while w < 9.0 {
            assert!((b.bound(w as f32) as f64) < 1.25 * hazard(w), "w = {w}");
            w += 0.013;
        }
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
        let mut rows = Vec::new();
        c.loads_into(&cols.features, &eps, &mut rows);
        for (j, &i) in cols.features.iter().enumerate() {
            // The column kernel sums k = 0..r in order: bit-identical to a plain fold.
            let direct = (0..5).fold(0.0f32, |a, k| a + c.factor[i as usize * 5 + k] * eps[k]);
            assert_eq!(u[j].to_bits(), direct.to_bits());
            // Row loads use partial sums (here r = 5 < 8, so one term per lane): equal up to rounding.
            assert!((rows[j] - direct).abs() <= 1e-6, "{} vs {direct}", rows[j]);
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
