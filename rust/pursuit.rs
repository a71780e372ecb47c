//! Matching pursuit's picks, certified.
//!
//! Greedy (positive) matching pursuit of a residual `r [d]` over atoms `W [n, d]`: `k` times, pick
//! the first `l` maximizing `r·W_l` (the row stops when no score is positive), take `c = r·W_l`
//! and set `r ← r − c·W_l`. The decision is made on scores computed here, `dot(r, W_l)` in float32
//! with one fixed summation order: that is the pursuit this module runs, for any thread count and
//! any vector kernel.
//!
//! Computing all `n` scores at every pick costs `n·d` per pick. Instead each row keeps *estimates*
//! `ŝ` of its scores, updated after a pick through a Gram matrix (`ŝ ← ŝ − c·G_l`, `n` operations),
//! with a rigorous bound on how far each estimate can be from the score it stands for. A pick
//! computes the exact score of the best estimate, then of every other latent whose estimate plus
//! bound reaches the best exact score so far: every latent it skips provably scores below the pick,
//! so the picks equal those of computing every score ([`Gram::Exhaustive`] does that, for tests) and
//! do not depend on which Gram matrix is used. The Gram matrix only decides how many exact scores
//! are computed.
//!
//! The bounds (`u = 2⁻²⁴` float32's unit roundoff, `u_b = 2⁻⁸` bfloat16's, `γ_m = m·u/(1 − m·u)`,
//! `ν_l = ‖W_l‖`, `ν = max_l ν_l`, `R_t = ‖r₀‖ + Σ_j c_j·ν_{l_j}`):
//! - the initial estimates come from a float32 product `r₀·Wᵀ`: off by at most `γ_d·‖r₀‖·ν_l`;
//! - [`Gram::F32`], a float32 product `W Wᵀ`: each entry off by at most `γ_d·ν_l·ν_m`;
//! - [`Gram::Split`], two bfloat16 products with float32 accumulation and bfloat16 results, `A =
//!   W_hi W_hiᵀ` and `C = [W_hi | W_lo]·[W_lo | W_hi]ᵀ` with `W_hi = bf16(W)`, `W_lo = bf16(W − W_hi)`:
//!   `G = A + C` off by at most `u_b/(1 − u_b)·|A_lm| + κ·ν_l·ν_m`, `κ = 1.1·γ_{2d} + 6·u_b²` (the
//!   rounding of `A`'s result, `A`'s accumulation, the part of `W − W_hi` that `W_lo` misses, `C`'s
//!   rounding and `(W − W_hi)(W − W_hi)ᵀ`); the first term is kept per entry, the rest per row;
//! - the estimates' own float32 updates, the drift of the stored residual from `r₀ − Σ c_j W_{l_j}`
//!   and the exact scores' rounding: at most `(γ_d + 4u)·R_t·ν` plus `4u·(R_j + c_j·ν_{l_j})·ν` per
//!   update.
//!
//! The per-row bound is enlarged by 1 % to cover its own rounding.

use crate::error::{Error, Result};
use rayon::prelude::*;

/// float32's unit roundoff.
const U: f64 = f32::EPSILON as f64 / 2.0;
/// bfloat16's unit roundoff.
const U_BF16: f64 = 1.0 / 256.0;
/// Lanes of the vector loops (sums and maxima are reduced in this fixed shape on every CPU).
const LANES: usize = 16;

/// How the score estimates are kept up to date between picks.
#[derive(Debug, Clone, Copy)]
pub enum Gram<'a> {
    /// `W Wᵀ` `[n, n]` from a float32 product.
    F32(&'a [f32]),
    /// `A` and `C` `[n, n]` each, as bfloat16 bit patterns (see the module documentation).
    Split { a: &'a [u16], c: &'a [u16] },
    /// No estimates: every score is computed at every pick (the reference the others equal).
    Exhaustive,
}

/// One pursuit over a batch: C-contiguous float32 arrays.
#[derive(Debug, Clone, Copy)]
pub struct Pursuit<'a> {
    /// `[rows, n]`: the initial scores `r₀·Wᵀ` from a float32 product.
    pub scores: &'a [f32],
    /// `[rows, d]`: the initial residuals `r₀`.
    pub residual: &'a [f32],
    /// `[n, d]`: the atoms `W`.
    pub atoms: &'a [f32],
    /// The number of atoms `n`.
    pub n: usize,
    /// The atoms' dimension `d`.
    pub d: usize,
    /// How the estimates are kept up to date.
    pub gram: Gram<'a>,
    /// The number of picks `k`.
    pub iterations: usize,
}

/// Scratch of one row.
struct Row {
    s: Vec<f32>,
    e: Vec<f32>,
    r: Vec<f32>,
}

/// What each pick counted: exact scores computed (for benchmarks and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Picks made.
    pub picks: u64,
    /// Exact scores computed.
    pub exact_scores: u64,
}

impl Pursuit<'_> {
    fn check(&self) -> Result<usize> {
        let (n, d) = (self.n, self.d);
        if n == 0 || d == 0 {
            return Err(Error::value(
                "atoms",
                "must have at least one row and one column",
            ));
        }
        if self.atoms.len() != n * d {
            return Err(Error::value("atoms", format!("must hold {n}·{d} values")));
        }
        if !self.residual.len().is_multiple_of(d) {
            return Err(Error::value("residual", format!("must have {d} columns")));
        }
        let rows = self.residual.len() / d;
        if self.scores.len() != rows * n {
            return Err(Error::value("scores", format!("must be [{rows}, {n}]")));
        }
        let square = |len: usize, name: &'static str| {
            if len == n * n {
                Ok(())
            } else {
                Err(Error::value(name, format!("must be [{n}, {n}]")))
            }
        };
        match self.gram {
            Gram::F32(g) => square(g.len(), "gram")?,
            Gram::Split { a, c } => {
                square(a.len(), "gram")?;
                square(c.len(), "gram")?;
            }
            Gram::Exhaustive => {}
        }
        Ok(rows)
    }
}

/// The picks of every row, `[rows, iterations]` (row-major; -1 where no score is positive, from
/// then on: the row's coefficient is 0), and what they counted. Runs on the calling rayon pool.
pub fn pursue(p: &Pursuit<'_>) -> Result<(Vec<i64>, Counts)> {
    let rows = p.check()?;
    let (n, d, k) = (p.n, p.d, p.iterations);
    let norms: Vec<f64> = p
        .atoms
        .chunks_exact(d)
        .map(|w| w.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt())
        .collect();
    let nu = norms.iter().copied().fold(0.0, f64::max);
    if !nu.is_finite() {
        return Err(Error::value("atoms", "contain NaN or infinity"));
    }
    let mut out = vec![0i64; rows * k];
    if k == 0 {
        return Ok((out, Counts::default()));
    }
    let kernel = crate::kernel::kernel();
    let counts = out
        .par_chunks_mut(k)
        .enumerate()
        .map_init(
            || Row {
                s: vec![0.0; n],
                e: vec![0.0; n],
                r: vec![0.0; d],
            },
            |row, (i, picks)| {
                let setup = Setup {
                    p,
                    norms: &norms,
                    nu,
                };
                dispatch(kernel, &setup, row, i, picks)
            },
        )
        .try_reduce(Counts::default, |a, b| {
            Ok(Counts {
                picks: a.picks + b.picks,
                exact_scores: a.exact_scores + b.exact_scores,
            })
        })?;
    Ok((out, counts))
}

struct Setup<'a, 'b> {
    p: &'a Pursuit<'b>,
    norms: &'a [f64],
    nu: f64,
}

fn dispatch(
    kernel: crate::kernel::Kernel,
    setup: &Setup<'_, '_>,
    row: &mut Row,
    i: usize,
    picks: &mut [i64],
) -> Result<Counts> {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::kernel::Kernel;
        match kernel {
            // SAFETY: the kernel is only chosen when the CPU runs it (`kernel::set_kernel`).
            Kernel::Avx512 | Kernel::Avx512Vnni => {
                return unsafe { row_avx512(setup, row, i, picks) }
            }
            Kernel::Avx2 => return unsafe { row_avx2(setup, row, i, picks) },
            Kernel::Portable => {}
        }
    }
    let _ = kernel;
    pursue_row(setup, row, i, picks)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn row_avx512(
    s: &Setup<'_, '_>,
    row: &mut Row,
    i: usize,
    picks: &mut [i64],
) -> Result<Counts> {
    pursue_row(s, row, i, picks)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn row_avx2(
    s: &Setup<'_, '_>,
    row: &mut Row,
    i: usize,
    picks: &mut [i64],
) -> Result<Counts> {
    pursue_row(s, row, i, picks)
}

/// `Σ a_j b_j` in float32: `LANES` partial sums, then a fixed pairwise reduction.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (a_body, a_tail) = a.split_at(a.len() - a.len() % LANES);
    let b_body = &b[..a_body.len()];
    for (x, y) in a_body.chunks_exact(LANES).zip(b_body.chunks_exact(LANES)) {
        for j in 0..LANES {
            acc[j] += x[j] * y[j];
        }
    }
    for (j, (x, y)) in a_tail.iter().zip(&b[a_body.len()..]).enumerate() {
        acc[j] += x * y;
    }
    let mut width = LANES / 2;
    while width > 0 {
        for j in 0..width {
            acc[j] += acc[j + width];
        }
        width /= 2;
    }
    acc[0]
}

#[inline(always)]
fn bf16(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// Index of the first maximum of `s` (all finite).
#[inline(always)]
fn first_max(s: &[f32]) -> usize {
    let mut best = [f32::NEG_INFINITY; LANES];
    let mut at = [0u32; LANES];
    let body = s.len() - s.len() % LANES;
    for (c, chunk) in s[..body].chunks_exact(LANES).enumerate() {
        for j in 0..LANES {
            if chunk[j] > best[j] {
                best[j] = chunk[j];
                at[j] = (c * LANES + j) as u32;
            }
        }
    }
    let (mut value, mut index) = (f32::NEG_INFINITY, usize::MAX);
    for j in 0..LANES {
        if best[j] > value || (best[j] == value && (at[j] as usize) < index) {
            value = best[j];
            index = at[j] as usize;
        }
    }
    for (j, &v) in s[body..].iter().enumerate() {
        if v > value {
            value = v;
            index = body + j;
        }
    }
    index
}

/// `s ← s − c·g` over a float32 Gram row.
#[inline(always)]
fn update_f32(s: &mut [f32], g: &[f32], c: f32) {
    for (x, &y) in s.iter_mut().zip(g) {
        *x -= c * y;
    }
}

/// `s ← s − c·(a + c')`, `e ← e + w·|a|` over bfloat16 rows `a`, `c'`.
#[inline(always)]
fn update_split(s: &mut [f32], e: &mut [f32], a: &[u16], cc: &[u16], c: f32, w: f32) {
    for (((x, err), &ab), &cb) in s.iter_mut().zip(e.iter_mut()).zip(a).zip(cc) {
        let av = bf16(ab);
        *x -= c * (av + bf16(cb));
        *err += w * av.abs();
    }
}

/// Whether any `s_m + e_m + slack >= best` in a chunk (`e` is all zeros for float32 Gram rows).
#[inline(always)]
fn any_reaches(s: &[f32], e: &[f32], slack: f32, best: f32) -> bool {
    let mut hit = false;
    for (x, y) in s.iter().zip(e) {
        hit |= *x + *y + slack >= best;
    }
    hit
}

#[inline(always)]
fn pursue_row(st: &Setup<'_, '_>, row: &mut Row, i: usize, picks: &mut [i64]) -> Result<Counts> {
    let p = st.p;
    let (n, d) = (p.n, p.d);
    let Row { s, e, r } = row;
    s.copy_from_slice(&p.scores[i * n..(i + 1) * n]);
    r.copy_from_slice(&p.residual[i * d..(i + 1) * d]);
    e.fill(0.0);
    if !s.iter().all(|v| v.is_finite()) {
        return Err(Error::value(
            "scores",
            format!("row {i} contains NaN or infinity"),
        ));
    }
    let r0 = r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
    if !r0.is_finite() {
        return Err(Error::value(
            "residual",
            format!("row {i} contains NaN or infinity"),
        ));
    }
    let atom = |l: usize| &p.atoms[l * d..(l + 1) * d];
    let gamma = |m: usize| m as f64 * U / (1.0 - m as f64 * U);
    let kappa = match p.gram {
        Gram::F32(_) => gamma(d),
        Gram::Split { .. } => 1.1 * gamma(2 * d) + 6.0 * U_BF16 * U_BF16,
        Gram::Exhaustive => 0.0,
    };
    let per_entry = (U_BF16 / (1.0 - U_BF16) * 1.01) as f32;
    let mut counts = Counts::default();
    let (mut reach, mut accumulated) = (0.0f64, 0.0f64); // R_t − ‖r₀‖, the updates' terms
    for t in 0..picks.len() {
        let slack = match p.gram {
            Gram::Exhaustive => f32::INFINITY,
            _ => {
                let total = r0 + reach;
                let bound = st.nu * ((gamma(d) + 4.0 * U) * (r0 + total) + accumulated);
                (bound * 1.01) as f32
            }
        };
        // The best estimate's exact score, then every latent whose estimate may reach it.
        let first = first_max(s);
        let (mut best, mut pick) = (dot(r, atom(first)), first);
        counts.exact_scores += 1;
        let body = n - n % LANES;
        for (c, (sc, ec)) in s[..body]
            .chunks_exact(LANES)
            .zip(e[..body].chunks_exact(LANES))
            .enumerate()
        {
            if !any_reaches(sc, ec, slack, best) {
                continue;
            }
            for j in 0..LANES {
                let l = c * LANES + j;
                if sc[j] + ec[j] + slack >= best && l != first {
                    let v = dot(r, atom(l));
                    counts.exact_scores += 1;
                    if v > best || (v == best && l < pick) {
                        best = v;
                        pick = l;
                    }
                }
            }
        }
        for l in body..n {
            if s[l] + e[l] + slack >= best && l != first {
                let v = dot(r, atom(l));
                counts.exact_scores += 1;
                if v > best || (v == best && l < pick) {
                    best = v;
                    pick = l;
                }
            }
        }
        counts.picks += 1;
        if best <= 0.0 || best.is_nan() {
            // No positive score: nothing changes from here on.
            picks[t..].fill(-1);
            counts.picks += (picks.len() - t - 1) as u64;
            break;
        }
        picks[t] = pick as i64;
        let c = best;
        for (x, &w) in r.iter_mut().zip(atom(pick)) {
            *x -= c * w;
        }
        let step = c as f64 * st.norms[pick];
        accumulated += kappa * step + 4.0 * U * (r0 + reach + step);
        reach += step;
        if t + 1 < picks.len() {
            match p.gram {
                Gram::F32(g) => update_f32(s, &g[pick * n..(pick + 1) * n], c),
                Gram::Split { a, c: cc } => update_split(
                    s,
                    e,
                    &a[pick * n..(pick + 1) * n],
                    &cc[pick * n..(pick + 1) * n],
                    c,
                    c * per_entry,
                ),
                Gram::Exhaustive => {}
            }
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Atoms with near-duplicates (so that estimates are close) and residuals mixing a few atoms.
    fn problem(rows: usize, n: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut atoms: Vec<f32> = (0..n * d).map(|_| rng.random::<f32>() - 0.5).collect();
        for l in (1..n).step_by(3) {
            for j in 0..d {
                atoms[l * d + j] = atoms[(l - 1) * d + j] + 1e-3 * (rng.random::<f32>() - 0.5);
            }
        }
        for l in (2..n).step_by(7) {
            atoms.copy_within((l - 1) * d..l * d, l * d); // exact duplicates: ties go to the lower index
        }
        for w in atoms.chunks_exact_mut(d) {
            let norm = w.iter().map(|v| v * v).sum::<f32>().sqrt();
            w.iter_mut().for_each(|v| *v /= norm);
        }
        let mut residual = vec![0.0f32; rows * d];
        for r in residual.chunks_exact_mut(d) {
            for _ in 0..5 {
                let l = rng.random_range(0..n);
                let c = 1.0 + 3.0 * rng.random::<f32>();
                for (x, w) in r.iter_mut().zip(&atoms[l * d..(l + 1) * d]) {
                    *x += c * w;
                }
            }
            r.iter_mut()
                .for_each(|v| *v += 0.05 * (rng.random::<f32>() - 0.5));
        }
        // Initial scores off by up to 90 % of what the bound allows a float32 product (γ_d·‖r₀‖·ν_l).
        let gamma = d as f64 * U;
        let mut scores = vec![0.0f32; rows * n];
        for (i, r) in residual.chunks_exact(d).enumerate() {
            let r0 = r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
            for l in 0..n {
                let w = &atoms[l * d..(l + 1) * d];
                let exact = r
                    .iter()
                    .zip(w)
                    .map(|(a, b)| (*a as f64) * (*b as f64))
                    .sum::<f64>();
                let off = 0.9 * gamma * r0 * (2.0 * rng.random::<f64>() - 1.0);
                scores[i * n + l] = (exact + off) as f32;
            }
        }
        (atoms, residual, scores)
    }

    /// `W Wᵀ` with each entry off by up to 90 % of what the bound allows a float32 product.
    fn gram_f32(atoms: &[f32], n: usize, d: usize) -> Vec<f32> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(99);
        let gamma = d as f64 * U;
        let mut g = vec![0.0f32; n * n];
        for l in 0..n {
            for m in 0..n {
                let (a, b) = (&atoms[l * d..(l + 1) * d], &atoms[m * d..(m + 1) * d]);
                let exact = a
                    .iter()
                    .zip(b)
                    .map(|(x, y)| (*x as f64) * (*y as f64))
                    .sum::<f64>();
                g[l * n + m] = (exact + 0.9 * gamma * (2.0 * rng.random::<f64>() - 1.0)) as f32;
            }
        }
        g
    }

    fn to_bf16(x: f32) -> u16 {
        // round to nearest even (finite inputs)
        let bits = x.to_bits();
        ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
    }

    fn split(atoms: &[f32], n: usize, d: usize) -> (Vec<u16>, Vec<u16>) {
        let hi: Vec<f32> = atoms.iter().map(|&v| bf16(to_bf16(v))).collect();
        let lo: Vec<f32> = atoms
            .iter()
            .zip(&hi)
            .map(|(&v, &h)| bf16(to_bf16(v - h)))
            .collect();
        let (mut a, mut c) = (vec![0u16; n * n], vec![0u16; n * n]);
        for l in 0..n {
            for m in 0..n {
                let (hl, hm) = (&hi[l * d..(l + 1) * d], &hi[m * d..(m + 1) * d]);
                let (ll, lm) = (&lo[l * d..(l + 1) * d], &lo[m * d..(m + 1) * d]);
                let aa: f32 = hl.iter().zip(hm).map(|(x, y)| x * y).sum();
                let cc: f32 = hl.iter().zip(lm).map(|(x, y)| x * y).sum::<f32>()
                    + ll.iter().zip(hm).map(|(x, y)| x * y).sum::<f32>();
                a[l * n + m] = to_bf16(aa);
                c[l * n + m] = to_bf16(cc);
            }
        }
        (a, c)
    }

    #[test]
    fn every_gram_picks_what_computing_every_score_picks() {
        for (rows, n, d, seed) in [(40, 70, 24, 1), (25, 33, 17, 2), (30, 128, 64, 3)] {
            let (atoms, residual, scores) = problem(rows, n, d, seed);
            let g = gram_f32(&atoms, n, d);
            let (a, c) = split(&atoms, n, d);
            let run = |gram| {
                pursue(&Pursuit {
                    scores: &scores,
                    residual: &residual,
                    atoms: &atoms,
                    n,
                    d,
                    gram,
                    iterations: 12,
                })
                .unwrap()
            };
            let (reference, all) = run(Gram::Exhaustive);
            assert!(all.exact_scores <= all.picks * n as u64);
            for gram in [Gram::F32(&g), Gram::Split { a: &a, c: &c }] {
                let (picks, counts) = run(gram);
                assert_eq!(picks, reference, "{gram:?}");
                assert!(counts.exact_scores < all.exact_scores);
            }
        }
    }

    #[test]
    fn every_kernel_gives_the_same_picks() {
        let (rows, n, d) = (20, 50, 37);
        let (atoms, residual, scores) = problem(rows, n, d, 4);
        let g = gram_f32(&atoms, n, d);
        let norms: Vec<f64> = atoms
            .chunks_exact(d)
            .map(|w| w.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt())
            .collect();
        let nu = norms.iter().copied().fold(0.0, f64::max);
        let mut seen = Vec::new();
        for k in crate::kernel::Kernel::ALL
            .into_iter()
            .filter(|k| k.supported())
        {
            let p = Pursuit {
                scores: &scores,
                residual: &residual,
                atoms: &atoms,
                n,
                d,
                gram: Gram::F32(&g),
                iterations: 9,
            };
            let rows: Vec<_> = (0..rows)
                .map(|i| {
                    let setup = Setup {
                        p: &p,
                        norms: &norms,
                        nu,
                    };
                    let mut row = Row {
                        s: vec![0.0; n],
                        e: vec![0.0; n],
                        r: vec![0.0; d],
                    };
                    let mut picks = vec![0i64; 9];
                    dispatch(k, &setup, &mut row, i, &mut picks).unwrap();
                    (picks, row.r)
                })
                .collect();
            seen.push(rows);
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn no_positive_score_picks_nothing() {
        let (n, d) = (3, 2);
        let atoms = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8];
        let residual = [-1.0, -1.0];
        let scores = [-1.0, -1.0, -1.4];
        let (picks, _) = pursue(&Pursuit {
            scores: &scores,
            residual: &residual,
            atoms: &atoms,
            n,
            d,
            gram: Gram::Exhaustive,
            iterations: 3,
        })
        .unwrap();
        assert_eq!(picks, [-1, -1, -1]);
    }

    #[test]
    fn bad_shapes_and_values_are_named() {
        let atoms = [1.0, 0.0, 0.0, 1.0];
        let base = Pursuit {
            scores: &[1.0, 0.0],
            residual: &[1.0, 0.0],
            atoms: &atoms,
            n: 2,
            d: 2,
            gram: Gram::Exhaustive,
            iterations: 1,
        };
        assert_eq!(
            pursue(&Pursuit {
                scores: &[1.0],
                ..base
            })
            .unwrap_err()
            .name(),
            "scores"
        );
        assert_eq!(
            pursue(&Pursuit {
                atoms: &[1.0],
                ..base
            })
            .unwrap_err()
            .name(),
            "atoms"
        );
        assert_eq!(
            pursue(&Pursuit {
                gram: Gram::F32(&[1.0]),
                ..base
            })
            .unwrap_err()
            .name(),
            "gram"
        );
        let nan = [f32::NAN, 0.0];
        assert_eq!(
            pursue(&Pursuit {
                residual: &nan,
                ..base
            })
            .unwrap_err()
            .name(),
            "residual"
        );
        assert_eq!(
            pursue(&Pursuit {
                scores: &nan,
                ..base
            })
            .unwrap_err()
            .name(),
            "scores"
        );
    }
}
