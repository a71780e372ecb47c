//! Matching pursuit's picks, certified.
//!
//! Greedy (positive) matching pursuit of a residual `r [d]` over atoms `W [n, d]`: `k` times, pick
//! the first `l` maximizing `r·W_l` (the row stops when no score is positive), take `c = r·W_l`
//! and set `r ← r − c·W_l`. The decision is made on scores computed here, `dot(r, W_l)` in float32
//! with one fixed summation order: that is the pursuit this module runs, for any thread count. (Its
//! loops are plain Rust vectorized for the build's target: on x86-64 the AVX2 and AVX-512 builds of
//! these loops measured slower than the baseline one, so there is no per-CPU dispatch here.)
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
//! - [`Gram::Bf16`], that product rounded to bfloat16 (half the memory a pick reads): each entry
//!   `G̃_lm` off by at most `u_b/(1 − u_b)·|G̃_lm| + γ_d·(1 + u_b)·ν_l·ν_m`; the first term is kept
//!   per entry, the second per row;
//! - the estimates' own float32 updates, the drift of the stored residual from `r₀ − Σ c_j W_{l_j}`
//!   and the exact scores' rounding: at most `(γ_d + 4u)·(‖r₀‖ + R_t)·ν` plus
//!   `4u·(R_j + c_j·ν_{l_j})·ν` per update;
//! - underflow (subnormal results, or results flushed to zero): at most `τ = 2⁻¹²⁶` per operation,
//!   `(2d + 8·(t + 1))·τ` plus `c_j·d·τ` per update (the Gram entries' own).
//!
//! The per-row bound is enlarged by 1 % to cover its own rounding.

use crate::error::{Error, Result};
use rayon::prelude::*;
use std::sync::Mutex;

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
    /// `W Wᵀ` `[n, n]` from a float32 product, rounded to bfloat16 (bit patterns).
    Bf16(&'a [u16]),
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

/// Scratch of one row: the score estimates, their per-entry bounds, each block's largest `s + e` and
/// `s`, and a row of zeros (the first pass's "update").
struct Row {
    s: Vec<f32>,
    e: Vec<f32>,
    block_max: Vec<f32>,
    block_top: Vec<f32>,
    zeros: Vec<f32>,
}

impl Row {
    fn new(n: usize) -> Row {
        Row {
            s: vec![0.0; n],
            e: vec![0.0; n],
            block_max: vec![0.0; n.div_ceil(BLOCK)],
            block_top: vec![0.0; n.div_ceil(BLOCK)],
            zeros: vec![0.0; n],
        }
    }
}

/// A row's outputs: its picks, their coefficients and its final residual.
struct RowOut<'a> {
    picks: &'a mut [i64],
    coef: &'a mut [f32],
    r: &'a mut [f32],
}

/// What [`pursue`] returns: `[rows, iterations]` picks (-1 where no score is positive, from then on)
/// and coefficients (0 there), the final residuals `[rows, d]`, and what the picks counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Picks {
    /// Row-major `[rows, iterations]`.
    pub index: Vec<i64>,
    /// Row-major `[rows, iterations]`: `c = dot(r, W_l)` of each pick.
    pub coef: Vec<f32>,
    /// Row-major `[rows, d]`: `r₀ − Σ_j c_j·W_{l_j}`, as updated pick by pick.
    pub residual: Vec<f32>,
    /// Picks made and exact scores computed.
    pub counts: Counts,
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
            Gram::Bf16(g) => square(g.len(), "gram")?,
            Gram::Exhaustive => {}
        }
        Ok(rows)
    }
}

/// The picks of every row and their coefficients and final residuals. Runs on the calling rayon
/// pool.
pub fn pursue(p: &Pursuit<'_>) -> Result<Picks> {
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
    let mut out = Picks {
        index: vec![-1; rows * k],
        coef: vec![0.0; rows * k],
        residual: p.residual.to_vec(),
        counts: Counts::default(),
    };
    if k == 0 {
        return Ok(out);
    }
    let setup = Setup {
        p,
        norms: &norms,
        nu,
    };
    out.counts = out
        .index
        .par_chunks_mut(k)
        .zip(out.coef.par_chunks_mut(k))
        .zip(out.residual.par_chunks_mut(d))
        .enumerate()
        .map_init(
            || Row::new(n),
            |row, (i, ((picks, coef), r))| pursue_row(&setup, row, i, RowOut { picks, coef, r }),
        )
        .try_reduce(Counts::default, |a, b| {
            Ok(Counts {
                picks: a.picks + b.picks,
                exact_scores: a.exact_scores + b.exact_scores,
            })
        })?;
    Ok(out)
}

/// The pursuit's outputs ([`Picks`]) and the gradients of a loss with respect to them, for
/// [`backward`]. C-contiguous float32 and int64 arrays.
#[derive(Debug, Clone, Copy)]
pub struct Gradients<'a> {
    /// `[n, d]`: the atoms `W`.
    pub atoms: &'a [f32],
    /// The number of atoms `n`.
    pub n: usize,
    /// The atoms' dimension `d`.
    pub d: usize,
    /// `[rows, k]`: the picks (-1: none).
    pub index: &'a [i64],
    /// `[rows, k]`: their coefficients.
    pub coef: &'a [f32],
    /// `[rows, d]`: the final residuals.
    pub residual: &'a [f32],
    /// `[rows, d]`: the loss's gradient with respect to the final residuals.
    pub grad_residual: &'a [f32],
    /// `[rows, k]`: the loss's gradient with respect to the coefficients (None: zero).
    pub grad_coef: Option<&'a [f32]>,
}

/// The gradients `(∂L/∂r₀ [rows, d], ∂L/∂W [n, d])` of a loss through the pursuit, for its picks held
/// fixed (they are chosen by comparisons: no gradient flows through the choice). Going back over pick
/// `j` (atom `a`, coefficient `c = r_j·a > 0`, `r_{j+1} = r_j − c·a`) with `g = ∂L/∂r_{j+1}`:
/// `∂L/∂c = ∂L/∂c_j − g·a`, `∂L/∂r_j = g + (∂L/∂c)·a` and `∂L/∂a += (∂L/∂c)·r_j − c·g`, where
/// `r_j = r_{j+1} + c·a` is recomputed from the final residual. The atoms' gradients are summed per
/// atom in row-major pick order, so the result does not depend on the thread count.
pub fn backward(g: &Gradients<'_>) -> Result<(Vec<f32>, Vec<f32>)> {
    let (n, d) = (g.n, g.d);
    if n == 0 || d == 0 || g.atoms.len() != n * d {
        return Err(Error::value(
            "atoms",
            format!("must be [{n}, {d}] with n, d ≥ 1"),
        ));
    }
    if !g.residual.len().is_multiple_of(d) || g.grad_residual.len() != g.residual.len() {
        return Err(Error::value(
            "grad_residual",
            format!("residual and its gradient must both be [rows, {d}]"),
        ));
    }
    let rows = g.residual.len() / d;
    if rows == 0 {
        return Ok((Vec::new(), vec![0.0; n * d]));
    }
    if g.index.len() != g.coef.len() || !g.index.len().is_multiple_of(rows) {
        return Err(Error::value(
            "index",
            format!("index and coef must both be [{rows}, k]"),
        ));
    }
    let k = g.index.len() / rows;
    if g.grad_coef.is_some_and(|gc| gc.len() != g.coef.len()) {
        return Err(Error::value("grad_coef", format!("must be [{rows}, {k}]")));
    }
    if let Some(&bad) = g.index.iter().find(|&&l| l < -1 || l >= n as i64) {
        return Err(Error::value(
            "index",
            format!("{bad} is not an atom (or -1) of {n}"),
        ));
    }
    let atom = |l: usize| &g.atoms[l * d..(l + 1) * d];
    // Per pick, the gradient of its atom (a buffer kept between calls up to KEEP values: at the 16k
    // shape it is 78 MB, whose first touch would cost as much as the pass itself); per row, the
    // gradient of its initial residual. Every entry a pick reads is written first.
    static PER_PICK: Mutex<Vec<f32>> = Mutex::new(Vec::new());
    const KEEP: usize = 1 << 26; // 256 MiB
    let mut buffer = PER_PICK.lock().unwrap_or_else(|e| e.into_inner());
    let per_pick = &mut *buffer;
    if per_pick.len() < rows * k * d {
        let what = "the gradient of every pick's atom";
        crate::memory::check("index", (rows * k * d) as f64 * 4.0, what)?;
        let more = rows * k * d - per_pick.len();
        per_pick.try_reserve_exact(more).map_err(|_| {
            Error::resource("index", format!("{what}: the system refused the memory"))
        })?;
        per_pick.resize(rows * k * d, 0.0);
    }
    let per_pick = &mut per_pick[..rows * k * d];
    let mut grad_r0 = g.grad_residual.to_vec();
    per_pick
        .par_chunks_mut((k * d).max(1))
        .zip(grad_r0.par_chunks_mut(d))
        .enumerate()
        .for_each(|(i, (out, grad))| {
            let mut r = g.residual[i * d..(i + 1) * d].to_vec();
            for j in (0..k).rev() {
                let Ok(l) = usize::try_from(g.index[i * k + j]) else {
                    continue;
                };
                let (a, c) = (atom(l), g.coef[i * k + j]);
                for (x, &w) in r.iter_mut().zip(a) {
                    *x += c * w;
                }
                let dc = g.grad_coef.map_or(0.0, |gc| gc[i * k + j]) - dot(grad, a);
                for ((o, &x), &y) in out[j * d..(j + 1) * d]
                    .iter_mut()
                    .zip(r.iter())
                    .zip(grad.iter())
                {
                    *o = dc * x - c * y;
                }
                for (y, &w) in grad.iter_mut().zip(a) {
                    *y += dc * w;
                }
            }
        });
    // Sum the picks' gradients per atom, in row-major pick order.
    let mut start = vec![0usize; n + 1];
    for &l in g.index.iter().filter(|&&l| l >= 0) {
        start[l as usize + 1] += 1;
    }
    for m in 0..n {
        start[m + 1] += start[m];
    }
    let mut order = vec![0usize; start[n]];
    let mut next = start.clone();
    for (p, &l) in g.index.iter().enumerate().filter(|(_, &l)| l >= 0) {
        order[next[l as usize]] = p;
        next[l as usize] += 1;
    }
    let mut grad_atoms = vec![0.0f32; n * d];
    grad_atoms
        .par_chunks_mut(d)
        .enumerate()
        .for_each(|(m, out)| {
            for &p in &order[start[m]..start[m + 1]] {
                for (o, &v) in out.iter_mut().zip(&per_pick[p * d..(p + 1) * d]) {
                    *o += v;
                }
            }
        });
    if buffer.len() > KEEP {
        *buffer = Vec::new();
    }
    Ok((grad_r0, grad_atoms))
}

struct Setup<'a, 'b> {
    p: &'a Pursuit<'b>,
    norms: &'a [f64],
    nu: f64,
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

/// A Gram matrix entry as the update pass reads it.
trait Entry: Copy {
    fn value(self) -> f32;
}

impl Entry for f32 {
    #[inline(always)]
    fn value(self) -> f32 {
        self
    }
}

impl Entry for u16 {
    #[inline(always)]
    fn value(self) -> f32 {
        bf16(self)
    }
}

/// Entries per block of the candidate search (each block's largest `s + e` is kept).
const BLOCK: usize = 64;

/// One pass over a row's estimates: `s ← s − c·g` and `e ← e + w·|g|` (`c = w = 0` leaves them as
/// they are), with each block's largest `s + e` in `block_max` and largest `s` in `block_top`
/// (`⌈n / BLOCK⌉` entries each). Returns the index of the first maximum of `s`. All values finite.
#[inline(always)]
fn scan<G: Entry>(
    s: &mut [f32],
    e: &mut [f32],
    g: &[G],
    c: f32,
    w: f32,
    block_max: &mut [f32],
    block_top: &mut [f32],
) -> usize {
    let blocks = s
        .chunks_mut(BLOCK)
        .zip(e.chunks_mut(BLOCK))
        .zip(g.chunks(BLOCK))
        .zip(block_max.iter_mut().zip(block_top.iter_mut()));
    for (((sb, eb), gb), (most, top)) in blocks {
        let mut reach = [f32::NEG_INFINITY; LANES];
        let mut high = [f32::NEG_INFINITY; LANES];
        if let (Ok(sb), Ok(eb), Ok(gb)) = (
            <&mut [f32; BLOCK]>::try_from(&mut *sb),
            <&mut [f32; BLOCK]>::try_from(&mut *eb),
            <&[G; BLOCK]>::try_from(gb),
        ) {
            for k in 0..BLOCK / LANES {
                for j in 0..LANES {
                    let m = k * LANES + j;
                    let v = gb[m].value();
                    let x = sb[m] - c * v;
                    let err = eb[m] + w * v.abs();
                    sb[m] = x;
                    eb[m] = err;
                    let y = x + err;
                    reach[j] = if y > reach[j] { y } else { reach[j] };
                    high[j] = if x > high[j] { x } else { high[j] };
                }
            }
        } else {
            for (m, (x, err)) in sb.iter_mut().zip(eb.iter_mut()).enumerate() {
                let v = gb[m].value();
                *x -= c * v;
                *err += w * v.abs();
                let y = *x + *err;
                reach[0] = if y > reach[0] { y } else { reach[0] };
                high[0] = if *x > high[0] { *x } else { high[0] };
            }
        }
        let fold = |v: [f32; LANES]| {
            v.into_iter()
                .fold(f32::NEG_INFINITY, |a, b| if b > a { b } else { a })
        };
        *most = fold(reach);
        *top = fold(high);
    }
    // The first block holding the maximum, then its first entry holding it.
    let (mut at, mut value) = (0, f32::NEG_INFINITY);
    for (b, &v) in block_top.iter().enumerate() {
        if v > value {
            (at, value) = (b, v);
        }
    }
    let start = at * BLOCK;
    start + s[start..].iter().position(|&x| x == value).unwrap_or(0)
}

#[inline(always)]
fn pursue_row(st: &Setup<'_, '_>, row: &mut Row, i: usize, out: RowOut<'_>) -> Result<Counts> {
    let p = st.p;
    let n = p.n;
    let Row {
        s,
        e,
        block_max,
        block_top,
        zeros,
    } = row;
    let RowOut { picks, coef, r } = out;
    s.copy_from_slice(&p.scores[i * n..(i + 1) * n]);
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
    let d = p.d;
    let atom = |l: usize| &p.atoms[l * d..(l + 1) * d];
    let gamma = |m: usize| m as f64 * U / (1.0 - m as f64 * U);
    let kappa = match p.gram {
        Gram::F32(_) => gamma(d),
        Gram::Bf16(_) => gamma(d) * (1.0 + U_BF16),
        Gram::Exhaustive => 0.0,
    };
    let per_entry = (U_BF16 / (1.0 - U_BF16) * 1.01) as f32;
    let mut counts = Counts::default();
    let (mut reach, mut accumulated) = (0.0f64, 0.0f64); // R_t − ‖r₀‖, the updates' terms
    let mut underflow = 0.0f64; // Σ_j c_j·d: the Gram entries' absolute errors, in units of τ
    let tiny = f32::MIN_POSITIVE as f64;
    let (mut last, mut last_coef) = (0usize, 0.0f32); // the previous pick, applied by the next scan
    for t in 0..picks.len() {
        let slack = match p.gram {
            Gram::Exhaustive => f32::INFINITY,
            _ => {
                let total = r0 + reach;
                let bound = st.nu * ((gamma(d) + 4.0 * U) * (r0 + total) + accumulated);
                let absolute = tiny * ((2 * d + 8 * (t + 1)) as f64 + underflow);
                ((bound + absolute) * 1.01) as f32
            }
        };
        // The best estimate's exact score, then every latent whose estimate may reach it.
        let first = match (t, p.gram) {
            (0, _) | (_, Gram::Exhaustive) => scan(s, e, zeros, 0.0, 0.0, block_max, block_top),
            (_, Gram::F32(g)) => {
                let row = &g[last * n..(last + 1) * n];
                scan(s, e, row, last_coef, 0.0, block_max, block_top)
            }
            (_, Gram::Bf16(g)) => {
                let row = &g[last * n..(last + 1) * n];
                let w = last_coef * per_entry;
                scan(s, e, row, last_coef, w, block_max, block_top)
            }
        };
        let (mut best, mut pick) = (dot(r, atom(first)), first);
        counts.exact_scores += 1;
        for (b, &top) in block_max.iter().enumerate() {
            if top + slack < best {
                continue;
            }
            for l in b * BLOCK..n.min((b + 1) * BLOCK) {
                if s[l] + e[l] + slack >= best && l != first {
                    let v = dot(r, atom(l));
                    counts.exact_scores += 1;
                    if v > best || (v == best && l < pick) {
                        best = v;
                        pick = l;
                    }
                }
            }
        }
        counts.picks += 1;
        if best <= 0.0 || best.is_nan() {
            // No positive score: nothing changes from here on (picks and coefficients stay -1 and 0).
            counts.picks += (picks.len() - t - 1) as u64;
            break;
        }
        picks[t] = pick as i64;
        let c = best;
        coef[t] = c;
        for (x, &w) in r.iter_mut().zip(atom(pick)) {
            *x -= c * w;
        }
        let step = c as f64 * st.norms[pick];
        accumulated += kappa * step + 4.0 * U * (r0 + reach + step);
        underflow += c as f64 * d as f64;
        reach += step;
        (last, last_coef) = (pick, c);
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

    #[test]
    fn every_gram_picks_what_computing_every_score_picks() {
        for (rows, n, d, seed) in [(40, 70, 24, 1), (25, 33, 17, 2), (30, 128, 64, 3)] {
            let (atoms, residual, scores) = problem(rows, n, d, seed);
            let g = gram_f32(&atoms, n, d);
            let rounded: Vec<u16> = g.iter().map(|&v| to_bf16(v)).collect();
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
            let reference = run(Gram::Exhaustive);
            let all = reference.counts;
            assert!(all.exact_scores <= all.picks * n as u64);
            for gram in [Gram::F32(&g), Gram::Bf16(&rounded)] {
                let out = run(gram);
                assert_eq!(out.index, reference.index, "{gram:?}");
                assert_eq!(out.coef, reference.coef, "{gram:?}");
                assert_eq!(out.residual, reference.residual, "{gram:?}");
                assert!(out.counts.exact_scores < all.exact_scores);
            }
        }
    }

    #[test]
    fn no_positive_score_picks_nothing() {
        let (n, d) = (3, 2);
        let atoms = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8];
        let residual = [-1.0, -1.0];
        let scores = [-1.0, -1.0, -1.4];
        let out = pursue(&Pursuit {
            scores: &scores,
            residual: &residual,
            atoms: &atoms,
            n,
            d,
            gram: Gram::Exhaustive,
            iterations: 3,
        })
        .unwrap();
        assert_eq!(out.index, [-1, -1, -1]);
        assert_eq!(out.coef, [0.0; 3]);
        assert_eq!(out.residual, residual);
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
