//! The low-rank Gaussian copula, sampled conditionally on its factor.
//!
//! Feature i fires iff `z_i = F_i·ε + s_i η_i > t_i` with ε ~ N(0, I_r), η_i ~ N(0, 1) independent,
//! `s_i = sqrt(d_i)` and `t_i = Φ⁻¹(1 - p_i)`. Given ε the features are independent Bernoullis with
//! `p_i(ε) = Φ̄(w_i)`, `w_i = (t_i - u_i)/s_i`, `u_i = F_i·ε`, so η is never drawn: a row needs r
//! normals plus work per candidate. The exact load `u_i` ([`Copula::load`]) is an f32 sum in a
//! fixed order without fused multiply-adds, so it is bit-identical on every machine; the top-level
//! walk only needs cheap upper bounds of the hazards ([`FactorColumns`]), and exact loads of its
//! candidates.

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

/// Whether a candidate with rate `l` (>= `hazard(w)`) and gap w survives thinning, given a uniform
/// `keep`: `keep · (1 - e^{-l}) < Φ̄(w)`. Most candidates are decided by brackets of both sides
/// (a table of Φ̄ on a 1/128 grid, which falls with w, and Taylor bounds of `1 - e^{-l}` for
/// l <= 1/16); the rest, within ~2 % of the boundary, are computed exactly.
#[inline]
pub fn survives_thinning(w: f64, l: f32, keep: f64) -> bool {
    let l = l as f64;
    if l <= 1.0 / 16.0 {
        if let Some((below, above)) = survival_bracket(w) {
            let low = l - 0.5 * l * l; // 1 - e^{-l} lies in [low, low + l³/6]
            let (least, most) = (keep * low, keep * (low + l * l * l / 6.0));
            // 1e-12: room for the rounding of these bounds.
            if most * (1.0 + 1e-12) < below {
                return true;
            }
            if least > above * (1.0 + 1e-12) {
                return false;
            }
        }
    }
    keep * -(-l).exp_m1() < normal_sf(w)
}

/// Grid of [`survival_bracket`]: w = SURVIVAL_LOW + k / SURVIVAL_STEPS for k = 0..=SURVIVAL_LEN.
const SURVIVAL_LOW: f64 = -8.0;
const SURVIVAL_STEPS: f64 = 128.0;
const SURVIVAL_LEN: usize = 16 * 128;

/// `(Φ̄(w_{k+1}), Φ̄(w_k))` for the grid cell `[w_k, w_{k+1})` holding w, if inside the grid.
#[inline]
fn survival_bracket(w: f64) -> Option<(f64, f64)> {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..=SURVIVAL_LEN)
            .map(|k| normal_sf(SURVIVAL_LOW + k as f64 / SURVIVAL_STEPS))
            .collect()
    });
    let x = (w - SURVIVAL_LOW) * SURVIVAL_STEPS;
    if !(x >= 1.0 && x < (SURVIVAL_LEN - 1) as f64) {
        return None;
    }
    // Grid points are exact in f64; the rounding of x can only misplace w by one cell.
    let grid = |k: usize| SURVIVAL_LOW + k as f64 / SURVIVAL_STEPS;
    let mut k = x as usize;
    if w < grid(k) {
        k -= 1;
    } else if w >= grid(k + 1) {
        k += 1;
    }
    Some((table[k + 1], table[k]))
}

/// `L'(w)` for `L(w) = log2 hazard(w)`: `-φ(w) / (Φ(w) · hazard(w) · ln 2)`.
fn log2_hazard_slope(w: f64) -> f64 {
    let density = (-0.5 * w * w).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let below = 0.5 * libm::erfc(-w * std::f64::consts::FRAC_1_SQRT_2);
    -density / (below * hazard(w) * std::f64::consts::LN_2)
}

/// Range of tangent points (outside it, tangents are still bounds, only looser).
const TANGENT_RANGE: (f64, f64) = (-6.0, 9.5);
/// Added to every tangent, in log2: covers the f32 rounding of the rate's last steps.
const LOG2_MARGIN: f64 = 1e-3;
/// Rates are capped at `2^9.45 ≈ 699`, which still bounds `hazard(w)` for w > -37; below that
/// `Φ̄(w)` is 1 in f64 and thinning is exact anyway.
const LOG2_CAP: f64 = 9.45;
/// The rate's float bits are clamped to `[2^-126, 2^LOG2_CAP]`, as `(y + 127)·2^23`.
const BITS_LO: f32 = 8_388_608.0;
const BITS_HI: f32 = ((LOG2_CAP + 127.0) * 8_388_608.0) as f32;

/// The tangent point of feature j's bound: where `E[2^tangent(w)]` is least when the gap is
/// `w = (t - u)/s` with `u ~ N(0, σ²)` (the load's law over rows). Setting the derivative to zero
/// gives `c = t/s + ln 2 · (σ/s)² · L'(c)`, a contraction for σ/s < 1 (iterated a few times).
fn tangent_point(gap: f64, spread: f64) -> f64 {
    let v = std::f64::consts::LN_2 * spread * spread;
    let mut c = gap.clamp(TANGENT_RANGE.0, TANGENT_RANGE.1);
    for _ in 0..8 {
        c = (gap + v * log2_hazard_slope(c)).clamp(TANGENT_RANGE.0, TANGENT_RANGE.1);
    }
    c
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

    /// `u_i = F_i·ε` over feature i's contiguous row: eight fixed partial sums (lane l takes
    /// k ≡ l mod 8, in order) then a fixed pairwise tree. Any SIMD width computes the same lanes, so
    /// the value does not depend on the machine.
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
            // Every 64-byte line the rows touch: their start, every 64 bytes on, and their last byte.
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

/// Upper bounds of the top-level hazards, per row, from 16-bit integer copies of F and ε.
///
/// **Loads.** F's row j is stored as `F̂_j = σ_j·F̃_j` with integers `|F̃_jk| <= 2^qF`
/// (σ_j = max_k |F_jk| / 2^qF) and a row's ε as `ε̂ = m·2^-qE·ε̃`, `m = max_k |ε_k|`,
/// `|ε̃_k| <= 2^qE`. The integer dot product `F̃_j·ε̃` is exact in i32, so every machine gets the same
/// bits. Since `F·ε - F̂·ε̂ = F̂·(ε - ε̂) + (F - F̂)·ε`, with `|ε - ε̂| <= m·2^-(qE+1)` and
/// `‖ε‖₁ <= r·m`, the exact load is at most `û_j + m·E_j`, where `E_j` also covers the f32
/// rounding of the exact load ([`Copula::load`]).
///
/// **Rates.** `L(w) = log2 hazard(w)` is concave (checked densely in the tests), so the tangent
/// at any point lies above it; each feature takes the tangent at [`tangent_point`] plus a margin.
/// Evaluated at the smallest gap `(t_j - û_j - m·E_j)/s_j` it bounds the hazard at the exact gap
/// (the hazard falls with the gap). `2^y` is taken with Schraudolph's trick: the float whose bits
/// are `(y + 127)·2^23` is `2^n (1 + f) >= 2^(n + f)` (a chord of a convex function). All of
/// this folds into one line per lane, `bits = C_j - m·(dot·P_j + Q_j)`, whose f32 rounding is
/// covered by `Q_j` (rounded down), `C_j` (rounded up) and the margin.
///
/// **Layout.** Features sit in tiles of [`TILE`] (tile q holds `[pairs, TILE, 2]` i16: F̃ of
/// consecutive k in pairs, one i32 word per lane for the integer dot-product instructions). Positions (the subset's order, padded to whole groups) are cut into
/// blocks of [`BLOCK`] for the walk: a group of [`GROUP`] consecutive blocks interleaves them,
/// block b holding positions `group_start + b % GROUP + k·GROUP` for k = 0..BLOCK, so that each
/// block's running sum (the f64 sum of its rates in k order, kept at the end of each of its
/// [`PARTS`] parts) vectorises across the blocks of a group.
/// Padding positions have rate 2^-126 and are not features (see [`Self::feature`]).
#[derive(Debug, Clone)]
pub struct FactorColumns {
    features: Vec<u32>,
    rank: usize,
    pairs: usize,
    /// ε̃ lies in `[-2^q_eps, 2^q_eps]`.
    q_eps: i32,
    /// `[tiles, pairs, TILE, 2]`: F̃ of consecutive k in pairs, read as i32 words by `vpdpwssd`.
    tiles: Vec<i16>,
    /// Per position: the rate line `C - m·(dot·P + Q)`.
    c: Vec<f32>,
    p: Vec<f32>,
    q: Vec<f32>,
}

/// Rates and block sums of a batch of rows (see [`FactorColumns::bounds`]).
#[derive(Debug, Default)]
pub struct RowBounds {
    /// `[rows, padded]`: λ̂ per position.
    pub lam: Vec<f32>,
    /// `[rows, groups, PARTS, GROUP]`: each block's running f64 sum of λ̂ in walk order from 0,
    /// at the end of each part (see [`FactorColumns::part_end`]).
    pub sums: Vec<f64>,
    /// `[rows, pairs]`: ε̃ packed like the tiles.
    quantized: Vec<i32>,
    /// Per row: m = max|ε_k|.
    max_eps: Vec<f32>,
}

/// Features per tile: four 16-lane accumulator chains per k pair.
const TILE: usize = 64;
/// Positions per block of the bounded-hazard walk.
pub const BLOCK: usize = 32;
/// Blocks per interleaved group.
const GROUP: usize = 16;
/// Parts per block whose running sums are kept, so the walk skips to the part it lands in.
pub const PARTS: usize = 4;
/// Positions per part.
pub const PART: usize = BLOCK / PARTS;
/// Rows whose bounds share one read of F (wide vectors only).
pub const ROWS_AT_ONCE: usize = 4;

/// Two i16 in one i32 word, the first in the low half (as `vpdpwssd` reads a pair).
fn pack(lo: i32, hi: i32) -> i32 {
    (lo as u16 as u32 | (hi as u16 as u32) << 16) as i32
}

/// f64 to f32, rounded up or down.
fn f32_up(x: f64) -> f32 {
    let y = x as f32;
    if (y as f64) < x {
        y.next_up()
    } else {
        y
    }
}

fn f32_down(x: f64) -> f32 {
    -f32_up(-x)
}

/// The rate from the rate line, the same f32 operations on every path (no fused multiply-adds).
#[inline(always)]
fn rate(c: f32, p: f32, q: f32, dot: i32, m: f32) -> f32 {
    let bits = (c - m * (dot as f32 * p + q)).clamp(BITS_LO, BITS_HI);
    f32::from_bits(bits as u32)
}

impl FactorColumns {
    pub fn new(copula: &Copula, features: Vec<u32>) -> Self {
        let r = copula.rank;
        let pairs = r.div_ceil(2);
        // |F̃·ε̃| <= r·2^(qF + qE) must stay below 2^31; each part fits an i16.
        let budget = 30 - (usize::BITS - (r - 1).leading_zeros()).min(28) as i32;
        let q_eps = ((budget + 1) / 2).min(14);
        let q_f = (budget - q_eps).min(14);
        let padded = features.len().div_ceil(GROUP * BLOCK) * GROUP * BLOCK;
        let mut tiles = vec![0i16; 2 * pairs * padded];
        let (mut c, mut p, mut q) = (vec![BITS_LO; padded], vec![0.0; padded], vec![0.0; padded]);
        let ulp = 2f64.powi(-24);
        let two23 = 8_388_608.0;
        for (j, &i) in features.iter().enumerate() {
            let row = &copula.factor[i as usize * r..(i as usize + 1) * r];
            let max = row.iter().fold(0.0f32, |m, x| m.max(x.abs())) as f64;
            // σ is a power-of-two fraction of max: exact in f32 (or 0 for a zero row).
            let sigma = (max * 2f64.powi(-q_f)) as f32 as f64;
            let limit = (1 << q_f) as f64;
            let quantized: Vec<i32> = row
                .iter()
                .map(|&f| match sigma > 0.0 {
                    true => (f as f64 / sigma).round().clamp(-limit, limit) as i32,
                    false => 0,
                })
                .collect();
            let (mut l1_hat, mut l1, mut dev) = (0.0f64, 0.0f64, 0.0f64);
            for (&f, &k) in row.iter().zip(&quantized) {
                let approx = sigma * k as f64; // exact: 24 + 15 bits
                l1_hat += approx.abs();
                l1 += (f as f64).abs();
                dev = dev.max((f as f64 - approx).abs());
            }
            for (k, pair) in quantized.chunks(2).enumerate() {
                let at = 2 * ((j / TILE * pairs + k) * TILE + j % TILE);
                tiles[at] = pair[0] as i16;
                tiles[at + 1] = *pair.get(1).unwrap_or(&0) as i16;
            }
            // The load's error per unit of m (see the type's docs), with 1e-9 for the f64 sums.
            let err = (l1_hat * 2f64.powi(-q_eps - 1) + dev * r as f64 + (r + 4) as f64 * ulp * l1)
                * (1.0 + 1e-9);
            let (t, s) = (
                copula.threshold[i as usize] as f64,
                copula.scale[i as usize] as f64,
            );
            let norm = row.iter().map(|&f| f as f64 * f as f64).sum::<f64>().sqrt();
            let at = tangent_point(t / s, norm / s);
            let slope = log2_hazard_slope(at); // < 0
            let line = hazard(at).log2() - slope * at + LOG2_MARGIN + 127.0;
            // bits = 2^23·(line + slope·w), w = t/s - (û + m·E)/s.
            let c64 = two23 * (line + slope * t / s);
            let p64 = two23 * slope * sigma * 2f64.powi(-q_eps) / s;
            // Rounding of P, of the conversion of dot and of the kernel's products and sum:
            // at most 5 ulps of |dot·P| + |Q| <= 2^23·|slope|·(‖F̂‖₁ + E)/s per unit of m.
            let q64 = two23 * slope * err / s;
            let q64 = q64 - 5.0 * ulp * (two23 * slope.abs() * l1_hat / s + q64.abs());
            c[j] = f32_up(c64);
            p[j] = p64 as f32;
            q[j] = f32_down(q64);
        }
        FactorColumns {
            features,
            rank: r,
            pairs,
            q_eps,
            tiles,
            c,
            p,
            q,
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
        let first = b / GROUP * GROUP * BLOCK + b % GROUP;
        (0..BLOCK).map(move |k| first + k * GROUP)
    }

    /// Block b's running sum at the end of part k, from one row's `sums` (its total when
    /// `k = PARTS - 1`).
    #[inline]
    pub fn part_end(sums: &[f64], b: usize, k: usize) -> f64 {
        sums[Self::part_at(b, k)]
    }

    /// The totals of block b and the blocks after it in its group, contiguous in `sums`.
    #[inline]
    pub fn totals_from(sums: &[f64], b: usize) -> &[f64] {
        let at = Self::part_at(b, PARTS - 1);
        &sums[at..at + GROUP - b % GROUP]
    }

    /// Where block b's running sum at the end of part k lies in a row's `sums`.
    #[inline]
    fn part_at(b: usize, k: usize) -> usize {
        (b / GROUP * PARTS + k) * GROUP + b % GROUP
    }

    /// Number of blocks.
    pub fn num_blocks(&self) -> usize {
        self.padded() / BLOCK
    }

    /// Number of positions, padding included.
    pub fn padded(&self) -> usize {
        self.c.len()
    }

    /// Quantizes one row of ε into `out` (`pairs` words); returns m = max|ε_k|.
    fn quantize(&self, eps: &[f32], out: &mut Vec<i32>) -> f32 {
        let m = eps.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let unit = m as f64 * 2f64.powi(-self.q_eps);
        let limit = (1 << self.q_eps) as f64;
        let level = |e: f32| match unit > 0.0 {
            true => (e as f64 / unit).round().clamp(-limit, limit) as i32,
            false => 0,
        };
        out.extend(
            eps.chunks(2)
                .map(|e| pack(level(e[0]), e.get(1).map_or(0, |&x| level(x)))),
        );
        m
    }

    /// For each row of `eps` (`[rows, r]`, row-major): the rate λ̂ of every position and the
    /// blocks' running sums, into `out` (`[rows, padded]` and `[rows, blocks · PARTS]`). Wide vectors take up to
    /// [`ROWS_AT_ONCE`] rows per read of F; every row gets the same bits whatever the batch or
    /// machine.
    pub fn bounds(&self, eps: &[f32], out: &mut RowBounds) {
        let r = self.rank;
        assert!(
            !eps.is_empty() && eps.len().is_multiple_of(r),
            "eps must hold whole rows of the factor's rank"
        );
        let (rows, padded, blocks) = (eps.len() / r, self.padded(), self.num_blocks());
        out.quantized.clear();
        out.max_eps.clear();
        for e in eps.chunks(r) {
            let m = self.quantize(e, &mut out.quantized);
            out.max_eps.push(m);
        }
        out.lam.resize(rows * padded, 0.0);
        out.sums.resize(rows * blocks * PARTS, 0.0);
        #[cfg(target_arch = "x86_64")]
        if let Some(vnni) = wide_integer_dots() {
            for k in (0..rows).step_by(ROWS_AT_ONCE) {
                // SAFETY: the CPU has the kernel's features (checked above); rows are in range.
                unsafe {
                    match ((rows - k).min(ROWS_AT_ONCE), vnni) {
                        (4, true) => self.avx512_vnni::<4>(k, out),
                        (4, false) => self.avx512::<4>(k, out),
                        (3, true) => self.avx512_vnni::<3>(k, out),
                        (3, false) => self.avx512::<3>(k, out),
                        (2, true) => self.avx512_vnni::<2>(k, out),
                        (2, false) => self.avx512::<2>(k, out),
                        (_, true) => self.avx512_vnni::<1>(k, out),
                        (_, false) => self.avx512::<1>(k, out),
                    }
                }
            }
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            for k in 0..rows {
                // SAFETY: the CPU supports AVX2 (checked above).
                unsafe { self.avx2(k, out) };
            }
            return;
        }
        for k in 0..rows {
            self.portable(k, out);
        }
    }

    fn portable(&self, row: usize, out: &mut RowBounds) {
        let (padded, pairs, blocks) = (self.padded(), self.pairs, self.num_blocks());
        let eps = &out.quantized[row * pairs..(row + 1) * pairs];
        let m = out.max_eps[row];
        let lam = &mut out.lam[row * padded..(row + 1) * padded];
        for (t, lt) in lam.chunks_mut(TILE).enumerate() {
            let tile = &self.tiles[2 * t * pairs * TILE..2 * (t + 1) * pairs * TILE];
            let mut acc = [0i32; TILE];
            for (col, &e) in tile.chunks(2 * TILE).zip(eps) {
                let (e0, e1) = (e as i16 as i32, e >> 16);
                for (a, f) in acc.iter_mut().zip(col.chunks_exact(2)) {
                    *a += f[0] as i32 * e0 + f[1] as i32 * e1;
                }
            }
            for (l, out) in lt.iter_mut().enumerate() {
                let j = t * TILE + l;
                *out = rate(self.c[j], self.p[j], self.q[j], acc[l], m);
            }
        }
        let sums = &mut out.sums[row * blocks * PARTS..(row + 1) * blocks * PARTS];
        for (group, sums) in lam
            .chunks(GROUP * BLOCK)
            .zip(sums.chunks_mut(PARTS * GROUP))
        {
            let mut acc = [0.0f64; GROUP];
            for (lines, end) in group.chunks(PART * GROUP).zip(sums.chunks_mut(GROUP)) {
                for line in lines.chunks(GROUP) {
                    for (a, &l) in acc.iter_mut().zip(line) {
                        *a += l as f64;
                    }
                }
                end.copy_from_slice(&acc);
            }
        }
    }

    /// One row with AVX2 (`vpmaddwd` + `vpaddd`, 8 lanes): the same operations as [`Self::portable`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(&self, row: usize, out: &mut RowBounds) {
        use std::arch::x86_64::*;
        const V: usize = 8;
        let (pairs, padded, blocks) = (self.pairs, self.padded(), self.num_blocks());
        assert!(out.quantized.len() >= (row + 1) * pairs && out.lam.len() >= (row + 1) * padded);
        assert!(out.sums.len() >= (row + 1) * blocks * PARTS && out.max_eps.len() > row);
        let eps = out.quantized.as_ptr().add(row * pairs);
        let lam = out.lam.as_mut_ptr().add(row * padded);
        let sums = out.sums.as_mut_ptr().add(row * blocks * PARTS);
        let m = _mm256_set1_ps(out.max_eps[row]);
        let (lo_bits, hi_bits) = (_mm256_set1_ps(BITS_LO), _mm256_set1_ps(BITS_HI));
        // A group line's 16 running sums, as 4 vectors of 4 f64.
        let mut line = [_mm256_setzero_pd(); 4];
        for t in 0..padded / TILE {
            let tile = self.tiles.as_ptr().add(2 * t * pairs * TILE);
            let mut acc = [_mm256_setzero_si256(); TILE / V];
            for k in 0..pairs {
                let e = _mm256_set1_epi32(*eps.add(k));
                for (v, a) in acc.iter_mut().enumerate() {
                    let col = _mm256_loadu_si256(tile.add(2 * (k * TILE + v * V)).cast());
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(col, e));
                }
            }
            for (v, &a) in acc.iter().enumerate() {
                // rate(), lane by lane.
                let j = t * TILE + v * V;
                let c = _mm256_loadu_ps(self.c.as_ptr().add(j));
                let p = _mm256_loadu_ps(self.p.as_ptr().add(j));
                let q = _mm256_loadu_ps(self.q.as_ptr().add(j));
                let x = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(a), p), q);
                let bits = _mm256_sub_ps(c, _mm256_mul_ps(m, x));
                let bits = _mm256_min_ps(_mm256_max_ps(bits, lo_bits), hi_bits);
                let l = _mm256_castsi256_ps(_mm256_cvttps_epi32(bits));
                _mm256_storeu_ps(lam.add(j), l);
                // Lanes 0-7 of a group line (even v) or 8-15 (odd v).
                let h = v % 2 * 2;
                line[h] = _mm256_add_pd(line[h], _mm256_cvtps_pd(_mm256_castps256_ps128(l)));
                let upper = _mm256_cvtps_pd(_mm256_extractf128_ps(l, 1));
                line[h + 1] = _mm256_add_pd(line[h + 1], upper);
                if (j + V).is_multiple_of(PART * GROUP) {
                    let at = sums.add((j + V) / (PART * GROUP) * GROUP - GROUP);
                    for (k, &s) in line.iter().enumerate() {
                        _mm256_storeu_pd(at.add(4 * k), s);
                    }
                    if (j + V).is_multiple_of(GROUP * BLOCK) {
                        line = [_mm256_setzero_pd(); 4];
                    }
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn avx512_vnni<const R: usize>(&self, first: usize, out: &mut RowBounds) {
        self.avx512_rows::<R, true>(first, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn avx512<const R: usize>(&self, first: usize, out: &mut RowBounds) {
        self.avx512_rows::<R, false>(first, out)
    }

    /// Rows `first..first + R`: each vector of F̃ is loaded once for all R rows. Integer dot
    /// products by `vpdpwssd` (VNNI) or `vpmaddwd` + `vpaddd`: the same exact sums.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // v and row index several arrays in step
    unsafe fn avx512_rows<const R: usize, const VNNI: bool>(
        &self,
        first: usize,
        out: &mut RowBounds,
    ) {
        use std::arch::x86_64::*;
        const V: usize = 16;
        let (pairs, padded, blocks) = (self.pairs, self.padded(), self.num_blocks());
        assert!(
            out.quantized.len() >= (first + R) * pairs && out.lam.len() >= (first + R) * padded
        );
        assert!(out.sums.len() >= (first + R) * blocks * PARTS && out.max_eps.len() >= first + R);
        let eps = out.quantized.as_ptr().add(first * pairs);
        let lam = out.lam.as_mut_ptr().add(first * padded);
        let sums = out.sums.as_mut_ptr().add(first * blocks * PARTS);
        let m: [__m512; R] = std::array::from_fn(|row| _mm512_set1_ps(out.max_eps[first + row]));
        let (lo_bits, hi_bits) = (_mm512_set1_ps(BITS_LO), _mm512_set1_ps(BITS_HI));
        // Block sums: one group line is one 16-lane vector; sums restart with each group.
        let (mut lo, mut hi) = ([_mm512_setzero_pd(); R], [_mm512_setzero_pd(); R]);
        for t in 0..padded / TILE {
            let tile = self.tiles.as_ptr().add(2 * t * pairs * TILE);
            let mut acc = [[_mm512_setzero_si512(); TILE / V]; R];
            for k in 0..pairs {
                let col: [__m512i; TILE / V] = std::array::from_fn(|v| {
                    _mm512_loadu_si512(tile.add(2 * (k * TILE + v * V)).cast())
                });
                for (row, acc) in acc.iter_mut().enumerate() {
                    let e = _mm512_set1_epi32(*eps.add(row * pairs + k));
                    for (a, &c) in acc.iter_mut().zip(&col) {
                        *a = if VNNI {
                            _mm512_dpwssd_epi32(*a, c, e)
                        } else {
                            _mm512_add_epi32(*a, _mm512_madd_epi16(c, e))
                        };
                    }
                }
            }
            for v in 0..TILE / V {
                // rate(), lane by lane; the lanes' constants serve all R rows.
                let j = t * TILE + v * V;
                let c = _mm512_loadu_ps(self.c.as_ptr().add(j));
                let p = _mm512_loadu_ps(self.p.as_ptr().add(j));
                let q = _mm512_loadu_ps(self.q.as_ptr().add(j));
                for row in 0..R {
                    let dot = _mm512_cvtepi32_ps(acc[row][v]);
                    let x = _mm512_add_ps(_mm512_mul_ps(dot, p), q);
                    let bits = _mm512_sub_ps(c, _mm512_mul_ps(m[row], x));
                    let bits = _mm512_min_ps(_mm512_max_ps(bits, lo_bits), hi_bits);
                    let l = _mm512_castsi512_ps(_mm512_cvttps_epi32(bits));
                    _mm512_storeu_ps(lam.add(row * padded + j), l);
                    let upper = _mm512_extractf64x4_pd(_mm512_castps_pd(l), 1);
                    lo[row] = _mm512_add_pd(lo[row], _mm512_cvtps_pd(_mm512_castps512_ps256(l)));
                    hi[row] = _mm512_add_pd(hi[row], _mm512_cvtps_pd(_mm256_castpd_ps(upper)));
                    if (j + V).is_multiple_of(PART * GROUP) {
                        // The end of a part: j's group, part and row give the place.
                        let at = sums
                            .add(row * blocks * PARTS + (j + V) / (PART * GROUP) * GROUP - GROUP);
                        _mm512_storeu_pd(at, lo[row]);
                        _mm512_storeu_pd(at.add(8), hi[row]);
                        if (j + V).is_multiple_of(GROUP * BLOCK) {
                            (lo[row], hi[row]) = (_mm512_setzero_pd(), _mm512_setzero_pd());
                        }
                    }
                }
            }
        }
    }
}

/// Whether the wide integer kernels run here: `Some(true)` with VNNI, `Some(false)` without.
#[cfg(target_arch = "x86_64")]
fn wide_integer_dots() -> Option<bool> {
    use std::arch::is_x86_feature_detected as has;
    (has!("avx512f") && has!("avx512bw")).then(|| has!("avx512vnni"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn tangents_of_log2_hazard_bound_it() {
        // L(w) = log2 hazard(w), with Φ(w) taken directly for w < 0 (1 - Φ̄ loses it there).
        let l = |w: f64| {
            match w < 0.0 {
                true => -(0.5 * libm::erfc(-w * std::f64::consts::FRAC_1_SQRT_2)).ln(),
                false => hazard(w),
            }
            .log2()
        };
        // L is concave: second differences are <= 0 (up to f64 noise) on [-37, 37].
        let h = 0.01;
        let mut w = -37.0;
        while w < 37.0 {
            assert!(l(w - h) + l(w + h) - 2.0 * l(w) <= 1e-9, "w = {w}");
            if (-6.5..10.0).contains(&w) {
                let numeric = (l(w + 1e-6) - l(w - 1e-6)) / 2e-6;
                let slope = log2_hazard_slope(w);
                assert!(
                    (slope - numeric).abs() <= 1e-5 * (1.0 + numeric.abs()),
                    "w = {w}"
                );
            }
            w += 0.0173;
        }
        // So every tangent, margin included, lies above it, also far from its point.
        for at in [-6.0, -2.3, 0.0, 1.7, 3.1, 6.2, 9.5] {
            let slope = log2_hazard_slope(at);
            let mut w = -37.0;
            while w < 37.0 {
                assert!(
                    l(at) + slope * (w - at) + LOG2_MARGIN >= l(w),
                    "at {at}, w = {w}"
                );
                w += 0.0311;
            }
        }
        // The best tangent point sits below the mean gap, by about ln 2 · spread² · |L'|.
        let c = tangent_point(3.0, 0.5);
        assert!(c < 3.0 && c > 3.0 - 0.25 * 6.0, "{c}");
        assert_eq!(tangent_point(3.0, 0.0), 3.0);
        assert_eq!(tangent_point(50.0, 0.1), TANGENT_RANGE.1);
    }

    /// A deterministic stream of f32 in [-1, 1).
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|x| ((x * 7919 + seed * 104_729) % 9973) as f32 / 4986.5 - 1.0)
            .collect()
    }

    /// `n` features of rank r with factor entries scaled by `size`, some rows zero or tiny, and
    /// thresholds from -8 to 8; the diagonal is small enough for large gaps.
    fn copula(n: usize, r: usize, size: f32) -> Copula {
        let mut factor: Vec<f32> = values(n * r, r).iter().map(|x| x * size).collect();
        factor[..r].fill(0.0);
        factor[r..2 * r].iter_mut().for_each(|x| *x *= 1e-30);
        let diag = (0..n)
            .map(|i| 0.05 + (i % 5) as f32 * 0.2)
            .collect::<Vec<_>>();
        let thresholds = (0..n).map(|i| (i % 33) as f32 / 2.0 - 8.0).collect();
        Copula::new(n, factor, &diag, thresholds).unwrap()
    }

    fn rows_of_eps(rows: usize, r: usize) -> Vec<f32> {
        let mut eps: Vec<f32> = values(rows * r, 3).iter().map(|x| x * 3.0).collect();
        eps[..r].fill(0.0); // a zero row
        if rows > 1 {
            eps[r] = 40.0; // one large entry
            eps[r + 1] = 1e-40; // a subnormal one
        }
        eps
    }

    #[test]
    fn rates_bound_the_hazard_at_the_exact_load() {
        for (r, size) in [
            (1, 0.5),
            (2, 1.0),
            (5, 0.1),
            (25, 0.1),
            (25, 3.0),
            (33, 0.02),
        ] {
            let n = 700;
            let c = copula(n, r, size);
            // Positions in a shuffled order, as for a world's top-level subset.
            let cols =
                FactorColumns::new(&c, (0..n as u32).map(|i| (i * 277) % n as u32).collect());
            let eps = rows_of_eps(6, r);
            let mut out = RowBounds::default();
            cols.bounds(&eps, &mut out);
            let padded = cols.padded();
            for (k, e) in eps.chunks(r).enumerate() {
                let lam = &out.lam[k * padded..(k + 1) * padded];
                for (j, &i) in cols.features.iter().enumerate() {
                    let w = c.gap(i as usize, c.load(i, e));
                    let l = lam[j] as f64;
                    assert!(
                        l >= hazard(w) || (normal_sf(w) == 1.0 && -(-l).exp_m1() == 1.0),
                        "rank {r}, size {size}, row {k}, feature {i}: rate {l} below hazard({w})"
                    );
                }
                assert!((n..padded).all(|j| cols.feature(j).is_none() && lam[j] < 1e-37));
                // Blocks partition the positions; parts end at the running sum in walk order.
                let nb = cols.num_blocks();
                let sums = &out.sums[k * nb * PARTS..(k + 1) * nb * PARTS];
                let mut seen = vec![false; padded];
                for bl in 0..nb {
                    let mut sum = 0.0f64;
                    for (at, j) in FactorColumns::block(bl).enumerate() {
                        assert!(!std::mem::replace(&mut seen[j], true));
                        sum += lam[j] as f64;
                        if (at + 1) % PART == 0 {
                            let end = FactorColumns::part_end(sums, bl, at / PART);
                            assert_eq!(sum.to_bits(), end.to_bits());
                        }
                    }
                }
                assert!(seen.iter().all(|&x| x));
            }
        }
    }

    #[test]
    fn rates_lie_on_the_tangent_at_the_exact_gap() {
        // Sharper than the hazard itself: a rate is at least its feature's tangent (margin
        // included, less 1e-4 for the kernel's f32 rounding) at the exact gap, so an error term
        // that undercounts the integer copies' error (~1e-3 in the gap) fails here.
        for (r, size) in [(1, 0.5), (5, 0.1), (25, 0.1), (25, 3.0), (33, 0.02)] {
            let n = 700;
            let c = copula(n, r, size);
            let cols = FactorColumns::new(&c, (0..n as u32).collect());
            let eps = rows_of_eps(6, r);
            let mut out = RowBounds::default();
            cols.bounds(&eps, &mut out);
            for (k, e) in eps.chunks(r).enumerate() {
                for i in 0..n {
                    let (t, s) = (c.threshold[i] as f64, c.scale[i] as f64);
                    let f = &c.factor[i * r..(i + 1) * r];
                    let norm = f.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
                    let at = tangent_point(t / s, norm / s);
                    let w = c.gap(i, c.load(i as u32, e));
                    let line = hazard(at).log2() + log2_hazard_slope(at) * (w - at) + LOG2_MARGIN;
                    let least = line.clamp(-126.0, LOG2_CAP) - 1e-4;
                    let got = (out.lam[k * cols.padded() + i] as f64).log2();
                    assert!(
                        got >= least,
                        "rank {r}, size {size}, row {k}, feature {i}: {got} < {least}"
                    );
                }
            }
        }
    }

    #[test]
    fn rates_are_tight_for_a_16k_like_copula() {
        // Rank 25, F ~ N(0, 0.1²) entries, d = 1 - ‖F‖², p from 0.3 to 5e-4: over 400 rows of
        // ε ~ N(0, I), the summed rates exceed the summed exact hazards by < 20 % (each feature's
        // tangent is chosen for the load's law; the integer copies move gaps by ~1e-3).
        let (n, r) = (512, 25);
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let mut normal =
            |scale: f32| scale * Distribution::<f32>::sample(&StandardNormal, &mut rng);
        let factor: Vec<f32> = (0..n * r).map(|_| normal(0.1)).collect();
        let diag: Vec<f32> = factor
            .chunks(r)
            .map(|f| 1.0 - f.iter().map(|x| x * x).sum::<f32>())
            .collect();
        let thresholds = (0..n)
            .map(|i| [0.52, 1.28, 2.05, 2.58, 3.29][i % 5])
            .collect();
        let c = Copula::new(n, factor, &diag, thresholds).unwrap();
        let cols = FactorColumns::new(&c, (0..n as u32).collect());
        let eps: Vec<f32> = (0..400 * r).map(|_| normal(1.0)).collect();
        let mut out = RowBounds::default();
        cols.bounds(&eps, &mut out);
        let (mut bound, mut exact) = (0.0, 0.0);
        for (k, e) in eps.chunks(r).enumerate() {
            for j in 0..n {
                bound += out.lam[k * cols.padded() + j] as f64;
                exact += hazard(c.gap(j, c.load(j as u32, e)));
            }
        }
        assert!(bound >= exact && bound < 1.2 * exact, "{bound} vs {exact}");
    }

    #[test]
    fn thinning_brackets_decide_as_the_exact_test() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
        let (mut bracketed, mut total) = (0, 0);
        for _ in 0..200_000 {
            let u: [f64; 3] = std::array::from_fn(|_| rand::RngExt::random(&mut rng));
            let w = -10.0 + 20.0 * u[0];
            // Rates from just above the hazard to far above it, and some above 1/16.
            let l = (hazard(w) * (1.0 + 3.0 * u[1] * u[1]) + 1e-30) as f32;
            let l = if (l as f64) < hazard(w) {
                l.next_up()
            } else {
                l
            };
            let exact_value = -(-(l as f64)).exp_m1() / normal_sf(w);
            // keep near the boundary half the time.
            let keep = if u[2] < 0.5 {
                u[2] * 2.0
            } else {
                (1.0 + (u[2] - 0.75) * 0.1) / exact_value
            };
            let exact = keep * -(-(l as f64)).exp_m1() < normal_sf(w);
            total += 1;
            if (keep * exact_value - 1.0).abs() > 1e-9 {
                assert_eq!(
                    survives_thinning(w, l, keep),
                    exact,
                    "w {w}, l {l}, keep {keep}"
                );
            }
            if l as f64 <= 1.0 / 16.0 && survival_bracket(w).is_some() {
                bracketed += 1;
            }
        }
        assert!(
            bracketed > total / 4,
            "the brackets were rarely tried: {bracketed}"
        );
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

    /// One row by the portable kernel.
    fn portable_row(cols: &FactorColumns, e: &[f32]) -> RowBounds {
        let mut one = RowBounds::default();
        one.max_eps = vec![cols.quantize(e, &mut one.quantized)];
        one.lam.resize(cols.padded(), 0.0);
        one.sums.resize(cols.num_blocks() * PARTS, 0.0);
        cols.portable(0, &mut one);
        one
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        for r in [1, 7, 25] {
            let c = copula(300, r, 0.3);
            let cols = FactorColumns::new(&c, (0..300).collect());
            // Seven rows: batches of 4 and 3 on wide vectors, each row as if alone.
            let eps = rows_of_eps(7, r);
            let mut all = RowBounds::default();
            cols.bounds(&eps, &mut all);
            let (p, nb) = (cols.padded(), cols.num_blocks());
            for (k, e) in eps.chunks(r).enumerate() {
                let one = portable_row(&cols, e);
                assert_eq!(
                    bits(&all.lam[k * p..(k + 1) * p]),
                    bits(&one.lam),
                    "rank {r}, row {k}"
                );
                assert_eq!(
                    bits64(&all.sums[k * nb * PARTS..(k + 1) * nb * PARTS]),
                    bits64(&one.sums)
                );
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut avx2 = RowBounds::default();
                cols.bounds(&eps, &mut avx2);
                avx2.lam.fill(0.0);
                for k in 0..7 {
                    // SAFETY: the CPU supports AVX2 (checked above).
                    unsafe { cols.avx2(k, &mut avx2) };
                }
                assert_eq!(bits(&avx2.lam), bits(&all.lam), "rank {r}");
                assert_eq!(bits64(&avx2.sums), bits64(&all.sums), "rank {r}");
            }
            #[cfg(target_arch = "x86_64")]
            if wide_integer_dots().is_some() {
                // vpmaddwd + vpaddd instead of VNNI: the same exact sums.
                let mut madd = RowBounds::default();
                cols.bounds(&eps, &mut madd);
                madd.lam.fill(0.0);
                // SAFETY: AVX-512F and BW are available (checked above).
                unsafe {
                    cols.avx512::<4>(0, &mut madd);
                    cols.avx512::<3>(4, &mut madd);
                }
                assert_eq!(bits(&madd.lam), bits(&all.lam), "rank {r}");
                assert_eq!(bits64(&madd.sums), bits64(&all.sums), "rank {r}");
            }
        }
    }

    fn bits(x: &[f32]) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    fn bits64(x: &[f64]) -> Vec<u64> {
        x.iter().map(|v| v.to_bits()).collect()
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
