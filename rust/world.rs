//! Sampling a world: firing (independent or Gaussian copula), magnitudes and the hierarchy.
//!
//! Semantics are SAELens's (`ActivationGenerator` + hierarchy modifier), evaluated top-down:
//! * **top-level** features (no effective parent) are drawn every row: the hazard walk when
//!   independent, a bounded-hazard walk thinned to the exact `Φ̄(w)` under the copula;
//! * a firing feature gets `relu(mean + std·z)`; only values > 0 are active;
//! * a **group** (the feature children of one tree node) is evaluated only in rows where its gate
//!   (effective parent) is active — SAELens would zero it otherwise, so skipping it is the same
//!   distribution. Members fire, get magnitudes, are rescaled by `gate_value / gate_mean` if the
//!   node says so, and in an exclusive group one uniformly chosen active member survives: members
//!   are visited in a uniformly random order and the first active one is kept, so the others are
//!   never evaluated.
//!
//! Streams per row: `Factor` (ε), `Firing` (walk, thinning, member firing), `Magnitude`,
//! `Hierarchy` (visiting orders and winners of exclusive groups), each consumed in a fixed order.

use crate::copula::{survives_thinning, Copula, FactorColumns, RowBounds};
use crate::csr::{build_rows, Csr, RowSink};
use crate::error::{Error, Result};
use crate::groups::{Groups, Hierarchy};
use crate::hazard::{check_probabilities, merge_sorted, HazardTable};
use crate::independent::{check_magnitudes, PerFeature};
use crate::rng::{row_rng_from_base, stream_base, RowRng, Stream};
use crate::threads;
use rand::RngExt;
use rand_distr::{Distribution, Exp1, StandardNormal};

/// How the top-level features are drawn.
#[derive(Debug, Clone)]
enum Top {
    Independent(HazardTable),
    Copula {
        columns: FactorColumns,
        /// Top-level features with t = -inf (p = 1).
        certain: Vec<u32>,
    },
}

/// A world's sampler: probabilities, magnitudes, optional copula, optional hierarchy groups.
#[derive(Debug, Clone)]
pub struct WorldSampler {
    p: Vec<f64>,
    mean: PerFeature,
    std: PerFeature,
    copula: Option<Copula>,
    top: Top,
    hierarchy: Hierarchy,
}

thread_local! {
    /// Each thread's scratch, kept across tasks and calls: its buffers (~20 bytes per top-level
    /// feature, 110 KB for the 16k world) would otherwise be fresh pages for every task.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// A row's random streams (see [`crate::rng::Stream`]).
struct Streams {
    fire: RowRng,
    mag: RowRng,
    hier: RowRng,
}

/// Per-thread scratch reused across rows.
#[derive(Default)]
struct Scratch {
    /// The batch's factors `[rows, r]`, and the row of the batch being finished.
    eps: Vec<f32>,
    slot: usize,
    /// The batch's bounded hazards of the live top-level features, and their block totals.
    bounds: RowBounds,
    /// Visiting order of an exclusive group's members.
    order: Vec<usize>,
    /// Positions in `out` of an exclusive root group's active members.
    active: Vec<usize>,
    /// Candidates of the bounded-hazard walk with their rates, and those that survive thinning.
    candidates: Vec<(u32, f32)>,
    line: Vec<u32>,
    /// The row's top-level fires (ascending), then its entries: the active top-level features,
    /// then the group members in the order they joined.
    fires: Vec<u32>,
    out: Vec<(u32, f32)>,
}

impl WorldSampler {
    /// `p` [N] in [0, 1]; `copula` over all N features or None; `groups` may be empty.
    pub fn new(
        p: &[f64],
        mean: PerFeature,
        std: PerFeature,
        copula: Option<Copula>,
        groups: Groups,
    ) -> Result<Self> {
        let n = p.len();
        check_probabilities(p, "firing_probabilities")?;
        check_magnitudes(&mean, &std, n)?;
        let hierarchy = Hierarchy::new(groups, n)?;
        if let Some(q) = hierarchy.rescaling_gates().find(|&q| mean.get(q) <= 0.0) {
            return Err(Error::value(
                "mean_magnitudes",
                format!("must be > 0 for feature {q}, whose children scale by it"),
            ));
        }
        let is_member = hierarchy.gated_members();
        let top = match &copula {
            None => {
                let masked: Vec<f64> = p
                    .iter()
                    .zip(&is_member)
                    .map(|(&pi, &m)| if m { 0.0 } else { pi })
                    .collect();
                Top::Independent(HazardTable::new(&masked, "firing_probabilities")?)
            }
            Some(c) => {
                if c.threshold.len() != n {
                    return Err(Error::value(
                        "thresholds",
                        format!("must have shape ({n},)"),
                    ));
                }
                let top: Vec<u32> = (0..n as u32).filter(|&i| !is_member[i as usize]).collect();
                let certain = top
                    .iter()
                    .copied()
                    .filter(|&i| c.threshold[i as usize] == f32::NEG_INFINITY)
                    .collect();
                let live = top
                    .into_iter()
                    .filter(|&i| c.threshold[i as usize].is_finite())
                    .collect();
                Top::Copula {
                    columns: FactorColumns::new(c, live),
                    certain,
                }
            }
        };
        Ok(WorldSampler {
            p: p.to_vec(),
            mean,
            std,
            copula,
            top,
            hierarchy,
        })
    }

    /// Number of features N.
    pub fn num_features(&self) -> usize {
        self.p.len()
    }

    /// Rows `start .. start + n` of the stream seeded by `seed`, as CSR `[n, N]`.
    pub fn sample(&self, seed: u64, start: u64, n: u64, num_threads: Option<usize>) -> Result<Csr> {
        let bases = [
            Stream::Factor,
            Stream::Firing,
            Stream::Magnitude,
            Stream::Hierarchy,
        ]
        .map(|s| stream_base(seed, s));
        threads::install(num_threads, || {
            build_rows(start, n, |rows, sink| {
                SCRATCH.with_borrow_mut(|s| {
                    #[cfg(target_arch = "x86_64")]
                    if crate::kernel::kernel() >= crate::kernel::Kernel::Avx512 {
                        // SAFETY: the kernel in use runs here, and has rows_avx512's features.
                        return unsafe { self.rows_avx512(s, &bases, rows, sink) };
                    }
                    self.rows(s, &bases, rows, sink)
                })
            })
        })?
    }

    /// Samples `rows` into `sink`. Inlined into [`Self::rows_avx512`] too: wider vectors change
    /// speed only (Rust never fuses multiplies and adds, so every f32/f64 result is the same).
    #[inline(always)]
    fn rows(
        &self,
        s: &mut Scratch,
        bases: &[u64; 4],
        rows: std::ops::Range<u64>,
        sink: &mut RowSink,
    ) {
        let [factor, fire, mag, hier] = *bases;
        let at_once = FactorColumns::ROWS_AT_ONCE;
        for first in rows.clone().step_by(at_once) {
            let batch = first..(first + at_once as u64).min(rows.end);
            // The batch's factors, then their top-level bounds in one go.
            if let (Top::Copula { columns, .. }, Some(cop)) = (&self.top, &self.copula) {
                s.eps.clear();
                for r in batch.clone() {
                    let mut rng = row_rng_from_base(factor, r);
                    for _ in 0..cop.rank {
                        s.eps
                            .push(Distribution::<f64>::sample(&StandardNormal, &mut rng) as f32);
                    }
                }
                columns.bounds(&s.eps, &mut s.bounds);
            }
            for (slot, r) in batch.enumerate() {
                s.slot = slot;
                let rng = |base| row_rng_from_base(base, r);
                let streams = Streams {
                    fire: rng(fire),
                    mag: rng(mag),
                    hier: rng(hier),
                };
                self.row(streams, s, sink);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
    unsafe fn rows_avx512(
        &self,
        s: &mut Scratch,
        bases: &[u64; 4],
        rows: std::ops::Range<u64>,
        sink: &mut RowSink,
    ) {
        self.rows(s, bases, rows, sink)
    }

    /// Magnitude of a firing feature: `relu(mean + std·z)`.
    #[inline(always)]
    fn magnitude(&self, i: u32, rng: &mut RowRng) -> f32 {
        let z: f64 = StandardNormal.sample(rng);
        (self.mean.get(i) + self.std.get(i) * z as f32).max(0.0)
    }

    /// Evaluates group member c: whether it fires (Bernoulli(p) when independent; under the copula,
    /// given ε, `η > (t - u)/s` with a fresh normal η, exactly SAELens's test), then its magnitude
    /// times `scale`. Returns whether it is active, in which case it joins `out`.
    #[inline(always)]
    fn activate(&self, c: u32, scale: f32, s: &mut Scratch, rngs: &mut Streams) -> bool {
        let fires = match &self.copula {
            None => rngs.fire.random::<f64>() < self.p[c as usize],
            Some(cop) => {
                let u = cop.load(c, &s.eps[s.slot * cop.rank..(s.slot + 1) * cop.rank]);
                let eta: f64 = StandardNormal.sample(&mut rngs.fire);
                cop.fires(c as usize, u, eta)
            }
        };
        fires && self.join(c, self.magnitude(c, &mut rngs.mag) * scale, &mut s.out)
    }

    /// A firing feature with value v is active if v > 0: it joins `out`, and the factor rows of
    /// the groups it gates are asked for. Returns whether it is active.
    #[inline(always)]
    fn join(&self, c: u32, v: f32, out: &mut Vec<(u32, f32)>) -> bool {
        if v > 0.0 {
            self.prefetch_gated(c);
            out.push((c, v));
        }
        v > 0.0
    }

    #[inline(always)]
    fn row(&self, mut rngs: Streams, s: &mut Scratch, sink: &mut RowSink) {
        s.fires.clear();
        s.out.clear();
        match &self.top {
            Top::Independent(table) => table.walk(&mut rngs.fire, |i| s.fires.push(i)),
            Top::Copula { columns, certain } => {
                s.line.clear();
                self.walk_bounded(columns, s, &mut rngs.fire);
                s.line.sort_unstable();
                merge_sorted(&s.line, certain, |i| i, |i| s.fires.push(i));
            }
        }
        for &i in &s.fires {
            self.join(i, self.magnitude(i, &mut rngs.mag), &mut s.out);
        }
        // Exclusive groups without a gate: their members are top-level and already in `out`.
        for &g in self.hierarchy.free_exclusive() {
            s.active.clear();
            let members = self.hierarchy.groups().members(g as usize);
            s.active.extend(
                members
                    .iter()
                    .filter_map(|m| s.out.binary_search_by_key(m, |e| e.0).ok()),
            );
            if s.active.len() > 1 {
                let keep = rngs.hier.random_range(0..s.active.len());
                for (k, &pos) in s.active.iter().enumerate() {
                    if k != keep {
                        s.out[pos].1 = 0.0;
                    }
                }
            }
        }
        // Top-down: every active feature evaluates the groups it gates; survivors join the queue.
        let top = s.out.len();
        let mut next = 0;
        while next < s.out.len() {
            let (q, vq) = s.out[next];
            next += 1;
            if vq == 0.0 {
                continue;
            }
            let gate = self.hierarchy.gate(q);
            if !gate.listed {
                let scale = self.child_scale(gate.rescale, q, vq);
                let member = |k: usize| gate.first + k as u32;
                let len = gate.len as usize;
                self.evaluate_group(member, len, gate.exclusive, scale, s, &mut rngs);
                continue;
            }
            let groups = self.hierarchy.groups();
            for &g in self.hierarchy.gated_by(q) {
                let (g, members) = (g as usize, groups.members(g as usize));
                let scale = self.child_scale(groups.rescale[g], q, vq);
                let (member, len) = (|k: usize| members[k], members.len());
                self.evaluate_group(member, len, groups.exclusive[g], scale, s, &mut rngs);
            }
        }
        // Top-level entries are ascending; members joined in queue order (ascending too when
        // indices grow with depth, as in SAELens's breadth-first trees, which the sort sees in
        // one pass). Exclusive losers (value 0) are dropped here.
        s.out[top..].sort_unstable_by_key(|e| e.0);
        let (top, members) = s.out.split_at(top);
        merge_sorted(
            top,
            members,
            |e| e.0,
            |(i, v)| {
                if v > 0.0 {
                    sink.push(i, v)
                }
            },
        );
        sink.end_row();
    }

    /// Children scale by `gate value / gate mean` when rescaled (times 1 is exact otherwise).
    #[inline(always)]
    fn child_scale(&self, rescale: bool, q: u32, vq: f32) -> f32 {
        match rescale {
            true => vq / self.mean.get(q),
            false => 1.0,
        }
    }

    /// Evaluates a group of `len` members (`member(k)` is the k-th) under an active gate.
    #[inline(always)]
    fn evaluate_group(
        &self,
        member: impl Fn(usize) -> u32,
        len: usize,
        exclusive: bool,
        scale: f32,
        s: &mut Scratch,
        rngs: &mut Streams,
    ) {
        if exclusive {
            // The survivor is uniform among the active members: visit the members in a
            // uniformly random order (Fisher-Yates, drawn as we go) and keep the first
            // active one. Members after it are never evaluated.
            s.order.clear();
            s.order.extend(0..len);
            for k in 0..len {
                let pick = rngs.hier.random_range(k..len);
                s.order.swap(k, pick);
                if self.activate(member(s.order[k]), scale, s, rngs) {
                    break;
                }
            }
        } else {
            for k in 0..len {
                self.activate(member(k), scale, s, rngs);
            }
        }
    }

    /// Candidates from bounded hazards `λ̂_j >= -ln Φ(w_j)`, thinned to `Φ̄(w_j)` exactly.
    ///
    /// The line is cut into blocks (see [`FactorColumns`]), each walked as its own Poisson line
    /// (the process is independent on disjoint pieces): a block is skipped by its total unless the
    /// next point falls inside; then the walk starts at the part the point lands in, from the
    /// running sum at the part's start, and position j covers `[c_j - λ̂_j, c_j)`, `c_j` the running
    /// f64 sum of the block's rates (the kernel's sums, bit for bit). Candidates are thinned after
    /// the walk, once their factor rows (for the exact loads) are on their way to the cache.
    #[inline(always)]
    fn walk_bounded(&self, columns: &FactorColumns, s: &mut Scratch, rng: &mut RowRng) {
        let cop = self.copula.as_ref().expect("copula world");
        let row = s.bounds.row(s.slot);
        let blocks = row.num_blocks();
        s.candidates.clear();
        let mut x: f64 = Exp1.sample(rng);
        let mut b = 0;
        while b < blocks {
            let totals = row.totals_from(b);
            let skipped = skip_blocks(totals, &mut x);
            b += skipped;
            if skipped == totals.len() {
                continue;
            }
            let total = totals[skipped];
            let mut part = 0; // x < total: some part ends above x
            while row.part_end(b, part) <= x {
                part += 1;
            }
            let mut c = row.part_start(b, part);
            for j in row.positions(b, part) {
                let l = row.rate(j);
                c += l as f64;
                if x < c {
                    if let Some(i) = columns.feature(j) {
                        cop.prefetch(i);
                        s.candidates.push((i, l));
                    }
                    let gap: f64 = Exp1.sample(rng);
                    x = c + gap;
                    if x >= total {
                        break;
                    }
                }
            }
            x -= total;
            b += 1;
        }
        let eps = &s.eps[s.slot * cop.rank..(s.slot + 1) * cop.rank];
        for &(i, l) in &s.candidates {
            let w = cop.gap(i as usize, cop.load(i, eps));
            if survives_thinning(w, l, rng.random()) {
                s.line.push(i);
            }
        }
    }

    /// Asks the cache for the factor rows of the members of the groups that feature q gates.
    #[inline(always)]
    fn prefetch_gated(&self, q: u32) {
        if let Some(cop) = &self.copula {
            let gate = self.hierarchy.gate(q);
            if !gate.listed {
                cop.prefetch_rows(gate.first, gate.len);
                return;
            }
            for &g in self.hierarchy.gated_by(q) {
                self.hierarchy
                    .groups()
                    .members(g as usize)
                    .iter()
                    .for_each(|&c| cop.prefetch(c));
            }
        }
    }
}

/// Skips the leading blocks the walk's next point lies past (`x >= total`), subtracting each total
/// from x; returns how many. A loop of its own, so that x and the count stay in registers.
#[inline(never)]
fn skip_blocks(totals: &[f64], x: &mut f64) -> usize {
    let mut y = *x;
    let mut k = 0;
    while k < totals.len() && y >= totals[k] {
        y -= totals[k];
        k += 1;
    }
    *x = y;
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copula::normal_sf;

    /// A world over `groups` with a rank-5 copula, unit mean and 0.5 std magnitudes.
    fn world(p: &[f64], groups: Groups) -> WorldSampler {
        let n = p.len();
        let factor = (0..n * 5)
            .map(|x| ((x * 7919 % 997) as f32 / 997.0 - 0.5) * 0.4)
            .collect();
        let diag: Vec<f32> = (0..n).map(|i| 1.0 - 0.01 * (i % 7) as f32).collect();
        let threshold = p
            .iter()
            .map(|&q| {
                // Φ⁻¹(1 - q) by bisection on the survival function.
                let (mut lo, mut hi) = (-10.0f64, 10.0f64);
                for _ in 0..80 {
                    let mid = 0.5 * (lo + hi);
                    if normal_sf(mid) > q {
                        lo = mid
                    } else {
                        hi = mid
                    }
                }
                lo as f32
            })
            .collect();
        let copula = Copula::new(n, factor, &diag, threshold).unwrap();
        let std = PerFeature::Scalar(0.5);
        WorldSampler::new(p, PerFeature::Scalar(1.0), std, Some(copula), groups).unwrap()
    }

    /// Groups of four members, `(gate, first member)` each, every group a run.
    fn runs(specs: impl Iterator<Item = (i32, u32)>) -> Groups {
        let mut groups = Groups::default();
        groups.ptr.push(0);
        for (g, (gate, first)) in specs.enumerate() {
            groups.gate.push(gate);
            groups.exclusive.push(g % 2 == 0);
            groups.rescale.push(g % 3 == 0);
            groups.members.extend(first..first + 4);
            groups.ptr.push(groups.members.len());
        }
        groups
    }

    /// 700 features, 40 gated groups of 4 (half exclusive, a third rescaled), breadth-first like
    /// SAELens's trees: members' indices grow with depth.
    fn sampler() -> WorldSampler {
        let p: Vec<f64> = (0..700).map(|i| 0.3 / (1.0 + i as f64).sqrt()).collect();
        world(&p, runs((0..40).map(|g| (g, 100 + 4 * g as u32))))
    }

    #[test]
    fn wide_vector_rows_equal_portable_rows() {
        let s = sampler();
        let bases = [
            Stream::Factor,
            Stream::Firing,
            Stream::Magnitude,
            Stream::Hierarchy,
        ]
        .map(|st| stream_base(7, st));
        let portable = build_rows(0, 3000, |rows, sink| {
            s.rows(&mut Scratch::default(), &bases, rows, sink)
        })
        .unwrap();
        assert!(portable.values.len() > 3000, "too few entries to compare");
        assert_eq!(portable, s.sample(7, 0, 3000, Some(1)).unwrap());
        #[cfg(target_arch = "x86_64")]
        if crate::kernel::Kernel::detected() >= crate::kernel::Kernel::Avx512 {
            // SAFETY: the CPU has rows_avx512's features (checked above).
            let wide = build_rows(0, 3000, |rows, sink| unsafe {
                s.rows_avx512(&mut Scratch::default(), &bases, rows, sink)
            })
            .unwrap();
            assert_eq!(portable, wide);
        }
    }

    #[test]
    fn gate_records_equal_the_group_lists() {
        let s = sampler();
        let gates = (0..700).map(|q| s.hierarchy.gate(q));
        let runs = gates.filter(|g| g.len == 4 && !g.listed).count();
        assert_eq!(runs, 40, "every group of the test world is a run");
        let mut listed = s.clone();
        listed.hierarchy.list_every_gate();
        let rows = s.sample(11, 5, 3000, Some(1)).unwrap();
        assert!(rows.values.len() > 3000, "too few entries to compare");
        assert_eq!(rows, listed.sample(11, 5, 3000, Some(1)).unwrap());
    }

    #[test]
    fn rows_are_ascending_whatever_the_order_of_the_tree() {
        // Two levels whose members lie below their gates and fall from group to group, so the
        // queue meets them in descending runs.
        let mut p = vec![0.01; 700];
        let first = |g: u32| 396 - 4 * g;
        let top = (0..20).map(|g| (600 + g as i32, first(g)));
        let below = (0..20).map(|g| (first(g) as i32, 80 - 4 * g));
        let groups = runs(top.chain(below));
        for &i in groups.members.iter().chain(&[600]) {
            p[i as usize] = 0.5;
        }
        (601..620).for_each(|i| p[i] = 0.5);
        let rows = world(&p, groups).sample(3, 0, 2000, Some(1)).unwrap();
        let deep = rows.indices.iter().filter(|&&i| i < 80).count();
        assert!(deep > 2000, "too few second-level members ({deep})");
        for r in 0..rows.num_rows() {
            let cols = &rows.indices[rows.indptr[r] as usize..rows.indptr[r + 1] as usize];
            assert!(cols.windows(2).all(|w| w[0] < w[1]), "row {r}: {cols:?}");
        }
    }
}
