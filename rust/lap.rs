//! Exact linear sum assignment on large dense matrices: a certified sparse core.
//!
//! The problem is oriented so that the working rows are the smaller side (n ≤ m); every working
//! row is assigned, columns at most once. One parallel pass keeps each row's and each column's
//! [`K`] cheapest entries (the *core*). Shortest augmenting paths (Dijkstra on reduced costs with
//! f64 duals, as in Crouse's algorithm) solve the core after a greedy start. Then one parallel pass
//! over the full matrix checks dual feasibility, `c_ij - u_i - v_j >= 0` for every entry (with
//! `v <= 0` and `v = 0` on free columns, which the algorithm keeps): if it holds, LP duality proves
//! the core's optimum optimal for the whole matrix. Otherwise each row's most violating entries
//! join the core, those rows are unassigned and re-augmented from the current duals (a cold solve
//! when that would leave a free column with `v != 0`), and the check repeats. A search that finds
//! no augmenting path makes its rows dense (all their entries); if they already were, the matrix is
//! infeasible (Hall's condition fails on the rows of that search).

use crate::error::{Error, Result};
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Matrix entries the solver reads (costs are used in f64).
pub trait Entry: Copy + Send + Sync + 'static {
    fn to_f64(self) -> f64;
}

impl Entry for f32 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Entry for f64 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// Cheapest entries kept per row and per column for the first core.
const K: usize = 32;
/// Violating entries a row gains per certificate round before it goes dense.
const ADD_PER_ROUND: usize = 128;
/// Fewest matrix rows per parallel task.
const CHUNK: usize = 64;
const NONE: usize = usize::MAX;

/// An optimal assignment: `rows[k]` (ascending) is matched to `cols[k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub rows: Vec<usize>,
    pub cols: Vec<usize>,
    /// Certificate rounds used (1 when the first core was already optimal).
    pub rounds: usize,
}

/// A `[rows, cols]` row-major matrix seen as the working problem (n ≤ m, minimisation).
struct View<'a, T> {
    data: &'a [T],
    cols: usize,
    transposed: bool,
    sign: f64,
    n: usize,
    m: usize,
}

impl<T: Entry> View<'_, T> {
    #[inline(always)]
    fn cost(&self, i: usize, j: usize) -> f64 {
        let x = if self.transposed {
            self.data[j * self.cols + i]
        } else {
            self.data[i * self.cols + j]
        };
        self.sign * x.to_f64()
    }

    /// Working (row, column) of matrix entry (a, b).
    #[inline(always)]
    fn working(&self, a: usize, b: usize) -> (usize, usize) {
        if self.transposed {
            (b, a)
        } else {
            (a, b)
        }
    }
}

/// For each of several lines, a superset of the K cheapest (cost, index) pairs seen: offers below
/// the line's threshold are buffered; a full buffer (2K) is cut to its K cheapest by selection, and
/// the threshold becomes their maximum. Amortised O(1) per offer.
#[derive(Clone)]
struct TopK {
    buf: Vec<(f64, u32)>,
    len: Vec<u32>,
    /// Per line: offers at or above it cannot be among the K cheapest.
    worst: Vec<f64>,
}

impl TopK {
    fn new(lines: usize) -> Self {
        TopK {
            buf: vec![(0.0, 0); lines * 2 * K],
            len: vec![0; lines],
            worst: vec![f64::INFINITY; lines],
        }
    }

    #[inline(always)]
    fn offer(&mut self, line: usize, c: f64, idx: u32) {
        if c >= self.worst[line] {
            return;
        }
        let n = self.len[line] as usize;
        let slots = &mut self.buf[line * 2 * K..(line + 1) * 2 * K];
        slots[n] = (c, idx);
        if n + 1 < 2 * K {
            self.len[line] += 1;
            return;
        }
        slots.select_nth_unstable_by(K - 1, |x, y| x.0.total_cmp(&y.0));
        self.worst[line] = slots[..K].iter().fold(f64::NEG_INFINITY, |m, e| m.max(e.0));
        self.len[line] = K as u32;
    }

    /// Kept (cost, index) pairs of `line` (at least its K cheapest offers, in no order).
    fn line(&self, line: usize) -> impl Iterator<Item = (f64, u32)> + '_ {
        self.buf[line * 2 * K..line * 2 * K + self.len[line] as usize]
            .iter()
            .copied()
    }
}

/// Matrix rows per parallel task: one task per thread (each restarts its thresholds), at least
/// [`CHUNK`].
fn rows_per_task(rows: usize) -> usize {
    rows.div_ceil(rayon::current_num_threads()).max(CHUNK)
}

/// Solves `min Σ c` (or max with `maximize`) over one-to-one assignments of the smaller side of a
/// `[rows, cols]` row-major matrix. NaN (and -inf when minimising, +inf when maximising) is an
/// error; +inf (-inf) entries are forbidden pairs. Runs on the default thread pool (`threads.rs`).
pub fn solve<T: Entry>(data: &[T], rows: usize, cols: usize, maximize: bool) -> Result<Assignment> {
    crate::threads::install(None, || solve_in_pool(data, rows, cols, maximize))?
}

fn solve_in_pool<T: Entry>(
    data: &[T],
    rows: usize,
    cols: usize,
    maximize: bool,
) -> Result<Assignment> {
    if rows.checked_mul(cols) != Some(data.len()) {
        return Err(Error::value(
            "cost_matrix",
            format!("{} values cannot form a {rows} x {cols} matrix", data.len()),
        ));
    }
    if rows == 0 || cols == 0 {
        return Ok(Assignment {
            rows: vec![],
            cols: vec![],
            rounds: 0,
        });
    }
    let transposed = rows > cols;
    let view = View {
        data,
        cols,
        transposed,
        sign: if maximize { -1.0 } else { 1.0 },
        n: rows.min(cols),
        m: rows.max(cols),
    };
    let mut core = Core {
        arcs: first_core(&view, rows)?,
        dense: vec![false; view.n],
    };
    let mut state = State::new(view.n, view.m);
    let mut rounds = 0;
    // Rows that gained arcs in the last round (None: solve from scratch).
    let mut changed: Option<Vec<usize>> = None;
    loop {
        rounds += 1;
        let warm = match changed.take() {
            Some(rows) => state.repair(&view, &core, &rows).is_ok(),
            None => false,
        };
        if !warm {
            while let Err(stuck) = state.solve(&view, &core) {
                if stuck.iter().all(|&i| core.dense[i]) {
                    return Err(Error::value("cost_matrix", "cost matrix is infeasible"));
                }
                stuck.into_iter().for_each(|i| core.dense[i] = true);
            }
        }
        let violations = certificate(&view, rows, &state, &core);
        state.u_changed.fill(false);
        state.v_changed.fill(false);
        state.fresh = false;
        if violations.is_empty() {
            break;
        }
        let mut by_row: Vec<Vec<(f64, u32, f64)>> = vec![Vec::new(); view.n];
        for (i, j, c, rc) in violations {
            by_row[i].push((rc, j, c));
        }
        let mut gained = Vec::new();
        for (i, mut v) in by_row.into_iter().enumerate() {
            if !v.is_empty() {
                v.sort_by(|a, b| a.0.total_cmp(&b.0));
                v.truncate(ADD_PER_ROUND);
                core.arcs[i].extend(v.into_iter().map(|(_, j, c)| (j, c)));
                core.arcs[i].sort_by_key(|e| e.0);
                gained.push(i);
            }
        }
        changed = Some(gained);
    }
    let mut pairs: Vec<(usize, usize)> = (0..view.n)
        .map(|i| {
            let j = state.col4row[i];
            if transposed {
                (j, i)
            } else {
                (i, j)
            }
        })
        .collect();
    pairs.sort_unstable();
    Ok(Assignment {
        rows: pairs.iter().map(|p| p.0).collect(),
        cols: pairs.iter().map(|p| p.1).collect(),
        rounds,
    })
}

/// The candidate entries of each working row: `arcs[i]` sorted by column, or every entry of the
/// row when `dense[i]`.
struct Core {
    arcs: Vec<Vec<(u32, f64)>>,
    dense: Vec<bool>,
}

impl Core {
    /// Calls `f(j, c)` for each finite candidate entry of working row `i`.
    #[inline(always)]
    fn for_each<T: Entry>(&self, view: &View<'_, T>, i: usize, mut f: impl FnMut(usize, f64)) {
        if self.dense[i] {
            for j in 0..view.m {
                let c = view.cost(i, j);
                if c < f64::INFINITY {
                    f(j, c);
                }
            }
        } else {
            self.arcs[i].iter().for_each(|&(j, c)| f(j as usize, c));
        }
    }

    /// Whether entry (i, j) is a candidate.
    fn contains(&self, i: usize, j: usize) -> bool {
        self.dense[i]
            || self.arcs[i]
                .binary_search_by_key(&(j as u32), |e| e.0)
                .is_ok()
    }
}

/// Validates every entry and returns each working row's core, sorted by column: (a superset of) its
/// K cheapest entries and those of the working columns that list it among their K cheapest.
fn first_core<T: Entry>(view: &View<'_, T>, rows: usize) -> Result<Vec<Vec<(u32, f64)>>> {
    let cols = view.cols;
    let step = rows_per_task(rows);
    // Per task: its matrix rows' top-K and its top-K per matrix column.
    let parts: Vec<Result<(TopK, TopK)>> = (0..rows.div_ceil(step))
        .into_par_iter()
        .map(|q| {
            let (lo, hi) = (q * step, ((q + 1) * step).min(rows));
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked above).
                return unsafe { scan_avx2(view, lo, hi) };
            }
            scan(view, lo, hi)
        })
        .collect();
    let mut core: Vec<Vec<(u32, f64)>> = vec![Vec::new(); view.n];
    let mut col_top = TopK::new(cols);
    for (q, part) in parts.into_iter().enumerate() {
        let (row_top, chunk_cols) = part?;
        for da in 0..((q + 1) * step).min(rows) - q * step {
            for (c, b) in row_top.line(da) {
                let (i, j) = view.working(q * step + da, b as usize);
                core[i].push((j as u32, c));
            }
        }
        for b in 0..cols {
            for (c, a) in chunk_cols.line(b) {
                col_top.offer(b, c, a);
            }
        }
    }
    for b in 0..cols {
        for (c, a) in col_top.line(b) {
            let (i, j) = view.working(a as usize, b);
            core[i].push((j as u32, c));
        }
    }
    for arcs in &mut core {
        arcs.retain(|e| e.1 < f64::INFINITY);
        arcs.sort_by_key(|e| e.0);
        arcs.dedup_by_key(|e| e.0);
    }
    Ok(core)
}

/// Entries of a block that need a closer look: lanes that may enter a top-K or are invalid.
const LANES: usize = 16;

/// First-core pass over matrix rows `lo..hi`: their top-K, and the top-K of every matrix column
/// among them. Blocks of [`LANES`] entries are screened against contiguous thresholds first.
#[inline(always)]
fn scan<T: Entry>(view: &View<'_, T>, lo: usize, hi: usize) -> Result<(TopK, TopK)> {
    let cols = view.cols;
    let mut row_top = TopK::new(hi - lo);
    let mut col_top = TopK::new(cols);
    for a in lo..hi {
        let line = &view.data[a * cols..(a + 1) * cols];
        for (q, block) in line.chunks(LANES).enumerate() {
            let worst = &col_top.worst[q * LANES..q * LANES + block.len()];
            let row_worst = row_top.worst[a - lo];
            let mut look = 0u32;
            for (k, (&x, &w)) in block.iter().zip(worst).enumerate() {
                let c = view.sign * x.to_f64();
                // Also set for NaN and -inf (rejected below).
                let pass = (c >= w) & (c >= row_worst) & (c > f64::NEG_INFINITY);
                look |= (!pass as u32) << k;
            }
            while look != 0 {
                let k = look.trailing_zeros() as usize;
                look &= look - 1;
                let (b, c) = (q * LANES + k, view.sign * block[k].to_f64());
                if c.is_nan() || c == f64::NEG_INFINITY {
                    return Err(Error::value(
                        "cost_matrix",
                        "matrix contains invalid numeric entries",
                    ));
                }
                col_top.offer(b, c, a as u32);
                row_top.offer(a - lo, c, b as u32);
            }
        }
    }
    Ok((row_top, col_top))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2<T: Entry>(view: &View<'_, T>, lo: usize, hi: usize) -> Result<(TopK, TopK)> {
    scan(view, lo, hi)
}

/// Entries `(i, j, c, reduced cost)` outside the core (and outside dense rows) whose reduced cost
/// is negative beyond rounding.
fn certificate<T: Entry>(
    view: &View<'_, T>,
    rows: usize,
    s: &State,
    core: &Core,
) -> Vec<(usize, u32, f64, f64)> {
    let step = rows_per_task(rows);
    (0..rows.div_ceil(step))
        .into_par_iter()
        .flat_map_iter(|q| {
            let (lo, hi) = (q * step, ((q + 1) * step).min(rows));
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked above).
                return unsafe { check_avx2(view, lo, hi, s, core) };
            }
            check(view, lo, hi, s, core)
        })
        .collect()
}

/// [`certificate`] over matrix rows `lo..hi`: blocks of [`LANES`] entries are screened for a
/// negative reduced cost first (the matrix row's dual is fixed, the other side is contiguous).
#[inline(always)]
fn check<T: Entry>(
    view: &View<'_, T>,
    lo: usize,
    hi: usize,
    s: &State,
    core: &Core,
) -> Vec<(usize, u32, f64, f64)> {
    let cols = view.cols;
    // Per matrix row and column: its dual and whether it changed since the last check (an entry
    // whose two duals are unchanged passed then, or is in the core, or in a dense row).
    let (line_dual, col_dual, line_changed, col_changed) = if view.transposed {
        (&s.v, &s.u, &s.v_changed, &s.u_changed)
    } else {
        (&s.u, &s.v, &s.u_changed, &s.v_changed)
    };
    let changed_cols: Vec<usize> = (0..cols).filter(|&b| s.fresh || col_changed[b]).collect();
    let mut found = Vec::new();
    let mut visit = |a: usize, b: usize, x: T| {
        let (i, j) = view.working(a, b);
        let c = view.sign * x.to_f64();
        let rc = c - s.u[i] - s.v[j];
        let tol = 4.0 * f64::EPSILON * (c.abs() + s.u[i].abs() + s.v[j].abs());
        if rc < -tol && !core.contains(i, j) {
            found.push((i, j as u32, c, rc));
        }
    };
    for a in lo..hi {
        if !view.transposed && core.dense[a] {
            continue;
        }
        let line = &view.data[a * cols..(a + 1) * cols];
        let da = line_dual[a];
        if !(s.fresh || line_changed[a]) {
            for &b in &changed_cols {
                if view.sign * line[b].to_f64() - da - col_dual[b] < 0.0 {
                    visit(a, b, line[b]);
                }
            }
            continue;
        }
        for (q, block) in line.chunks(LANES).enumerate() {
            let duals = &col_dual[q * LANES..q * LANES + block.len()];
            let mut look = 0u32;
            for (k, (&x, &db)) in block.iter().zip(duals).enumerate() {
                let rc = view.sign * x.to_f64() - da - db;
                look |= ((rc < 0.0) as u32) << k;
            }
            while look != 0 {
                let k = look.trailing_zeros() as usize;
                look &= look - 1;
                visit(a, q * LANES + k, block[k]);
            }
        }
    }
    found
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn check_avx2<T: Entry>(
    view: &View<'_, T>,
    lo: usize,
    hi: usize,
    s: &State,
    core: &Core,
) -> Vec<(usize, u32, f64, f64)> {
    check(view, lo, hi, s, core)
}

/// Dijkstra heap entry: smallest distance first, then lowest column.
#[derive(PartialEq)]
struct Node(f64, usize);

impl Eq for Node {}

impl Ord for Node {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(other.1.cmp(&self.1))
    }
}

impl PartialOrd for Node {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Duals, matching and the scratch of the shortest-path searches.
struct State {
    u: Vec<f64>,
    v: Vec<f64>,
    col4row: Vec<usize>,
    row4col: Vec<usize>,
    dist: Vec<f64>,
    path: Vec<usize>,
    settled: Vec<bool>,
    touched: Vec<usize>,
    scanned: Vec<usize>,
    heap: BinaryHeap<Node>,
    /// Duals changed since the last certificate (`fresh`: all of them).
    u_changed: Vec<bool>,
    v_changed: Vec<bool>,
    fresh: bool,
}

impl State {
    fn new(n: usize, m: usize) -> Self {
        State {
            u: vec![0.0; n],
            v: vec![0.0; m],
            col4row: vec![NONE; n],
            row4col: vec![NONE; m],
            dist: vec![f64::INFINITY; m],
            path: vec![NONE; m],
            settled: vec![false; m],
            touched: Vec::new(),
            scanned: Vec::new(),
            heap: BinaryHeap::new(),
            u_changed: vec![false; n],
            v_changed: vec![false; m],
            fresh: true,
        }
    }

    /// Solves the core from scratch: greedy start (u = row minimum, v = 0), then one shortest
    /// augmenting path per free row. Err(rows of a search that found no free column).
    fn solve<T: Entry>(
        &mut self,
        view: &View<'_, T>,
        core: &Core,
    ) -> std::result::Result<(), Vec<usize>> {
        self.fresh = true;
        self.v.fill(0.0);
        self.col4row.fill(NONE);
        self.row4col.fill(NONE);
        for i in 0..view.n {
            let (mut best, mut arg) = (f64::INFINITY, NONE);
            core.for_each(view, i, |j, c| {
                if c < best {
                    (best, arg) = (c, j);
                }
            });
            self.u[i] = if arg == NONE { 0.0 } else { best };
            if arg != NONE && self.row4col[arg] == NONE {
                self.row4col[arg] = i;
                self.col4row[i] = arg;
            }
        }
        for i in 0..view.n {
            if self.col4row[i] == NONE {
                self.augment(view, core, i)?;
            }
        }
        Ok(())
    }

    /// Warm re-solve after `rows` gained arcs: they are unassigned and their `u` lowered to their
    /// cheapest reduced entry (so every reduced cost is >= 0 again), then re-augmented. Err when a
    /// search gets stuck or when a column left free has `v != 0` (the rectangular optimality
    /// condition); the caller then solves from scratch.
    fn repair<T: Entry>(
        &mut self,
        view: &View<'_, T>,
        core: &Core,
        rows: &[usize],
    ) -> std::result::Result<(), ()> {
        for &i in rows {
            let j = std::mem::replace(&mut self.col4row[i], NONE);
            if j != NONE {
                self.row4col[j] = NONE;
            }
            let mut best = f64::INFINITY;
            core.for_each(view, i, |j, c| best = best.min(c - self.v[j]));
            self.u[i] = best;
            self.u_changed[i] = true;
        }
        for &i in rows {
            self.augment(view, core, i).map_err(|_| ())?;
        }
        let free_ok = (0..view.m).all(|j| self.row4col[j] != NONE || self.v[j] == 0.0);
        if free_ok {
            Ok(())
        } else {
            Err(())
        }
    }

    /// One shortest augmenting path from free row `start` (Crouse's update of the duals).
    fn augment<T: Entry>(
        &mut self,
        view: &View<'_, T>,
        core: &Core,
        start: usize,
    ) -> std::result::Result<(), Vec<usize>> {
        for &j in &self.touched {
            self.dist[j] = f64::INFINITY;
            self.settled[j] = false;
        }
        self.touched.clear();
        self.scanned.clear();
        self.heap.clear();
        let mut min_val = 0.0f64;
        let mut i = start;
        let sink = loop {
            self.scanned.push(i);
            let ui = self.u[i];
            core.for_each(view, i, |j, c| {
                if self.settled[j] {
                    return;
                }
                let r = min_val + c - ui - self.v[j];
                if r < self.dist[j] {
                    if self.dist[j] == f64::INFINITY {
                        self.touched.push(j);
                    }
                    self.dist[j] = r;
                    self.path[j] = i;
                    self.heap.push(Node(r, j));
                }
            });
            let j = loop {
                match self.heap.pop() {
                    None => return Err(std::mem::take(&mut self.scanned)),
                    Some(Node(d, j)) if !self.settled[j] && d == self.dist[j] => break j,
                    Some(_) => {}
                }
            };
            self.settled[j] = true;
            min_val = self.dist[j];
            if self.row4col[j] == NONE {
                break j;
            }
            i = self.row4col[j];
        };
        self.u[start] += min_val;
        self.u_changed[start] = true;
        for &r in &self.scanned[1..] {
            self.u[r] += min_val - self.dist[self.col4row[r]];
            self.u_changed[r] = true;
        }
        for &j in &self.touched {
            if self.settled[j] {
                self.v[j] -= min_val - self.dist[j];
                self.v_changed[j] = true;
            }
        }
        let mut j = sink;
        loop {
            let r = self.path[j];
            self.row4col[j] = r;
            let prev = std::mem::replace(&mut self.col4row[r], j);
            if r == start {
                break;
            }
            j = prev;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exhaustive optimum of a small matrix (rows ≤ cols) by trying every injection.
    fn brute(c: &[f64], rows: usize, cols: usize) -> f64 {
        fn go(c: &[f64], cols: usize, i: usize, rows: usize, used: &mut Vec<bool>) -> f64 {
            if i == rows {
                return 0.0;
            }
            let mut best = f64::INFINITY;
            for j in 0..cols {
                if !used[j] && c[i * cols + j] < f64::INFINITY {
                    used[j] = true;
                    best = best.min(c[i * cols + j] + go(c, cols, i + 1, rows, used));
                    used[j] = false;
                }
            }
            best
        }
        go(c, cols, 0, rows, &mut vec![false; cols])
    }

    fn total(c: &[f64], cols: usize, a: &Assignment) -> f64 {
        a.rows
            .iter()
            .zip(&a.cols)
            .map(|(&i, &j)| c[i * cols + j])
            .sum()
    }

    #[test]
    fn matches_brute_force_on_small_matrices() {
        let mut seed = 1u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as f64 / (1u64 << 31) as f64
        };
        for trial in 0..300 {
            let (rows, cols) = (1 + trial % 5, 1 + (trial / 5) % 6);
            let ties = trial % 3 == 0;
            let c: Vec<f64> = (0..rows * cols)
                .map(|_| {
                    let x = next();
                    if ties {
                        (x * 3.0).floor()
                    } else {
                        x
                    }
                })
                .collect();
            let a = solve(&c, rows, cols, false).unwrap();
            assert_eq!(a.rows.len(), rows.min(cols));
            assert!(a.rows.windows(2).all(|w| w[0] < w[1]));
            let mut seen = std::collections::HashSet::new();
            assert!(a.cols.iter().all(|&j| seen.insert(j)));
            let (t, b) = if rows <= cols {
                (total(&c, cols, &a), brute(&c, rows, cols))
            } else {
                let ct: Vec<f64> = (0..cols * rows)
                    .map(|k| c[(k % rows) * cols + k / rows])
                    .collect();
                (total(&c, cols, &a), brute(&ct, cols, rows))
            };
            assert!((t - b).abs() < 1e-12, "trial {trial}: {t} vs {b}");
        }
    }

    #[test]
    fn optimum_far_outside_every_core() {
        // c_ij = -(i+1)(j+1): by the rearrangement inequality the identity is the unique optimum,
        // yet (i, i) ranks n-1-i in its row and its column: the first core misses most of it.
        let n = 300usize;
        let c: Vec<f64> = (0..n * n)
            .map(|k| -((((k / n) + 1) * ((k % n) + 1)) as f64))
            .collect();
        let a = solve(&c, n, n, false).unwrap();
        assert!(a.rounds >= 2, "rounds = {}", a.rounds);
        assert_eq!(a.cols, (0..n).collect::<Vec<_>>());
        // Tall and wide versions: the n largest indices pair up in order.
        let (r, m) = (120usize, 300usize);
        let wide: Vec<f64> = (0..r * m)
            .map(|k| -((((k / m) + 1) * ((k % m) + 1)) as f64))
            .collect();
        let a = solve(&wide, r, m, false).unwrap();
        assert_eq!(a.cols, (m - r..m).collect::<Vec<_>>());
    }

    #[test]
    fn infeasible_and_invalid_entries_are_errors() {
        let inf = f64::INFINITY;
        assert!(solve(&[inf, inf, 1.0, 2.0], 2, 2, false).is_err());
        assert!(solve(&[1.0, f64::NAN], 1, 2, false).is_err());
        assert!(solve(&[1.0, -inf], 1, 2, false).is_err());
        assert!(solve(&[1.0, inf], 1, 2, true).is_err());
        assert_eq!(solve(&[inf, 1.0], 1, 2, false).unwrap().cols, vec![1]);
        assert!(solve::<f64>(&[], 0, 3, false).unwrap().rows.is_empty());
    }
}
