//! Shortest augmenting paths on the core: Dijkstra on reduced costs with f64 duals (Crouse's
//! update).

use super::{Core, Entry, View, NONE};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

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
pub(super) struct State {
    pub(super) u: Vec<f64>,
    pub(super) v: Vec<f64>,
    pub(super) col4row: Vec<usize>,
    row4col: Vec<usize>,
    dist: Vec<f64>,
    path: Vec<usize>,
    settled: Vec<bool>,
    touched: Vec<usize>,
    scanned: Vec<usize>,
    heap: BinaryHeap<Node>,
    /// Set by a solve from scratch (which resets `v`).
    pub(super) fresh: bool,
}

impl State {
    pub(super) fn new(n: usize, m: usize) -> Self {
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
            fresh: true,
        }
    }

    /// Solves the core from scratch: [`State::greedy`], then one shortest augmenting path per free
    /// row. Err(rows of a search that found no free column).
    pub(super) fn solve<T: Entry>(
        &mut self,
        view: &View<'_, T>,
        core: &Core,
    ) -> std::result::Result<(), Vec<usize>> {
        self.greedy(view, core);
        let free = (0..view.n).filter(|&i| self.col4row[i] == NONE).collect();
        for i in self.reduce_rows(view, core, free) {
            self.augment(view, core, i)?;
        }
        Ok(())
    }

    /// Greedy start: u = row minimum over the core, v = 0, each row takes its cheapest column if
    /// that is still free.
    fn greedy<T: Entry>(&mut self, view: &View<'_, T>, core: &Core) {
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
    }

    /// Augmenting row reduction (Jonker & Volgenant), two passes over the free rows: a free row
    /// takes the column of its cheapest reduced entry `c - v` and lowers that column's `v` to its
    /// second cheapest, so the previous owner (freed) no longer prefers it; an owner freed by a
    /// strict price change bids at once, else in the next pass. Columns once taken stay taken, so
    /// free columns keep `v = 0`; every assigned row keeps its column as its cheapest reduced
    /// entry, and `u` is set accordingly (free rows: their cheapest reduced entry). Returns the
    /// rows left free.
    fn reduce_rows<T: Entry>(
        &mut self,
        view: &View<'_, T>,
        core: &Core,
        mut free: Vec<usize>,
    ) -> Vec<usize> {
        // Bids per pass are capped: float price wars can otherwise creep.
        let cap = 4 * view.n + 16;
        for _ in 0..2 {
            let mut next = Vec::new();
            let mut bids = 0;
            let mut stack: Vec<usize> = free.iter().rev().copied().collect();
            while let Some(i) = stack.pop() {
                bids += 1;
                if bids > cap {
                    next.push(i);
                    next.append(&mut stack);
                    break;
                }
                let (mut h1, mut j1, mut h2, mut j2) = (f64::INFINITY, NONE, f64::INFINITY, NONE);
                core.for_each(view, i, |j, c| {
                    let h = c - self.v[j];
                    if h < h2 {
                        if h < h1 {
                            (h2, j2, h1, j1) = (h1, j1, h, j);
                        } else {
                            (h2, j2) = (h, j);
                        }
                    }
                });
                if j1 == NONE || h2 == f64::INFINITY {
                    // One candidate at most: left to the shortest paths.
                    next.push(i);
                    continue;
                }
                let strict = h1 < h2;
                if strict {
                    self.v[j1] -= h2 - h1;
                } else if self.row4col[j1] != NONE {
                    j1 = j2;
                }
                let owner = std::mem::replace(&mut self.row4col[j1], i);
                self.col4row[i] = j1;
                self.u[i] = h2;
                if owner != NONE {
                    self.col4row[owner] = NONE;
                    if strict {
                        stack.push(owner);
                    } else {
                        next.push(owner);
                    }
                }
            }
            free = next;
        }
        for &i in &free {
            let mut best = f64::INFINITY;
            core.for_each(view, i, |j, c| best = best.min(c - self.v[j]));
            self.u[i] = if best < f64::INFINITY { best } else { 0.0 };
        }
        free
    }

    /// Warm re-solve after `rows` gained arcs: they are unassigned and go through
    /// [`State::reduce_rows`] (which also lowers the `u` of those it leaves free to their cheapest
    /// reduced entry, so every reduced cost is >= 0 again), then shortest paths. Err when a
    /// search gets stuck or when a column left free has `v != 0` (the rectangular optimality
    /// condition); the caller then solves from scratch.
    pub(super) fn repair<T: Entry>(
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
        }
        for i in self.reduce_rows(view, core, rows.to_vec()) {
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
        for &r in &self.scanned[1..] {
            self.u[r] += min_val - self.dist[self.col4row[r]];
        }
        for &j in &self.touched {
            if self.settled[j] {
                self.v[j] -= min_val - self.dist[j];
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
