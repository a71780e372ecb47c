//! The two parallel passes over the whole matrix: the first core (each row's and each column's
//! cheapest entries) and the dual-feasibility certificate. Both screen blocks of [`LANES`] entries
//! against contiguous thresholds (AVX2 when the CPU has it) and look closer only at flagged lanes.

use super::{Arcs, Core, Entry, State, View};
use crate::error::{Error, Result};
use rayon::prelude::*;

/// Cheapest entries kept per matrix row for the first core.
pub(super) const ROW_K: usize = 32;
/// Cheapest entries kept per matrix column for the first core.
pub(super) const COL_K: usize = 8;
/// Lines of at most this many kept entries stay sorted instead of buffering.
const SORTED_K: usize = 8;
/// Fewest matrix rows per parallel task.
const CHUNK: usize = 64;
/// Entries screened at once.
pub(super) const LANES: usize = 16;

/// For each of several lines, a superset of the K cheapest (cost, index) pairs seen: offers below
/// the line's threshold are buffered; a full buffer (2K) is cut to its K cheapest by selection, and
/// the threshold becomes their maximum. Amortised O(1) per offer. Lines of K <= [`SORTED_K`] are
/// instead kept sorted by insertion (one cache line, an exact threshold). Every entry offered to a
/// line and not kept is at or above its final threshold.
struct TopK<T, const K: usize> {
    buf: Vec<(T, u32)>,
    len: Vec<u32>,
    /// Per line: offers at or above it cannot be among the K cheapest.
    worst: Vec<T>,
}

impl<T: Entry, const K: usize> TopK<T, K> {
    /// Slots per line: K when kept sorted, else 2K.
    const STRIDE: usize = if K <= SORTED_K { K } else { 2 * K };

    fn new(lines: usize) -> Self {
        TopK {
            buf: vec![(T::INFINITY, 0); lines * Self::STRIDE],
            len: vec![0; lines],
            // Padded to whole blocks of lanes.
            worst: vec![T::INFINITY; lines.next_multiple_of(LANES)],
        }
    }

    #[inline(always)]
    fn offer(&mut self, line: usize, c: T, idx: u32) {
        if c.partial_cmp(&self.worst[line]) != Some(std::cmp::Ordering::Less) {
            return;
        }
        let n = self.len[line] as usize;
        let slots = &mut self.buf[line * Self::STRIDE..(line + 1) * Self::STRIDE];
        if K <= SORTED_K {
            // Kept sorted: insertion drops the largest once K are kept, so the threshold is exact.
            let mut at = n.min(K - 1);
            while at > 0 && slots[at - 1].0 > c {
                slots[at] = slots[at - 1];
                at -= 1;
            }
            slots[at] = (c, idx);
            if n < K {
                self.len[line] += 1;
            }
            if n + 1 >= K {
                self.worst[line] = slots[K - 1].0;
            }
            return;
        }
        slots[n] = (c, idx);
        if n + 1 < 2 * K {
            self.len[line] += 1;
            return;
        }
        slots.select_nth_unstable_by(K - 1, |x, y| x.0.to_f64().total_cmp(&y.0.to_f64()));
        self.worst[line] = max_of(slots[..K].iter().map(|e| e.0));
        self.len[line] = K as u32;
    }

    /// Kept (cost, index) pairs of `line` (at least its K cheapest offers, in no order).
    fn line(&self, line: usize) -> impl Iterator<Item = (T, u32)> + '_ {
        self.buf[line * Self::STRIDE..line * Self::STRIDE + self.len[line] as usize]
            .iter()
            .copied()
    }
}

/// Matrix rows per parallel task: one task per thread (each restarts its thresholds), at least
/// [`CHUNK`].
fn rows_per_task(rows: usize) -> usize {
    rows.div_ceil(rayon::current_num_threads()).max(CHUNK)
}

/// Whether the AVX2 screens run (the kernel in use has AVX2).
pub(super) fn avx2() -> bool {
    crate::kernel::kernel() >= crate::kernel::Kernel::Avx2
}

/// The block of [`LANES`] entries of `line` at `at` and the bits of its real lanes: a short last
/// block is copied into `pad` after `+inf` padding.
#[inline(always)]
fn block_at<'a, T: Entry>(line: &'a [T], at: usize, pad: &'a mut [T; LANES]) -> (&'a [T], u32) {
    if at + LANES <= line.len() {
        (&line[at..at + LANES], u32::MAX >> (32 - LANES))
    } else {
        let rest = &line[at..];
        *pad = [T::INFINITY; LANES];
        pad[..rest.len()].copy_from_slice(rest);
        (&pad[..], (1 << rest.len()) - 1)
    }
}

/// [`Entry::screen_top`], with AVX2 when `SIMD` (only set in functions that enable AVX2).
#[inline(always)]
fn screen_top<T: Entry, const SIMD: bool>(x: &[T], worst: &[T], row: T, negate: bool) -> u32 {
    if SIMD {
        // SAFETY: SIMD is only set inside functions that require AVX2.
        unsafe { T::screen_top_avx2(x, worst, row, negate) }
    } else {
        T::screen_top(x, worst, row, negate)
    }
}

/// [`Entry::screen_rc`], with AVX2 when `SIMD` (only set in functions that enable AVX2).
#[inline(always)]
fn screen_rc<T: Entry, const SIMD: bool>(
    x: &[T],
    sub: &[T],
    cmp: &[T],
    negate: bool,
    acc: &mut [T],
) -> u32 {
    if SIMD {
        // SAFETY: SIMD is only set inside functions that require AVX2.
        unsafe { T::screen_rc_avx2(x, sub, cmp, negate, acc) }
    } else {
        T::screen_rc(x, sub, cmp, negate, acc)
    }
}

/// The first core, gathered from blocks of whole matrix rows (all of them at once for a stored
/// matrix, a few at a time when the entries are computed on the fly): each matrix row's kept
/// entries and floor, and each matrix column's [`COL_K`] cheapest entries so far and floor.
pub(super) struct CoreBuilder<T> {
    /// (matrix row, matrix column, cost) kept by the rows' top-K.
    by_rows: Vec<(usize, u32, T)>,
    /// Per matrix row added: no entry of the row left out costs less.
    row_floor: Vec<T>,
    /// `[cols, COL_K]`: each column's cheapest entries so far (row index u32::MAX: empty slot).
    col_best: Vec<(T, u32)>,
    col_floor: Vec<T>,
}

impl<T: Entry> CoreBuilder<T> {
    pub(super) fn new(cols: usize) -> Self {
        CoreBuilder {
            by_rows: Vec::new(),
            row_floor: Vec::new(),
            col_best: vec![(T::INFINITY, u32::MAX); cols * COL_K],
            col_floor: vec![T::INFINITY; cols],
        }
    }

    /// Matrix rows added so far.
    pub(super) fn rows(&self) -> usize {
        self.row_floor.len()
    }

    /// Validates and adds the next `rows` matrix rows, held by `block` (a view whose data are those
    /// rows only).
    pub(super) fn add(&mut self, block: &View<'_, T>, rows: usize) -> Result<()> {
        let offset = self.rows();
        if offset + rows > u32::MAX as usize {
            return Err(Error::value("cost_matrix", "more than 2^32 - 1 rows"));
        }
        let step = rows_per_task(rows);
        let simd = avx2();
        // Per task: its matrix rows' top-K and its top-K per matrix column.
        let parts: Vec<Result<(TopK<T, ROW_K>, TopK<T, COL_K>)>> = (0..rows.div_ceil(step))
            .into_par_iter()
            .map(|q| {
                let (lo, hi) = (q * step, ((q + 1) * step).min(rows));
                #[cfg(target_arch = "x86_64")]
                if simd {
                    // SAFETY: the CPU supports AVX2 (checked by `avx2`).
                    return unsafe { scan_avx2(block, lo, hi) };
                }
                let _ = simd;
                scan::<T, false>(block, lo, hi)
            })
            .collect();
        let parts = parts.into_iter().collect::<Result<Vec<_>>>()?;
        // Each matrix column's K cheapest over what it kept and all tasks, merged in parallel. An
        // entry left out was either at or above its task's threshold or cut here, at or above the
        // K-th cheapest.
        const COLS_PER_TASK: usize = 256;
        self.col_best
            .par_chunks_mut(COL_K * COLS_PER_TASK)
            .zip(self.col_floor.par_chunks_mut(COLS_PER_TASK))
            .enumerate()
            .for_each(|(q, (out, floors))| {
                let mut pool = Vec::new();
                for (db, (slots, floor)) in out.chunks_mut(COL_K).zip(floors).enumerate() {
                    let b = q * COLS_PER_TASK + db;
                    pool.clear();
                    pool.extend(slots.iter().filter(|e| e.1 != u32::MAX));
                    pool.extend(parts.iter().flat_map(|(_, col_top)| {
                        col_top.line(b).map(|(c, a)| (c, a + offset as u32))
                    }));
                    *floor = min_of(
                        std::iter::once(*floor)
                            .chain(parts.iter().map(|(_, col_top)| col_top.worst[b])),
                    );
                    if pool.len() > COL_K {
                        pool.select_nth_unstable_by(COL_K - 1, |x, y| {
                            x.0.to_f64().total_cmp(&y.0.to_f64())
                        });
                        *floor = min_of([*floor, pool[COL_K - 1].0]);
                    }
                    slots.iter_mut().zip(&pool).for_each(|(s, &e)| *s = e);
                }
            });
        for (q, (row_top, _)) in parts.iter().enumerate() {
            for da in 0..row_top.len.len() {
                let a = offset + q * step + da;
                self.row_floor.push(row_top.worst[da]);
                self.by_rows
                    .extend(row_top.line(da).map(|(c, b)| (a, b, c)));
            }
        }
        Ok(())
    }

    /// Each working row's core of `view`'s problem, sorted by column: (a superset of) its K
    /// cheapest entries and those of the working columns that list it among their K cheapest; and
    /// each working row's floor: no entry of the row outside its core costs less.
    pub(super) fn finish(self, view: &View<'_, T>) -> (Arcs, Vec<f64>) {
        let floor: Vec<f64> = if view.transposed {
            &self.col_floor
        } else {
            &self.row_floor
        }
        .iter()
        .map(|x| x.to_f64())
        .collect();
        // Every kept entry as (matrix row, matrix column, cost).
        let entries = || {
            let by_rows = self.by_rows.iter().map(|&(a, b, c)| (a, b as usize, c));
            let by_cols = self
                .col_best
                .chunks(COL_K)
                .enumerate()
                .flat_map(|(b, slots)| {
                    slots
                        .iter()
                        .filter(|e| e.1 != u32::MAX)
                        .map(move |&(c, a)| (a as usize, b, c))
                });
            by_rows.chain(by_cols)
        };
        // Sized first: each working row's vector is allocated once.
        let mut count = vec![0usize; view.n];
        entries().for_each(|(a, b, _)| count[view.working(a, b).0] += 1);
        let mut core: Arcs = count.par_iter().map(|&k| Vec::with_capacity(k)).collect();
        for (a, b, c) in entries() {
            let (i, j) = view.working(a, b);
            core[i].push((j as u32, c.to_f64()));
        }
        core.par_iter_mut().for_each(|arcs| {
            arcs.sort_unstable_by_key(|e| e.0);
            arcs.dedup_by_key(|e| e.0);
        });
        (core, floor)
    }
}

/// First-core pass over matrix rows `lo..hi`: their top-K, and the top-K of every matrix column
/// among them. A lane is flagged when it may enter either top-K or is invalid (NaN, `-inf` after
/// the sign); `+inf` (forbidden) entries never enter.
#[inline(always)]
fn scan<T: Entry, const SIMD: bool>(
    view: &View<'_, T>,
    lo: usize,
    hi: usize,
) -> Result<(TopK<T, ROW_K>, TopK<T, COL_K>)> {
    let cols = view.cols;
    let negate = view.sign < 0.0;
    let mut row_top = TopK::<T, ROW_K>::new(hi - lo);
    let mut col_top = TopK::<T, COL_K>::new(cols);
    let mut invalid = false;
    // A row's threshold starts from a guess, the largest kept entry of the last few rows; a row
    // that keeps fewer than ROW_K entries under its guess is scanned again from +inf.
    let mut recent = [T::INFINITY; 8];
    for a in lo..hi {
        let line = &view.data[a * cols..(a + 1) * cols];
        let r = a - lo;
        let guess = max_of(recent);
        row_top.worst[r] = guess;
        let mut pad = [T::INFINITY; LANES];
        for at in (0..cols).step_by(LANES) {
            let (block, mask) = block_at(line, at, &mut pad);
            let worst = &col_top.worst[at..at + LANES];
            let mut bits = mask & screen_top::<T, SIMD>(block, worst, row_top.worst[r], negate);
            while bits != 0 {
                let k = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let c = block[k].signed(negate);
                if c.to_f64().is_nan() || c.to_f64() == f64::NEG_INFINITY {
                    invalid = true;
                }
                col_top.offer(at + k, c, a as u32);
                row_top.offer(r, c, (at + k) as u32);
            }
        }
        if invalid {
            return Err(Error::value(
                "cost_matrix",
                "matrix contains invalid numeric entries",
            ));
        }
        if (row_top.len[r] as usize) < ROW_K && guess < T::INFINITY {
            row_top.len[r] = 0;
            row_top.worst[r] = T::INFINITY;
            let none = [T::NEG_INFINITY; LANES];
            for at in (0..cols).step_by(LANES) {
                let (block, mask) = block_at(line, at, &mut pad);
                let mut bits = mask & screen_top::<T, SIMD>(block, &none, row_top.worst[r], negate);
                while bits != 0 {
                    let k = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    row_top.offer(r, block[k].signed(negate), (at + k) as u32);
                }
            }
        }
        recent[r % recent.len()] = max_of(row_top.line(r).map(|(x, _)| x));
    }
    Ok((row_top, col_top))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2<T: Entry>(
    view: &View<'_, T>,
    lo: usize,
    hi: usize,
) -> Result<(TopK<T, ROW_K>, TopK<T, COL_K>)> {
    scan::<T, true>(view, lo, hi)
}

/// A violating entry: working row, working column, cost, reduced cost.
pub(super) type Violation = (usize, u32, f64, f64);

/// The working rows a certificate round must check: `bound[i]` is a lower bound on `c_ij - v_j`
/// over the entries outside the core of working row `i`, at the duals of the row's last check.
/// Between checks (warm repairs) `v` only decreases, so the bound stays valid, and a row with
/// `u_i < bound[i]` has no negative reduced cost outside the core: only the other rows (all of them
/// when `bound` is `-inf`) are checked ([`check`], [`check_rows`]), and their bounds renewed
/// ([`set_bounds`]).
pub(super) fn rows_to_check(s: &State, core: &Core, bound: &[f64]) -> Vec<usize> {
    (0..s.u.len())
        .filter(|&i| !core.dense[i] && s.u[i] >= bound[i])
        .collect()
}

/// Renews the bounds of the checked `rows` from the smallest `fl(c - v)` outside the core that
/// their check saw (`mins`).
pub(super) fn set_bounds<T: Entry>(bound: &mut [f64], rows: &[usize], mins: &[T]) {
    for (&i, &m) in rows.iter().zip(mins) {
        // fl(c - v↑) may exceed c - v by one rounding (relative 2^-24 in f32, or one subnormal
        // step), or overflow to +inf when c - v is near the top of T's range (or the row has no
        // finite entry outside the core): then T::MAX still bounds c - v from below.
        bound[i] = lower_bound(if m < T::INFINITY { m } else { T::MAX }.to_f64());
    }
}

/// A certificate round on a stored matrix: the entries `(i, j, c, reduced cost)` outside the core
/// of working `rows` whose reduced cost is negative beyond rounding, and the rows' `mins` (see
/// [`set_bounds`]).
pub(super) fn check<T: Entry>(
    view: &View<'_, T>,
    s: &State,
    core: &Core,
    rows: &[usize],
) -> (Vec<Violation>, Vec<T>) {
    if rows.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let simd = avx2();
    if view.transposed {
        check_columns(view, s, core, rows, simd)
    } else {
        let cols = view.cols;
        let line = |k: usize| &view.data[rows[k] * cols..(rows[k] + 1) * cols];
        check_rows(view, s, core, rows, line, simd)
    }
}

/// A value below `m` by more than the rounding of an f32 or f64 computation of it; `+inf` (an
/// overflow, or no finite entry) counts as `f64::MAX`.
pub(super) fn lower_bound(m: f64) -> f64 {
    let m = m.min(f64::MAX);
    m - m.abs() * f64::from(f32::EPSILON) - f64::from(f32::MIN_POSITIVE)
}

/// Exact look at a flagged entry: pushes it when its reduced cost is negative beyond rounding and
/// it is outside the core.
#[inline]
fn visit<T: Entry>(
    view: &View<'_, T>,
    s: &State,
    core: &Core,
    (a, b): (usize, usize),
    x: T,
    found: &mut Vec<Violation>,
) {
    let (i, j) = view.working(a, b);
    let c = view.sign * x.to_f64();
    let rc = c - s.u[i] - s.v[j];
    let tol = 4.0 * f64::EPSILON * (c.abs() + s.u[i].abs() + s.v[j].abs());
    if rc < -tol && !core.contains(i, j) {
        found.push((i, j as u32, c, rc));
    }
}

/// Screens matrix row `a` (flagged entries go to [`visit`]) and folds `r = fl(c - sub)` of its
/// entries outside `core_cols` (sorted matrix columns) into `acc`. When working rows are matrix
/// rows (`BY_COLUMN` false), `sub` holds the column duals and `cmp` and `acc` one value per lane;
/// when they are matrix columns, `sub` holds the line's dual per lane and `cmp` and `acc` one value
/// per column.
#[inline(always)]
fn check_line_in<T: Entry, const SIMD: bool, const BY_COLUMN: bool>(
    view: &View<'_, T>,
    s: &State,
    core: &Core,
    Line {
        a,
        data: line,
        sub,
        cmp,
    }: Line<'_, T>,
    core_cols: impl Iterator<Item = usize>,
    acc: &mut [T],
    found: &mut Vec<Violation>,
) {
    let cols = view.cols;
    let negate = view.sign < 0.0;
    let mut core_cols = core_cols.peekable();
    let mut pad = [T::INFINITY; LANES];
    for at in (0..cols).step_by(LANES) {
        let (block, mask) = block_at(line, at, &mut pad);
        let (sub, cmp, acc) = if BY_COLUMN {
            (sub, &cmp[at..], &mut acc[at..at + LANES])
        } else {
            (&sub[at..], cmp, &mut acc[..])
        };
        let mut in_core = 0u32;
        while let Some(b) = core_cols.next_if(|&b| b < at + LANES) {
            in_core |= 1 << (b - at);
        }
        // Core and padding lanes must not lower the bound: their accumulators are put back.
        let mut keep = in_core | (!mask & (u32::MAX >> (32 - LANES)));
        let mut bits = mask;
        if keep == 0 {
            bits &= screen_rc::<T, SIMD>(block, sub, cmp, negate, acc);
        } else {
            let saved: [T; LANES] = acc[..LANES].try_into().expect("LANES accumulators");
            bits &= screen_rc::<T, SIMD>(block, sub, cmp, negate, acc);
            while keep != 0 {
                let k = keep.trailing_zeros() as usize;
                keep &= keep - 1;
                acc[k] = saved[k];
            }
        }
        while bits != 0 {
            let k = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            visit(view, s, core, (a, at + k), block[k], found);
        }
    }
}

/// [`check`] when working rows are matrix rows: reads the checked rows only, row `rows[k]` from
/// `line(k)`.
pub(super) fn check_rows<'a, T: Entry>(
    view: &View<'_, T>,
    s: &State,
    core: &Core,
    rows: &[usize],
    line: impl Fn(usize) -> &'a [T] + Sync,
    simd: bool,
) -> (Vec<Violation>, Vec<T>) {
    // Duals rounded up: an entry with `c - u - v < 0` has `fl(c - v↑) <= u↑` (rounding is monotone
    // and `u↑` is representable), so the screen flags it. Padded to whole blocks.
    let mut sub: Vec<T> = s.v.iter().map(|&d| T::round_up(d)).collect();
    sub.resize(view.cols.next_multiple_of(LANES), T::INFINITY);
    let step = rows_per_task(rows.len());
    let parts: Vec<(Vec<Violation>, Vec<T>)> = rows
        .par_chunks(step)
        .enumerate()
        .map(|(q, chunk)| {
            let mut found = Vec::new();
            let mut mins = Vec::with_capacity(chunk.len());
            for (dk, &a) in chunk.iter().enumerate() {
                let cmp = [T::round_up(s.u[a]); LANES];
                let mut acc = [T::INFINITY; LANES];
                let core_cols = core.arcs[a].iter().map(|e| e.0 as usize);
                let line = Line {
                    a,
                    data: line(q * step + dk),
                    sub: &sub,
                    cmp: &cmp,
                };
                check_line::<T, false>(simd, view, s, core, line, core_cols, &mut acc, &mut found);
                mins.push(min_of(acc));
            }
            (found, mins)
        })
        .collect();
    let mut found = Vec::new();
    let mut mins = Vec::with_capacity(rows.len());
    for (f, m) in parts {
        found.extend(f);
        mins.extend(m);
    }
    (found, mins)
}

/// [`check`] when working rows are matrix columns: one pass over every matrix row, where the
/// columns not checked compare against `-inf` (never flagged) and are not read back.
fn check_columns<T: Entry>(
    view: &View<'_, T>,
    s: &State,
    core: &Core,
    rows: &[usize],
    simd: bool,
) -> (Vec<Violation>, Vec<T>) {
    let cols = view.cols;
    let mut cmp = vec![T::NEG_INFINITY; cols.next_multiple_of(LANES)];
    // The checked working rows' core entries, by matrix row (working column).
    let mut by_line: Vec<Vec<u32>> = vec![Vec::new(); view.m];
    for &i in rows {
        cmp[i] = T::round_up(s.u[i]);
        for &(j, _) in &core.arcs[i] {
            by_line[j as usize].push(i as u32);
        }
    }
    let step = rows_per_task(view.m);
    let parts: Vec<(Vec<Violation>, Vec<T>)> = (0..view.m.div_ceil(step))
        .into_par_iter()
        .map(|q| {
            let mut found = Vec::new();
            let mut acc = vec![T::INFINITY; cmp.len()];
            let (lo, hi) = (q * step, ((q + 1) * step).min(view.m));
            for (a, in_core) in by_line.iter().enumerate().take(hi).skip(lo) {
                let sub = [T::round_up(s.v[a]); LANES];
                let core_cols = in_core.iter().map(|&b| b as usize);
                let line = Line {
                    a,
                    data: &view.data[a * cols..(a + 1) * cols],
                    sub: &sub,
                    cmp: &cmp,
                };
                check_line::<T, true>(simd, view, s, core, line, core_cols, &mut acc, &mut found);
            }
            (found, acc)
        })
        .collect();
    let mut found = Vec::new();
    let mut acc = vec![T::INFINITY; cols];
    for (f, part) in parts {
        found.extend(f);
        for (m, x) in acc.iter_mut().zip(part) {
            if x < *m {
                *m = x;
            }
        }
    }
    (found, rows.iter().map(|&i| acc[i]).collect())
}

/// The smallest of `xs` (`+inf` when empty; NaN ignored).
fn min_of<T: Entry>(xs: impl IntoIterator<Item = T>) -> T {
    xs.into_iter()
        .fold(T::INFINITY, |m, x| if x < m { x } else { m })
}

/// The largest of `xs` (`-inf` when empty; NaN ignored).
fn max_of<T: Entry>(xs: impl IntoIterator<Item = T>) -> T {
    xs.into_iter()
        .fold(T::NEG_INFINITY, |m, x| if x > m { x } else { m })
}

/// A matrix row to check (its index and entries), with the `sub` and `cmp` operands of its screen
/// (see [`check_line_in`]).
struct Line<'a, T> {
    a: usize,
    data: &'a [T],
    sub: &'a [T],
    cmp: &'a [T],
}

/// [`check_line_in`], with AVX2 when `simd`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn check_line<T: Entry, const BY_COLUMN: bool>(
    simd: bool,
    view: &View<'_, T>,
    s: &State,
    core: &Core,
    line: Line<'_, T>,
    core_cols: impl Iterator<Item = usize>,
    acc: &mut [T],
    found: &mut Vec<Violation>,
) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: the caller checked AVX2 (`avx2`).
        return unsafe {
            check_line_avx2::<T, BY_COLUMN>(view, s, core, line, core_cols, acc, found)
        };
    }
    let _ = simd;
    check_line_in::<T, false, BY_COLUMN>(view, s, core, line, core_cols, acc, found)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn check_line_avx2<T: Entry, const BY_COLUMN: bool>(
    view: &View<'_, T>,
    s: &State,
    core: &Core,
    line: Line<'_, T>,
    core_cols: impl Iterator<Item = usize>,
    acc: &mut [T],
    found: &mut Vec<Violation>,
) {
    check_line_in::<T, true, BY_COLUMN>(view, s, core, line, core_cols, acc, found)
}
