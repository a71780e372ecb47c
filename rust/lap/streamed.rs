//! The certified core on a matrix that is never stored: the caller computes its entries in blocks
//! of whole rows, every row once for the first core ([`Streamed::add_rows`]), then the rows each
//! step names ([`Streamed::next_rows`], [`Streamed::supply`]): the rows a certificate round checks,
//! or rows whose search got stuck, which then join the core whole (and are never asked for again:
//! no entry of theirs is outside the core). The iteration is [`super::solve`]'s, so the optimum is
//! the stored matrix's; under ties either optimum may come out, since the first core's kept
//! supersets depend on how the rows were split into blocks.

use super::passes::{avx2, check_rows, CoreBuilder, Violation};
use super::rounds::Rounds;
use super::{Assignment, View};
use crate::error::{Error, Result};
use rayon::prelude::*;

/// What the rows asked for are for.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Purpose {
    /// A certificate round.
    Check,
    /// Rows whose search found no augmenting path: all their entries join the core.
    Whole,
}

/// An assignment of the rows of a `[rows, cols]` float32 matrix (rows ≤ cols) to distinct columns,
/// built from blocks of rows.
pub struct Streamed {
    cols: usize,
    sign: f64,
    builder: Option<CoreBuilder<f32>>,
    rows: usize,
    rounds: Option<Rounds>,
    /// The rows asked for, how many of them were supplied, and why.
    asked: Vec<usize>,
    supplied: usize,
    purpose: Purpose,
    found: Vec<Violation>,
    mins: Vec<f32>,
    /// Per row: every finite entry is in the core (supplied whole).
    whole: Vec<bool>,
    done: bool,
}

impl Streamed {
    /// A problem of `rows` ≤ `cols` (the smaller side as rows), minimising (maximising with
    /// `maximize`) the sum over the assigned entries.
    pub fn new(rows: usize, cols: usize, maximize: bool) -> Result<Self> {
        if rows > cols {
            return Err(Error::value(
                "rows",
                format!(
                    "must not exceed cols (stream the smaller side as rows), got {rows} > {cols}"
                ),
            ));
        }
        if cols > u32::MAX as usize {
            return Err(Error::value("cols", "more than 2^32 - 1 columns"));
        }
        Ok(Streamed {
            cols,
            sign: if maximize { -1.0 } else { 1.0 },
            builder: Some(CoreBuilder::new(cols)),
            rows,
            rounds: None,
            asked: Vec::new(),
            supplied: 0,
            purpose: Purpose::Check,
            found: Vec::new(),
            mins: Vec::new(),
            whole: vec![false; rows],
            done: false,
        })
    }

    /// The working problem; `data` holds the rows at hand (or none).
    fn view<'a>(&self, data: &'a [f32]) -> View<'a, f32> {
        View {
            data,
            cols: self.cols,
            transposed: false,
            sign: self.sign,
            n: self.rows,
            m: self.cols,
        }
    }

    /// The number of rows a block of `len` entries holds.
    fn block_rows(&self, len: usize, name: &'static str) -> Result<usize> {
        if self.cols == 0 || !len.is_multiple_of(self.cols) {
            return Err(Error::value(
                name,
                format!("{len} entries are not whole rows of {} columns", self.cols),
            ));
        }
        Ok(len / self.cols)
    }

    /// The first core's pass: the next rows (from row 0 on, in order), row-major.
    pub fn add_rows(&mut self, block: &[f32]) -> Result<()> {
        let k = self.block_rows(block.len(), "block")?;
        let view = self.view(block);
        let builder = self
            .builder
            .as_mut()
            .ok_or_else(|| Error::value("block", "every row was added already"))?;
        if builder.rows() + k > self.rows {
            return Err(Error::value(
                "block",
                format!(
                    "{} rows given, the matrix has {}",
                    builder.rows() + k,
                    self.rows
                ),
            ));
        }
        crate::threads::install(None, || builder.add(&view, k))?
    }

    /// The rows whose entries the solver needs next, in the order [`Streamed::supply`] takes them;
    /// empty once the assignment is optimal. Call after every row was added, and again after each
    /// request was supplied in full.
    pub fn next_rows(&mut self) -> Result<&[usize]> {
        if let Some(builder) = self.builder.take() {
            if builder.rows() < self.rows {
                let added = builder.rows();
                self.builder = Some(builder);
                return Err(Error::value(
                    "block",
                    format!("only {added} of {} rows were added", self.rows),
                ));
            }
            let (arcs, floor) = builder.finish(&self.view(&[]));
            self.rounds = Some(Rounds::new(self.rows, self.cols, arcs, floor));
            self.asked.clear();
        }
        if self.supplied < self.asked.len() {
            return Err(Error::value(
                "block",
                format!(
                    "{} of the {} rows asked for were supplied",
                    self.supplied,
                    self.asked.len()
                ),
            ));
        }
        let view = self.view(&[]);
        let rounds = self.rounds.as_mut().expect("rounds follow the first core");
        if !self.asked.is_empty() && self.purpose == Purpose::Check {
            let found = std::mem::take(&mut self.found);
            self.done = rounds.certify(&self.asked, &self.mins, found);
        }
        self.asked.clear();
        self.mins.clear();
        self.supplied = 0;
        if self.done {
            return Ok(&self.asked);
        }
        match rounds.solve(&view) {
            Ok(rows) => {
                // A whole row has no entry outside the core to check.
                let rows: Vec<usize> = rows.into_iter().filter(|&i| !self.whole[i]).collect();
                if rows.is_empty() {
                    self.done = rounds.certify::<f32>(&[], &[], Vec::new());
                }
                self.asked = rows;
                self.purpose = Purpose::Check;
            }
            Err(stuck) => {
                // Rows already whole cannot gain entries: if all are, Hall's condition fails.
                let rows: Vec<usize> = stuck.into_iter().filter(|&i| !self.whole[i]).collect();
                if rows.is_empty() {
                    return Err(Error::value("cost_matrix", "cost matrix is infeasible"));
                }
                self.asked = rows;
                self.purpose = Purpose::Whole;
            }
        }
        Ok(&self.asked)
    }

    /// Entries of the next rows asked for (row-major, whole rows, in the order asked).
    pub fn supply(&mut self, block: &[f32]) -> Result<()> {
        let k = self.block_rows(block.len(), "block")?;
        if self.supplied + k > self.asked.len() {
            return Err(Error::value(
                "block",
                format!(
                    "{} rows supplied, {} were asked for",
                    self.supplied + k,
                    self.asked.len()
                ),
            ));
        }
        let cols = self.cols;
        let negate = self.sign < 0.0;
        let invalid = |x: f32| {
            x.is_nan()
                || (if negate {
                    x == f32::INFINITY
                } else {
                    x == f32::NEG_INFINITY
                })
        };
        if crate::threads::install(None, || block.par_iter().any(|&x| invalid(x)))? {
            return Err(Error::value(
                "block",
                "matrix contains invalid numeric entries",
            ));
        }
        let rows = &self.asked[self.supplied..self.supplied + k];
        let view = self.view(block);
        let Some(rounds) = self.rounds.as_mut() else {
            return Err(Error::value(
                "block",
                "no rows were asked for yet: call next_rows",
            ));
        };
        match self.purpose {
            Purpose::Check => {
                let simd = avx2();
                let line = |q: usize| &block[q * cols..(q + 1) * cols];
                let (found, mins) = crate::threads::install(None, || {
                    check_rows(&view, &rounds.state, &rounds.core, rows, line, simd)
                })?;
                self.found.extend(found);
                self.mins.extend(mins);
            }
            Purpose::Whole => {
                for (q, &i) in rows.iter().enumerate() {
                    self.whole[i] = true;
                    rounds.core.arcs[i] = block[q * cols..(q + 1) * cols]
                        .iter()
                        .enumerate()
                        .map(|(j, &x)| (j as u32, self.sign * f64::from(x)))
                        .filter(|e| e.1 < f64::INFINITY)
                        .collect();
                }
            }
        }
        self.supplied += k;
        Ok(())
    }

    /// The optimal assignment and the entries it takes, once [`Streamed::next_rows`] came back
    /// empty.
    pub fn assignment(&self) -> Result<(Assignment, Vec<f64>)> {
        let rounds = match &self.rounds {
            Some(r) if self.done => r,
            _ => {
                return Err(Error::value(
                    "assignment",
                    "not solved yet: call next_rows until it is empty",
                ))
            }
        };
        let a = rounds.assignment(false);
        let values = a
            .rows
            .iter()
            .map(|&i| rounds.assigned_cost(i).map_or(f64::NAN, |c| self.sign * c))
            .collect();
        Ok((a, values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Solves `c` (`[rows, cols]`, rows ≤ cols) through [`Streamed`], `block` rows at a time.
    fn streamed(
        c: &[f32],
        rows: usize,
        cols: usize,
        maximize: bool,
        block: usize,
    ) -> Result<(Assignment, Vec<f64>, bool)> {
        let mut s = Streamed::new(rows, cols, maximize)?;
        let mut whole = false;
        for lo in (0..rows).step_by(block) {
            let hi = (lo + block).min(rows);
            s.add_rows(&c[lo * cols..hi * cols])?;
        }
        loop {
            let asked = s.next_rows()?.to_vec();
            if asked.is_empty() {
                let (a, values) = s.assignment()?;
                return Ok((a, values, whole));
            }
            whole |= s.purpose == Purpose::Whole;
            for chunk in asked.chunks(block) {
                let data: Vec<f32> = chunk
                    .iter()
                    .flat_map(|&i| c[i * cols..(i + 1) * cols].iter().copied())
                    .collect();
                s.supply(&data)?;
            }
        }
    }

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 40) as f32 / (1u64 << 24) as f32
    }

    #[test]
    fn same_assignment_as_the_stored_matrix() {
        let mut seed = 7u64;
        for trial in 0..60 {
            let rows = 1 + trial % 13 * 9;
            let cols = rows + trial % 5 * 17;
            let ties = trial % 4 == 0;
            let c: Vec<f32> = (0..rows * cols)
                .map(|_| {
                    if ties {
                        (lcg(&mut seed) * 4.0).floor()
                    } else {
                        lcg(&mut seed)
                    }
                })
                .collect();
            for maximize in [false, true] {
                let dense = super::super::solve(&c, rows, cols, maximize).unwrap();
                let total = |a: &Assignment| -> f64 {
                    a.rows
                        .iter()
                        .zip(&a.cols)
                        .map(|(&i, &j)| f64::from(c[i * cols + j]))
                        .sum()
                };
                for block in [1, 7, rows] {
                    let (a, values, _) = streamed(&c, rows, cols, maximize, block).unwrap();
                    // Ties leave several optima: then the same value; else the same pairs.
                    assert_eq!(total(&a), total(&dense), "trial {trial} block {block}");
                    if !ties {
                        assert_eq!(
                            (&a.rows, &a.cols),
                            (&dense.rows, &dense.cols),
                            "trial {trial}"
                        );
                    }
                    let want: Vec<f64> = a
                        .rows
                        .iter()
                        .zip(&a.cols)
                        .map(|(&i, &j)| f64::from(c[i * cols + j]))
                        .collect();
                    assert_eq!(values, want);
                }
            }
        }
    }

    /// 100 equal rows over 300 columns whose 40 cheapest are shared: the core (each row's 32
    /// cheapest, each column's 8) leaves Hall's condition unmet until rows join it whole.
    fn shared_cheap_columns() -> (usize, usize, Vec<f32>) {
        let (rows, cols) = (100usize, 300usize);
        let cost = |j: usize| if j < 40 { j as f32 } else { 1000.0 + j as f32 };
        (
            rows,
            cols,
            (0..rows * cols).map(|k| cost(k % cols)).collect(),
        )
    }

    #[test]
    fn optimum_far_outside_every_core_and_stuck_searches() {
        // c_ij = -(i+1)(j+1): the identity is optimal, far outside the first core (several rounds).
        let n = 200usize;
        let c: Vec<f32> = (0..n * n)
            .map(|k| -(((k / n + 1) * (k % n + 1)) as f32))
            .collect();
        let (a, _, _) = streamed(&c, n, n, false, 16).unwrap();
        assert!(a.rounds >= 2);
        assert_eq!(a.cols, (0..n).collect::<Vec<_>>());
        let (rows, cols, c) = shared_cheap_columns();
        let dense = super::super::solve(&c, rows, cols, false).unwrap();
        let (a, _, whole) = streamed(&c, rows, cols, false, 32).unwrap();
        assert!(whole, "no search got stuck");
        assert_eq!((a.rows, a.cols), (dense.rows, dense.cols));
    }

    #[test]
    fn infeasible_matrices_are_errors_not_endless_requests() {
        let inf = f32::INFINITY;
        for c in [[inf, inf, 1.0, 2.0], [inf, 1.0, inf, 2.0]] {
            assert!(super::super::solve(&c, 2, 2, false).is_err());
            let err = streamed(&c, 2, 2, false, 1).unwrap_err();
            assert!(err.to_string().contains("infeasible"), "{err}");
        }
        // Forbidden pairs that still leave an assignment: solved, rows asked for whole at most once.
        let c = [inf, 1.0, 2.0, 3.0, inf, 4.0];
        let (a, _, _) = streamed(&c, 2, 3, false, 1).unwrap();
        assert_eq!(a.cols, super::super::solve(&c, 2, 3, false).unwrap().cols);
    }

    #[test]
    fn whole_rows_are_never_asked_for_again() {
        let (rows, cols, c) = shared_cheap_columns();
        let mut s = Streamed::new(rows, cols, false).unwrap();
        s.add_rows(&c).unwrap();
        let mut seen = vec![false; rows];
        loop {
            let asked = s.next_rows().unwrap().to_vec();
            if asked.is_empty() {
                break;
            }
            for &i in &asked {
                assert!(!seen[i], "row {i} asked for after it was supplied whole");
                s.supply(&c[i * cols..(i + 1) * cols]).unwrap();
            }
            if s.purpose == Purpose::Whole {
                asked.iter().for_each(|&i| seen[i] = true);
            }
        }
        assert!(seen.iter().any(|&w| w));
    }

    #[test]
    fn misuse_and_bad_entries_are_errors() {
        assert!(Streamed::new(3, 2, false).is_err());
        let mut s = Streamed::new(2, 3, false).unwrap();
        assert!(s.add_rows(&[1.0; 4]).is_err()); // not whole rows
        assert!(s.next_rows().is_err()); // rows missing
        s.add_rows(&[1.0, 2.0, 3.0]).unwrap();
        assert!(s.add_rows(&[1.0; 6]).is_err()); // too many rows
        s.add_rows(&[3.0, 1.0, 2.0]).unwrap();
        assert!(s.assignment().is_err());
        let mut asked = s.next_rows().unwrap().to_vec();
        while !asked.is_empty() {
            assert!(s.supply(&[f32::NAN, 0.0, 0.0]).is_err());
            assert!(s.next_rows().is_err()); // not supplied
            for &i in &asked {
                s.supply(&[[1.0, 2.0, 3.0], [3.0, 1.0, 2.0]][i]).unwrap();
            }
            asked = s.next_rows().unwrap().to_vec();
        }
        assert_eq!(s.assignment().unwrap().0.cols, vec![0, 1]);
        let mut bad = Streamed::new(1, 2, true).unwrap();
        assert!(bad.add_rows(&[1.0, f32::INFINITY]).is_err());
    }
}
