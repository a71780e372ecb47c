//! Exact linear sum assignment on large dense matrices: a certified sparse core.
//!
//! The problem is oriented so that the working rows are the smaller side (n ≤ m); every working row
//! is assigned, columns at most once. One parallel pass keeps each matrix row's [`passes::ROW_K`]
//! and each matrix column's [`passes::COL_K`] cheapest entries (the *core*). The core is solved
//! with f64 duals by a greedy start, Jonker–Volgenant augmenting row reduction and shortest
//! augmenting paths (Dijkstra on reduced costs, Crouse's dual update). Then a parallel pass over
//! the matrix checks dual feasibility, `c_ij - u_i - v_j >= 0` for every entry (with `v <= 0` and
//! `v = 0` on free columns, which the algorithm keeps): if it holds, LP duality proves the core's
//! optimum optimal for the whole matrix. Otherwise each row's most violating entries join the core,
//! those rows are unassigned and re-solved from the current duals (a cold solve when that would
//! leave a free column with `v != 0`), and the check repeats; since warm re-solves only lower `v`,
//! a per-row lower bound on `c - v` outside the core spares every row whose `u` stays below it:
//! from the row's last check, or from the first pass (no entry outside the core costs less than the
//! row's floor, so `c - v >= floor - max v`), which spares most rows of the first check. A search
//! that finds no augmenting path makes its rows dense (all their entries); if they already were,
//! the matrix is infeasible (Hall's condition fails on the rows of that search).
//!
//! [`Streamed`] runs the same iteration on a matrix that is never stored: its caller computes
//! blocks of rows on demand (the first core from every row once, each certificate round from the
//! rows it names).

mod entry;
mod passes;
mod paths;
mod rounds;
mod streamed;

pub use entry::Entry;
pub use streamed::Streamed;

use crate::error::{Error, Result};
use passes::{check, CoreBuilder};
use paths::State;
use rounds::Rounds;

/// Per working row: (column, cost) entries.
type Arcs = Vec<Vec<(u32, f64)>>;
const NONE: usize = usize::MAX;

/// An optimal assignment: `rows[k]` (ascending) is matched to `cols[k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub rows: Vec<usize>,
    pub cols: Vec<usize>,
    /// Certificate rounds used (1 when the first core was already optimal).
    pub rounds: usize,
}

/// A `[rows, cols]` row-major matrix seen as the working problem (n ≤ m, minimisation); `data`
/// may also hold only some of its rows (a block), or none (when no entry is read through it).
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
    let mut builder = CoreBuilder::new(cols);
    builder.add(&view, rows)?;
    let (arcs, floor) = builder.finish(&view);
    let mut rounds = Rounds::new(view.n, view.m, arcs, floor);
    loop {
        let rows = match rounds.solve(&view) {
            Ok(rows) => rows,
            Err(stuck) => {
                // A search found no free column: its rows go dense, unless they already were.
                if stuck.iter().all(|&i| rounds.core.dense[i]) {
                    return Err(Error::value("cost_matrix", "cost matrix is infeasible"));
                }
                stuck.into_iter().for_each(|i| rounds.core.dense[i] = true);
                continue;
            }
        };
        let (violations, mins) = check(&view, &rounds.state, &rounds.core, &rows);
        if rounds.certify(&rows, &mins, violations) {
            return Ok(rounds.assignment(transposed));
        }
    }
}

/// The candidate entries of each working row: `arcs[i]` sorted by column, or every entry of the
/// row when `dense[i]`.
struct Core {
    arcs: Arcs,
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
