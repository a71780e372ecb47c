//! The certified-core iteration, apart from where the matrix entries come from: solve the core
//! (warm after the first round), name the rows the certificate must check, take the violations
//! found there into the core, repeat until none are found.

use super::passes::{lower_bound, rows_to_check, set_bounds, Violation};
use super::{Arcs, Assignment, Core, Entry, State, View};

/// Violating entries a row gains per certificate round (its most violating ones).
const ADD_PER_ROUND: usize = 128;

pub(super) struct Rounds {
    pub(super) core: Core,
    pub(super) state: State,
    /// Per working row: a lower bound on c - v over its entries outside the core.
    bound: Vec<f64>,
    /// Per working row: no entry outside the first core costs less.
    floor: Vec<f64>,
    /// Rows that gained arcs in the last round (None: solve from scratch).
    changed: Option<Vec<usize>>,
    /// Certificate rounds taken.
    rounds: usize,
}

impl Rounds {
    pub(super) fn new(n: usize, m: usize, arcs: Arcs, floor: Vec<f64>) -> Self {
        Rounds {
            core: Core {
                arcs,
                dense: vec![false; n],
            },
            state: State::new(n, m),
            bound: vec![f64::NEG_INFINITY; n],
            floor,
            changed: None,
            rounds: 0,
        }
    }

    /// Solves the core (a warm repair of the rows that changed in the last round, else from
    /// scratch) and returns the working rows the certificate must check, ascending (none: the
    /// core's optimum is optimal). Err(rows of a search from scratch that found no augmenting
    /// path): more of their entries must join the core before the next call.
    pub(super) fn solve<T: Entry>(
        &mut self,
        view: &View<'_, T>,
    ) -> std::result::Result<Vec<usize>, Vec<usize>> {
        let warm = match self.changed.take() {
            Some(rows) => self.state.repair(view, &self.core, &rows).is_ok(),
            None => false,
        };
        if !warm {
            self.state.solve(view, &self.core)?;
        }
        if self.state.fresh {
            // A cold solve reset v: no bound holds.
            self.bound.fill(f64::NEG_INFINITY);
            self.state.fresh = false;
        }
        // c - v >= floor - max v outside the first core, and stays so while v only decreases.
        let v_max = self
            .state
            .v
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        for (b, &f) in self.bound.iter_mut().zip(&self.floor) {
            *b = b.max(lower_bound(f - v_max));
        }
        Ok(rows_to_check(&self.state, &self.core, &self.bound))
    }

    /// Takes a certificate round over `rows` (the smallest `fl(c - v)` each saw outside the core,
    /// `mins`, and the violations found): true when there were none, so that the core's optimum
    /// is optimal for the whole matrix; else each row's most violating entries join the core.
    pub(super) fn certify<T: Entry>(
        &mut self,
        rows: &[usize],
        mins: &[T],
        violations: Vec<Violation>,
    ) -> bool {
        self.rounds += 1;
        set_bounds(&mut self.bound, rows, mins);
        if violations.is_empty() {
            return true;
        }
        let mut by_row: Vec<Vec<(f64, u32, f64)>> = vec![Vec::new(); self.core.arcs.len()];
        for (i, j, c, rc) in violations {
            by_row[i].push((rc, j, c));
        }
        let mut gained = Vec::new();
        for (i, mut v) in by_row.into_iter().enumerate() {
            if !v.is_empty() {
                v.sort_by(|a, b| a.0.total_cmp(&b.0));
                v.truncate(ADD_PER_ROUND);
                self.core.arcs[i].extend(v.into_iter().map(|(_, j, c)| (j, c)));
                self.core.arcs[i].sort_by_key(|e| e.0);
                gained.push(i);
            }
        }
        self.changed = Some(gained);
        false
    }

    /// The assignment found, in matrix coordinates (rows ascending).
    pub(super) fn assignment(&self, transposed: bool) -> Assignment {
        let mut pairs: Vec<(usize, usize)> = self
            .state
            .col4row
            .iter()
            .enumerate()
            .map(|(i, &j)| if transposed { (j, i) } else { (i, j) })
            .collect();
        pairs.sort_unstable();
        Assignment {
            rows: pairs.iter().map(|p| p.0).collect(),
            cols: pairs.iter().map(|p| p.1).collect(),
            rounds: self.rounds,
        }
    }

    /// The cost of working row `i`'s assigned entry, as the core holds it.
    pub(super) fn assigned_cost(&self, i: usize) -> Option<f64> {
        let j = self.state.col4row[i] as u32;
        let arcs = &self.core.arcs[i];
        arcs.binary_search_by_key(&j, |e| e.0)
            .ok()
            .map(|k| arcs[k].1)
    }
}
