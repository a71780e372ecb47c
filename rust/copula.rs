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

/// Cheap upper bounds of [`hazard`], for gaps computed in f32.
///
/// `L(w) = log2 hazard(w)` is concave (checked densely in the tests), so any tangent line lies above
/// it. The bound takes the tangent at the middle of w's unit cell (16 cells, tangent points
/// -5.5, -4.5, …, 9.5; gaps outside [-6, 10) use the nearest end cell): at most ~15 % high on
/// [-6, 9]. `2^y` is then taken with Schraudolph's trick: writing `(y + 127)·2^23` into the float's
/// bits gives `2^n (1 + f) >= 2^(n + f)` (the chord of a convex function lies above it), plus one
/// ulp. A margin of 1e-3 in log2 covers the f32 rounding of the tangent evaluation and of w itself
/// (relative error ~2e-7 · |w|). Values are capped at 700, which still bounds `hazard(w)` for
/// w > -37; below that `Φ̄(w)` is 1 in f64 and thinning is exact anyway.
#[derive(Debug, Clone)]
pub struct HazardBound {
    slope: [f32; CELLS],
    intercept: [f32; CELLS],
}

const CELLS: usize = 16;
/// Cell k covers w in [k - 6, k - 5).
const CELL_OFFSET: f32 = 6.0;
const LOG2_MARGIN: f32 = 1e-3;
const LOG2_CAP: f32 = 9.45; // 2^9.45 ≈ 699.4

impl Default for HazardBound {
    fn default() -> Self {
        let (mut slope, mut intercept) = ([0.0f32; CELLS], [0.0f32; CELLS]);
        for k in 0..CELLS {
            let w = k as f64 + 0.5 - CELL_OFFSET as f64;
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
    /// A value `>= hazard(w_exact)` for any `w_exact` within ~1e-3·max(1, |w|)/|L'| of `w` (finite).
    #[inline(always)]
    pub fn bound(&self, w: f32) -> f32 {
        let c = (w + CELL_OFFSET).clamp(0.0, (CELLS - 1) as f32);
        // SAFETY: c is in [0, 15], so truncation is in range (and equals floor).
        let k: i32 = unsafe { c.to_int_unchecked() };
        let y = self.intercept[k as usize] + self.slope[k as usize] * w;
        pow2_upper(y)
    }
}

/// `>= 2^(y + margin)` by Schraudolph's trick, with y clamped to [-126, cap] (see [`HazardBound`]).
#[inline(always)]
fn pow2_upper(y: f32) -> f32 {
    let v = (y + LOG2_MARGIN).clamp(-126.0, LOG2_CAP);
    // SAFETY: v is in [-126, 9.45] (inputs are finite), so the product is in [8.4e6, 1.14e9].
    let bits: i32 = unsafe { ((v + 127.0) * 8_388_608.0).to_int_unchecked() };
    f32::from_bits(bits as u32 + 1)
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
    #[inline(always)]
    pub fn loads_into(&self, features: &[u32], eps: &[f32], out: &mut Vec<f32>) {
        const L: usize = 8;
        out.clear();
        for &i in features {
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
            out.push(
                ((part[0] + part[1]) + (part[2] + part[3]))
                    + ((part[4] + part[5]) + (part[6] + part[7])),
            );
        }
    }

    /// `w_i = (t_i - u_i)/s_i` in f64.
    #[inline]
    pub fn gap(&self, i: usize, u: f32) -> f64 {
        (self.threshold[i] as f64 - u as f64) / self.scale[i] as f64
    }
}

/// `F` of a subset of features in tiles of [`TILE`]: tile q holds `[r, TILE]` (feature-minor, zero
/// padded), so that `u = Fε` streams memory once and vectorises across features.
///
/// Positions (the subset's order, padded to whole groups) are also cut into blocks of [`BLOCK`] for
/// the bounded-hazard walk: a group of [`GROUP`] consecutive blocks interleaves them, block b holding
/// positions `group_start + b % GROUP + k·GROUP` for k = 0..BLOCK, so that each block's total (summed
/// in k order) vectorises across the blocks of a group. Padding positions have bound ~1e-38 and are
/// not features (see [`Self::feature`]).
#[derive(Debug, Clone)]
pub struct FactorColumns {
    features: Vec<u32>,
    rank: usize,
    tiles: Vec<f32>,
    threshold: Vec<f32>,
    inv_scale: Vec<f32>,
}

/// `cum[j]` = the f64 sum of `lam` over block(j)'s positions up to and including j, in walk order,
/// vectorised across each group's blocks; a block's total is the `cum` of its last position.
#[inline(always)]
fn block_sums(lam: &[f32], cum: &mut [f64]) {
    for (group, out) in lam.chunks(GROUP * BLOCK).zip(cum.chunks_mut(GROUP * BLOCK)) {
        let mut acc = [0.0f64; GROUP];
        for (row, out) in group.chunks(GROUP).zip(out.chunks_mut(GROUP)) {
            for (a, &l) in acc.iter_mut().zip(row) {
                *a += l as f64;
            }
            out.copy_from_slice(&acc);
        }
    }
}

/// Features per tile: four 16-lane accumulator chains per k step.
const TILE: usize = 64;
/// Positions per block of the bounded-hazard walk.
pub const BLOCK: usize = 32;
/// Blocks per interleaved group.
const GROUP: usize = 16;
/// Rows whose loads share one read of F (wide vectors only).
pub const ROWS_AT_ONCE: usize = 4;

impl FactorColumns {
    pub fn new(copula: &Copula, features: Vec<u32>) -> Self {
        let r = copula.rank;
        let padded = features.len().div_ceil(GROUP * BLOCK) * GROUP * BLOCK;
        let mut tiles = vec![0.0f32; r * padded];
        // Padding: gap ~1e30, the bound's smallest value.
        let (mut threshold, mut inv_scale) = (vec![1e30f32; padded], vec![1.0f32; padded]);
        for (j, &i) in features.iter().enumerate() {
            let (q, l) = (j / TILE, j % TILE);
            for k in 0..r {
                tiles[(q * r + k) * TILE + l] = copula.factor[i as usize * r + k];
            }
            threshold[j] = copula.threshold[i as usize];
            inv_scale[j] = copula.inv_scale[i as usize];
        }
        FactorColumns {
            features,
            rank: r,
            tiles,
            threshold,
            inv_scale,
        }
    }

    /// The feature at position j, or None for padding.
    #[inline]
    pub fn feature(&self, j: usize) -> Option<u32> {
        self.features.get(j).copied()
    }

    /// Positions of block b, in walk order.
    #[inline]
    pub fn block(b: usize) -> impl Iterator<Item = usize> {
        let first = Self::block_first(b);
        (0..BLOCK).map(move |k| first + k * GROUP)
    }

    /// The last position of block b (its `cum` is the block's total).
    #[inline]
    pub fn block_last(b: usize) -> usize {
        Self::block_first(b) + (BLOCK - 1) * GROUP
    }

    #[inline]
    fn block_first(b: usize) -> usize {
        b / GROUP * GROUP * BLOCK + b % GROUP
    }

    /// Number of blocks (padded positions / [`BLOCK`]).
    pub fn num_blocks(&self) -> usize {
        self.threshold.len() / BLOCK
    }

    /// Per row k of `eps` (`[rows, r]`, row-major) and position j (padded): `u[k, j] = F_j·ε_k`
    /// (k = 0..r in order, separate multiplies and adds), `lam[k, j] = bound((t - u) / s)` and
    /// `cum[k, j]`, the running f64 sum of `lam` along j's block; outputs are `[rows, padded]`.
    /// Wide vectors take up to [`ROWS_AT_ONCE`] rows per read of F; every row gets the same bits
    /// whatever the batch.
    pub fn loads_and_bounds(
        &self,
        eps: &[f32],
        bound: &HazardBound,
        u: &mut Vec<f32>,
        lam: &mut Vec<f32>,
        cum: &mut Vec<f64>,
    ) {
        let r = self.rank;
        assert!(
            !eps.is_empty() && eps.len().is_multiple_of(r),
            "eps must hold whole rows of the factor's rank"
        );
        let (rows, padded) = (eps.len() / r, self.threshold.len());
        u.resize(rows * padded, 0.0);
        lam.resize(rows * padded, 0.0);
        cum.resize(rows * padded, 0.0);
        // Every path performs the same f32 operations per lane in the same order: same bits.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            for k in (0..rows).step_by(ROWS_AT_ONCE) {
                let take = (rows - k).min(ROWS_AT_ONCE);
                let (e, at) = (&eps[k * r..(k + take) * r], k * padded..(k + take) * padded);
                let (u, lam, cum) = (&mut u[at.clone()], &mut lam[at.clone()], &mut cum[at]);
                // SAFETY: the CPU supports AVX-512F (checked above); slices have whole tiles.
                unsafe {
                    match take {
                        4 => self.avx512::<4>(e, bound, u, lam, cum),
                        3 => self.avx512::<3>(e, bound, u, lam, cum),
                        2 => self.avx512::<2>(e, bound, u, lam, cum),
                        _ => self.avx512::<1>(e, bound, u, lam, cum),
                    }
                }
            }
            return;
        }
        for (k, e) in eps.chunks(r).enumerate() {
            let at = k * padded..(k + 1) * padded;
            self.portable(e, bound, &mut u[at.clone()], &mut lam[at.clone()]);
            block_sums(&lam[at.clone()], &mut cum[at]);
        }
    }

    fn portable(&self, eps: &[f32], bound: &HazardBound, u: &mut [f32], lam: &mut [f32]) {
        let r = self.rank;
        for (q, (uq, lq)) in u.chunks_mut(TILE).zip(lam.chunks_mut(TILE)).enumerate() {
            let tile = &self.tiles[q * r * TILE..(q + 1) * r * TILE];
            let mut acc = [0.0f32; TILE];
            for (col, &e) in tile.chunks(TILE).zip(eps) {
                for l in 0..TILE {
                    acc[l] += col[l] * e;
                }
            }
            for l in 0..TILE {
                let j = q * TILE + l;
                uq[l] = acc[l];
                lq[l] = bound.bound((self.threshold[j] - acc[l]) * self.inv_scale[j]);
            }
        }
    }

    /// R rows (`eps` `[R, r]`, outputs `[R, padded]`): each vector of F is loaded once for all R.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512<const R: usize>(
        &self,
        eps: &[f32],
        bound: &HazardBound,
        u: &mut [f32],
        lam: &mut [f32],
        cum: &mut [f64],
    ) {
        use std::arch::x86_64::*;
        const V: usize = 16;
        let (r, padded) = (self.rank, self.threshold.len());
        assert!(eps.len() == R * r && u.len() == R * padded && lam.len() == R * padded);
        assert!(cum.len() == R * padded);
        let slope = _mm512_loadu_ps(bound.slope.as_ptr());
        let intercept = _mm512_loadu_ps(bound.intercept.as_ptr());
        // block_sums(): one group row is one 16-lane vector; accumulators restart with each group.
        let (mut lo, mut hi) = ([_mm512_setzero_pd(); R], [_mm512_setzero_pd(); R]);
        for q in 0..padded / TILE {
            let tile = self.tiles.as_ptr().add(q * r * TILE);
            let mut acc = [[_mm512_setzero_ps(); TILE / V]; R];
            for k in 0..r {
                let col: [__m512; TILE / V] =
                    std::array::from_fn(|m| _mm512_loadu_ps(tile.add(k * TILE + m * V)));
                for (row, acc) in acc.iter_mut().enumerate() {
                    let e = _mm512_set1_ps(*eps.get_unchecked(row * r + k));
                    for (a, &c) in acc.iter_mut().zip(&col) {
                        *a = _mm512_add_ps(*a, _mm512_mul_ps(c, e));
                    }
                }
            }
            for (row, acc) in acc.iter().enumerate() {
                for (m, &a) in acc.iter().enumerate() {
                    let j = q * TILE + m * V;
                    let at = row * padded + j;
                    _mm512_storeu_ps(u.as_mut_ptr().add(at), a);
                    let t = _mm512_loadu_ps(self.threshold.as_ptr().add(j));
                    let inv = _mm512_loadu_ps(self.inv_scale.as_ptr().add(j));
                    let w = _mm512_mul_ps(_mm512_sub_ps(t, a), inv);
                    // HazardBound::bound(): cell index, tangent, then pow2_upper().
                    let c = _mm512_add_ps(w, _mm512_set1_ps(CELL_OFFSET));
                    let c =
                        _mm512_min_ps(_mm512_max_ps(c, _mm512_setzero_ps()), _mm512_set1_ps(15.0));
                    let k = _mm512_cvttps_epi32(c);
                    let y = _mm512_add_ps(
                        _mm512_permutexvar_ps(k, intercept),
                        _mm512_mul_ps(_mm512_permutexvar_ps(k, slope), w),
                    );
                    let v = _mm512_add_ps(y, _mm512_set1_ps(LOG2_MARGIN));
                    let v = _mm512_min_ps(
                        _mm512_max_ps(v, _mm512_set1_ps(-126.0)),
                        _mm512_set1_ps(LOG2_CAP),
                    );
                    let bits = _mm512_cvttps_epi32(_mm512_mul_ps(
                        _mm512_add_ps(v, _mm512_set1_ps(127.0)),
                        _mm512_set1_ps(8_388_608.0),
                    ));
                    let l = _mm512_castsi512_ps(_mm512_add_epi32(bits, _mm512_set1_epi32(1)));
                    _mm512_storeu_ps(lam.as_mut_ptr().add(at), l);
                    if j.is_multiple_of(GROUP * BLOCK) {
                        (lo[row], hi[row]) = (_mm512_setzero_pd(), _mm512_setzero_pd());
                    }
                    let upper = _mm512_extractf64x4_pd(_mm512_castps_pd(l), 1);
                    lo[row] = _mm512_add_pd(lo[row], _mm512_cvtps_pd(_mm512_castps512_ps256(l)));
                    hi[row] = _mm512_add_pd(hi[row], _mm512_cvtps_pd(_mm256_castpd_ps(upper)));
                    _mm512_storeu_pd(cum.as_mut_ptr().add(at), lo[row]);
                    _mm512_storeu_pd(cum.as_mut_ptr().add(at + 8), hi[row]);
                }
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
        let (mut u, mut lam, mut cum) = (Vec::new(), Vec::new(), Vec::new());
        cols.loads_and_bounds(&eps, &HazardBound::default(), &mut u, &mut lam, &mut cum);
        let mut rows = Vec::new();
        c.loads_into(&cols.features, &eps, &mut rows);
        // Blocks partition the positions; cum runs along each block in walk order.
        let mut seen = vec![false; lam.len()];
        for b in 0..cols.num_blocks() {
            assert_eq!(
                FactorColumns::block(b).last(),
                Some(FactorColumns::block_last(b))
            );
            FactorColumns::block(b).fold(0.0f64, |a, j| {
                assert!(!std::mem::replace(&mut seen[j], true));
                assert_eq!((a + lam[j] as f64).to_bits(), cum[j].to_bits());
                cum[j]
            });
        }
        assert!(seen.iter().all(|&x| x));
        assert!((n..lam.len()).all(|j| cols.feature(j).is_none() && lam[j] < 1e-37));
        for (j, &i) in cols.features.iter().enumerate() {
            // The column kernel sums k = 0..r in order: bit-identical to a plain fold.
            let direct = (0..5).fold(0.0f32, |a, k| a + c.factor[i as usize * 5 + k] * eps[k]);
            assert_eq!(u[j].to_bits(), direct.to_bits());
            // Row loads use partial sums (here r = 5 < 8, so one term per lane): equal up to rounding.
            assert!((rows[j] - direct).abs() <= 1e-6, "{} vs {direct}", rows[j]);
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        // Gaps from -50 to 50 cross every cell, both clamps and the 700 cap.
        let (n, r) = (300, 7);
        let factor: Vec<f32> = (0..n * r)
            .map(|x| ((x * 7919 % 997) as f32 / 997.0 - 0.5) * 3.0)
            .collect();
        let thresholds = (0..n).map(|i| i as f32 / 3.0 - 50.0).collect();
        let c = Copula::new(n, factor, &vec![0.3; n], thresholds).unwrap();
        let cols = FactorColumns::new(&c, (0..n as u32).collect());
        let b = HazardBound::default();
        let eps = [0.3, -1.2, 0.7, 2.1, -0.4, 1.5, -2.5];
        let (mut u, mut lam) = (vec![0.0; 512], vec![0.0; 512]);
        cols.portable(&eps, &b, &mut u, &mut lam);
        for j in 0..n {
            assert_eq!(
                lam[j].to_bits(),
                b.bound((c.threshold[j] - u[j]) * c.inv_scale[j]).to_bits()
            );
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            let mut cum = vec![0.0; 512];
            block_sums(&lam, &mut cum);
            let (mut u2, mut lam2, mut cum2) = (vec![0.0; 512], vec![0.0; 512], vec![0.0; 512]);
            // SAFETY: AVX-512F is available (checked above).
            unsafe { cols.avx512::<1>(&eps, &b, &mut u2, &mut lam2, &mut cum2) };
            for j in 0..512 {
                assert_eq!(u[j].to_bits(), u2[j].to_bits());
                assert_eq!(lam[j].to_bits(), lam2[j].to_bits(), "j = {j}");
                assert_eq!(cum[j].to_bits(), cum2[j].to_bits(), "j = {j}");
            }
        }
        // Seven rows at once (batches of 4 and 3 on wide vectors): each row as if alone.
        let many: Vec<f32> = (0..7 * 7)
            .map(|x| ((x * 37 % 23) as f32 - 11.0) / 4.0)
            .collect();
        let (mut u7, mut lam7, mut cum7) = (Vec::new(), Vec::new(), Vec::new());
        cols.loads_and_bounds(&many, &b, &mut u7, &mut lam7, &mut cum7);
        for (k, e) in many.chunks(7).enumerate() {
            let (mut u1, mut lam1, mut cum1) = (Vec::new(), Vec::new(), Vec::new());
            cols.portable_row(e, &b, &mut u1, &mut lam1, &mut cum1);
            let at = k * 512..(k + 1) * 512;
            assert_eq!(bits(&u7[at.clone()]), bits(&u1));
            assert_eq!(bits(&lam7[at.clone()]), bits(&lam1), "row {k}");
            let same = cum7[at]
                .iter()
                .zip(&cum1)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "row {k}");
        }
    }

    fn bits(x: &[f32]) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    impl FactorColumns {
        /// One row by the portable kernel.
        fn portable_row(
            &self,
            eps: &[f32],
            b: &HazardBound,
            u: &mut Vec<f32>,
            lam: &mut Vec<f32>,
            cum: &mut Vec<f64>,
        ) {
            let padded = self.threshold.len();
            u.resize(padded, 0.0);
            lam.resize(padded, 0.0);
            cum.resize(padded, 0.0);
            self.portable(eps, b, u, lam);
            block_sums(lam, cum);
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
