//! Upper bounds of the top-level hazards from integer copies of the factor ([`FactorColumns`]),
//! and the block layout of their rates and running sums that the walk reads ([`BoundsRow`]). The
//! kernels that compute them are in `kernels.rs`.

use super::thinning::{hazard, log2_hazard_slope, tangent_point, LOG2_CAP, LOG2_MARGIN};
use super::Copula;
#[cfg(target_arch = "x86_64")]
use crate::kernel::Kernel;

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
/// consecutive k in pairs, one i32 word per lane for the integer dot-product instructions).
/// Positions (the subset's order, padded to whole groups) are cut into blocks of [`BLOCK`] for the
/// walk: a group of [`GROUP`] consecutive blocks interleaves them, block b holding positions
/// `group_start + b % GROUP + k·GROUP` for k = 0..BLOCK, so that each block's running sum (the f64
/// sum of its rates in k order, kept at the end of each of its [`PARTS`] parts) vectorises across
/// the blocks of a group. The walk reads this layout through [`BoundsRow`]. Padding positions have
/// rate 2^-126 and are not features (see [`Self::feature`]).
#[derive(Debug, Clone)]
pub struct FactorColumns {
    features: Vec<u32>,
    rank: usize,
    pub(super) pairs: usize,
    /// ε̃ lies in `[-2^q_eps, 2^q_eps]`.
    q_eps: i32,
    /// `[tiles, pairs, TILE, 2]`: F̃ of consecutive k in pairs, read as i32 words by `vpdpwssd`.
    pub(super) tiles: Vec<i16>,
    /// Per position: the rate line `C - m·(dot·P + Q)`.
    pub(super) c: Vec<f32>,
    pub(super) p: Vec<f32>,
    pub(super) q: Vec<f32>,
}

/// Rates and block sums of a batch of rows (see [`FactorColumns::bounds`]).
#[derive(Debug, Default)]
pub struct RowBounds {
    /// Positions per row, padding included.
    pub(super) padded: usize,
    /// `[rows, padded]`: λ̂ per position.
    pub(super) lam: Vec<f32>,
    /// `[rows, groups, PARTS, GROUP]`: each block's running f64 sum of λ̂ in walk order from 0,
    /// at the end of each part (see [`BoundsRow::part_end`]).
    pub(super) sums: Vec<f64>,
    /// `[rows, pairs]`: ε̃ packed like the tiles.
    pub(super) quantized: Vec<i32>,
    /// Per row: m = max|ε_k|.
    pub(super) max_eps: Vec<f32>,
}

/// Features per tile: four 16-lane accumulator chains per k pair.
pub(super) const TILE: usize = 64;
/// Positions per block of the bounded-hazard walk.
pub(super) const BLOCK: usize = 32;
/// Blocks per interleaved group.
pub(super) const GROUP: usize = 16;
/// Parts per block whose running sums are kept, so the walk skips to the part it lands in.
pub(super) const PARTS: usize = 4;
/// Positions per part.
pub(super) const PART: usize = BLOCK / PARTS;

/// The rate's float bits are clamped to `[2^-126, 2^LOG2_CAP]`, as `(y + 127)·2^23`.
pub(super) const BITS_LO: f32 = 8_388_608.0;
pub(super) const BITS_HI: f32 = ((LOG2_CAP + 127.0) * 8_388_608.0) as f32;

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

impl FactorColumns {
    /// Rows whose bounds share one read of F (wide vectors only): [`Self::bounds`] is fastest on
    /// batches of this many rows.
    pub const ROWS_AT_ONCE: usize = 4;

    /// The integer copies and rate lines of `features` (the positions' order) of `copula`.
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

    /// Number of blocks.
    pub(super) fn num_blocks(&self) -> usize {
        self.padded() / BLOCK
    }

    /// Number of positions, padding included.
    pub(super) fn padded(&self) -> usize {
        self.c.len()
    }

    /// Quantizes one row of ε into `out` (`pairs` words); returns m = max|ε_k|.
    pub(super) fn quantize(&self, eps: &[f32], out: &mut Vec<i32>) -> f32 {
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
    /// blocks' running sums, into `out` (read them with [`RowBounds::row`]). Wide vectors take up
    /// to [`Self::ROWS_AT_ONCE`] rows per read of F; every row gets the same bits whatever the
    /// batch or machine.
    pub fn bounds(&self, eps: &[f32], out: &mut RowBounds) {
        let r = self.rank;
        assert!(
            !eps.is_empty() && eps.len().is_multiple_of(r),
            "eps must hold whole rows of the factor's rank"
        );
        let (rows, padded, blocks) = (eps.len() / r, self.padded(), self.num_blocks());
        out.padded = padded;
        out.quantized.clear();
        out.max_eps.clear();
        for e in eps.chunks(r) {
            let m = self.quantize(e, &mut out.quantized);
            out.max_eps.push(m);
        }
        out.lam.resize(rows * padded, 0.0);
        out.sums.resize(rows * blocks * PARTS, 0.0);
        #[cfg(target_arch = "x86_64")]
        let kernel = crate::kernel::kernel();
        #[cfg(target_arch = "x86_64")]
        if kernel >= Kernel::Avx512 {
            let vnni = kernel == Kernel::Avx512Vnni;
            for k in (0..rows).step_by(Self::ROWS_AT_ONCE) {
                // SAFETY: the kernel in use runs here (`kernel::set_kernel` refuses others); rows
                // are in range.
                unsafe {
                    match ((rows - k).min(Self::ROWS_AT_ONCE), vnni) {
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
        if kernel == Kernel::Avx2 {
            for k in 0..rows {
                // SAFETY: as above.
                unsafe { self.avx2(k, out) };
            }
            return;
        }
        for k in 0..rows {
            self.portable(k, out);
        }
    }
}

impl RowBounds {
    /// Row k of the batch last given to [`FactorColumns::bounds`].
    #[inline]
    pub fn row(&self, k: usize) -> BoundsRow<'_> {
        let (padded, sums) = (self.padded, self.padded / BLOCK * PARTS);
        BoundsRow {
            lam: &self.lam[k * padded..(k + 1) * padded],
            sums: &self.sums[k * sums..(k + 1) * sums],
        }
    }
}

/// One row's rates and block sums, as the bounded-hazard walk reads them: blocks of positions
/// (see [`FactorColumns`]), each cut into parts whose running sums are kept.
#[derive(Debug, Clone, Copy)]
pub struct BoundsRow<'a> {
    lam: &'a [f32],
    sums: &'a [f64],
}

impl<'a> BoundsRow<'a> {
    /// Number of blocks.
    #[inline]
    pub fn num_blocks(&self) -> usize {
        self.sums.len() / PARTS
    }

    /// The rate λ̂ of position j.
    #[inline]
    pub fn rate(&self, j: usize) -> f32 {
        self.lam[j]
    }

    /// Positions of block b from part k on, in walk order.
    #[inline]
    pub fn positions(&self, b: usize, k: usize) -> impl Iterator<Item = usize> {
        let first = b / GROUP * GROUP * BLOCK + b % GROUP;
        (k * PART..BLOCK).map(move |at| first + at * GROUP)
    }

    /// Block b's running sum at the end of part k (its total when k is the last part).
    #[inline]
    pub fn part_end(&self, b: usize, k: usize) -> f64 {
        self.sums[part_at(b, k)]
    }

    /// Block b's running sum at the start of part k (0 for the first part).
    #[inline]
    pub fn part_start(&self, b: usize, k: usize) -> f64 {
        match k {
            0 => 0.0,
            _ => self.part_end(b, k - 1),
        }
    }

    /// The totals of block b and the blocks after it in its group, contiguous in the sums.
    #[inline]
    pub fn totals_from(&self, b: usize) -> &'a [f64] {
        let at = part_at(b, PARTS - 1);
        &self.sums[at..at + GROUP - b % GROUP]
    }
}

/// Where block b's running sum at the end of part k lies in a row's sums.
#[inline]
fn part_at(b: usize, k: usize) -> usize {
    (b / GROUP * PARTS + k) * GROUP + b % GROUP
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copula::tests::{copula, rows_of_eps};
    use crate::copula::thinning::normal_sf;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

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
                // Blocks partition the positions; parts start and end at the running sum in walk
                // order, and a block's total is where the group's totals from it begin.
                let row = out.row(k);
                assert_eq!(row.num_blocks(), cols.num_blocks());
                let mut seen = vec![false; padded];
                for bl in 0..row.num_blocks() {
                    let mut sum = 0.0f64;
                    for (at, j) in row.positions(bl, 0).enumerate() {
                        assert!(!std::mem::replace(&mut seen[j], true));
                        assert_eq!(row.rate(j), lam[j]);
                        if at % PART == 0 {
                            assert_eq!(sum.to_bits(), row.part_start(bl, at / PART).to_bits());
                            assert!(row
                                .positions(bl, at / PART)
                                .eq(row.positions(bl, 0).skip(at)));
                        }
                        sum += lam[j] as f64;
                        if (at + 1) % PART == 0 {
                            let end = row.part_end(bl, at / PART);
                            assert_eq!(sum.to_bits(), end.to_bits());
                        }
                    }
                    assert_eq!(row.totals_from(bl)[0], row.part_end(bl, PARTS - 1));
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
}
