//! Streaming evaluation reductions: L0s, dead latents, shrinkage, three explained-variance
//! definitions, classification counts for any list of (latent, feature) pairs and, for groups of
//! pairs of one feature, how often any latent of the group fires with it, accumulated batch by batch.
//!
//! Ground-truth activations and latents arrive as CSR (a dense batch of latents goes through
//! [`crate::csr::from_dense`] first), so work follows the non-zeros and no `[n, N]` array is needed. Counts are integers. Every floating-point sum is a
//! left fold over rows in stream order (per-dimension sums run in parallel over dimensions, per-row
//! values are computed in parallel and folded in order), so results are bit-identical for any batch
//! size or thread count.

use crate::csr::CsrRef;
use crate::error::{Error, Result};
use rayon::prelude::*;

pub mod absorption;

/// Rows whose centred or raw squared norm is at most this are skipped by the per-row ratios, and
/// variances at most this count as zero (SAELens's threshold).
pub const TINY: f64 = 1e-10;

/// SAELens's `min_input_norm` for shrinkage.
pub const MIN_NORM: f64 = 1e-6;

/// One batch of `b` rows.
pub struct Batch<'a> {
    /// `[b, D]` inputs `x`.
    pub hidden: &'a [f32],
    /// `[b, D]` reconstructions `x̂`.
    pub reconstruction: &'a [f32],
    /// `[b, d_sae]` CSR of the latents' non-zero entries (only the pattern is read here).
    pub latents: CsrRef<'a>,
    /// `[b, N]` ground-truth activations (entries ≤ 0 count as inactive).
    pub features: CsrRef<'a>,
}

/// Per-dimension running sums.
#[derive(Clone, Copy, Default)]
struct DimSums {
    x: f64,
    xx: f64,
    rr: f64,
}

/// The finished reductions; `fires` is per latent, the classification counts are per pair.
pub struct Summary {
    pub rows: u64,
    pub true_l0: f64,
    pub sae_l0: f64,
    pub dead_latents: u64,
    pub shrinkage: f64,
    pub explained_variance: f64,
    pub explained_variance_per_sample: f64,
    pub explained_variance_per_dimension: f64,
    /// `[d_sae]` rows where the latent is non-zero.
    pub fires: Vec<u64>,
    /// `[pairs]` rows where the pair's feature is active.
    pub feature_fires: Vec<u64>,
    /// `[pairs]` rows where the pair's feature is active and its latent non-zero.
    pub true_positives: Vec<u64>,
    /// Per union feature (ascending): rows where it is active and a latent of its union fires.
    pub union_hits: Vec<u64>,
}

/// Running state of an evaluation.
pub struct Accumulator {
    hidden_dim: usize,
    num_features: usize,
    /// The latent of each pair.
    pair_latent: Vec<u32>,
    /// The pairs of each feature, as CSR over features.
    by_feature_ptr: Vec<usize>,
    by_feature: Vec<u32>,
    /// Whether each pair belongs to its feature's union, and each feature's union slot (or MAX).
    in_union: Vec<bool>,
    union_slot: Vec<u32>,
    union_hits: Vec<u64>,
    rows: u64,
    true_active: u64,
    sae_active: u64,
    fires: Vec<u64>,
    feature_fires: Vec<u64>,
    true_positives: Vec<u64>,
    dims: Vec<DimSums>,
    shrink_sum: f64,
    shrink_rows: u64,
    /// The reference mean of the per-sample ratio, once known.
    mean: Option<Vec<f64>>,
    mean_rows: usize,
    /// Until the mean is known: the first rows' `x` `[k, D]` and squared residual norms `[k]`.
    pending_x: Vec<f32>,
    pending_rr: Vec<f64>,
    ratio_sum: f64,
    ratio_rows: u64,
}

impl Accumulator {
    /// Pair `k` scores latent `pair_latents[k]` (in `[0, d_sae)`) as a classifier of feature
    /// `pair_features[k]` (in `[0, num_features)`); a latent may be in several pairs. The per-sample
    /// ratio is taken about `mean` `[D]` when given, else about the mean of the first `mean_rows`
    /// rows. The pairs `union_pairs` (indices into the pairs) form, per feature, a union whose hits
    /// are counted.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        hidden_dim: usize,
        num_features: usize,
        d_sae: usize,
        pair_latents: &[i64],
        pair_features: &[i64],
        union_pairs: &[i64],
        mean: Option<Vec<f64>>,
        mean_rows: usize,
    ) -> Result<Self> {
        if pair_latents.len() != pair_features.len() {
            return Err(Error::value(
                "pair_features",
                "must have as many entries as pair_latents",
            ));
        }
        if pair_latents.iter().any(|&l| l < 0 || l as usize >= d_sae) {
            return Err(Error::value(
                "pair_latents",
                format!("entries must be latent indices in [0, {d_sae})"),
            ));
        }
        if pair_features
            .iter()
            .any(|&j| j < 0 || j as usize >= num_features)
        {
            return Err(Error::value(
                "pair_features",
                format!("entries must be feature indices in [0, {num_features})"),
            ));
        }
        if u32::try_from(pair_latents.len()).is_err() {
            return Err(Error::value(
                "pair_latents",
                "must have fewer than 2**32 entries",
            ));
        }
        let pairs = pair_latents.len();
        if union_pairs.iter().any(|&k| k < 0 || k as usize >= pairs) {
            return Err(Error::value(
                "union_pairs",
                format!("entries must be pair indices in [0, {pairs})"),
            ));
        }
        if mean.as_ref().is_some_and(|m| m.len() != hidden_dim) {
            return Err(Error::value(
                "mean",
                format!("must have shape ({hidden_dim},)"),
            ));
        }
        if mean
            .as_ref()
            .is_some_and(|m| m.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::value("mean", "must be finite"));
        }
        if mean_rows == 0 {
            return Err(Error::value("mean_rows", "must be at least 1"));
        }
        let mut in_union = vec![false; pairs];
        let mut union_slot = vec![u32::MAX; num_features];
        for &k in union_pairs {
            in_union[k as usize] = true;
            union_slot[pair_features[k as usize] as usize] = 0;
        }
        let mut unions = 0;
        for slot in union_slot.iter_mut().filter(|s| **s == 0) {
            *slot = unions;
            unions += 1;
        }
        let mut by_feature_ptr = vec![0usize; num_features + 1];
        for &j in pair_features {
            by_feature_ptr[j as usize + 1] += 1;
        }
        for j in 0..num_features {
            by_feature_ptr[j + 1] += by_feature_ptr[j];
        }
        let mut next = by_feature_ptr.clone();
        let mut by_feature = vec![0u32; pairs];
        for (k, &j) in pair_features.iter().enumerate() {
            by_feature[next[j as usize]] = k as u32;
            next[j as usize] += 1;
        }
        Ok(Accumulator {
            hidden_dim,
            num_features,
            pair_latent: pair_latents.iter().map(|&l| l as u32).collect(),
            by_feature_ptr,
            by_feature,
            in_union,
            union_slot,
            union_hits: vec![0; unions as usize],
            rows: 0,
            true_active: 0,
            sae_active: 0,
            fires: vec![0; d_sae],
            feature_fires: vec![0; pairs],
            true_positives: vec![0; pairs],
            dims: vec![DimSums::default(); hidden_dim],
            shrink_sum: 0.0,
            shrink_rows: 0,
            mean,
            mean_rows,
            pending_x: Vec::new(),
            pending_rr: Vec::new(),
            ratio_sum: 0.0,
            ratio_rows: 0,
        })
    }

    fn d_sae(&self) -> usize {
        self.fires.len()
    }

    /// Adds a batch (on the default pool of `threads.rs`); on error nothing has been added.
    pub fn add(&mut self, batch: &Batch<'_>) -> Result<()> {
        crate::threads::install(None, || self.add_in_pool(batch))?
    }

    fn add_in_pool(&mut self, batch: &Batch<'_>) -> Result<()> {
        let d = self.hidden_dim;
        let b = batch.features.num_rows();
        if batch.hidden.len() != b * d || batch.reconstruction.len() != b * d {
            return Err(Error::value(
                "reconstruction",
                format!(
                    "hidden and reconstruction must both be [{b}, {d}], matching the features' rows"
                ),
            ));
        }
        batch.latents.check("latents", b, self.d_sae())?;
        batch.features.check("features", b, self.num_features)?;
        if batch.features.values.is_none() {
            return Err(Error::value("features", "values are required"));
        }
        self.add_counts(batch, b);
        self.add_dims(batch, b);
        self.add_rows(batch, b);
        self.rows += b as u64;
        Ok(())
    }

    fn add_counts(&mut self, batch: &Batch<'_>, b: usize) {
        let d_sae = self.d_sae();
        let (pairs, unions) = (self.pair_latent.len(), self.union_hits.len());
        let parts = rayon::current_num_threads().clamp(1, b.max(1));
        let (lat, feat) = (batch.latents, batch.features);
        let values = feat.values.unwrap_or(&[]);
        let partial: Vec<_> = (0..parts)
            .into_par_iter()
            .map(|p| {
                let mut fires = vec![0u64; d_sae];
                let mut feature_fires = vec![0u64; pairs];
                let mut tp = vec![0u64; pairs];
                let mut union_hits = vec![0u64; unions];
                let mut mark = vec![u32::MAX; d_sae];
                let mut true_active = 0u64;
                for r in b * p / parts..b * (p + 1) / parts {
                    for &l in &lat.indices[lat.row(r)] {
                        fires[l as usize] += 1;
                        mark[l as usize] = r as u32;
                    }
                    for k in feat.row(r) {
                        if values[k] <= 0.0 {
                            continue;
                        }
                        true_active += 1;
                        let j = feat.indices[k] as usize;
                        let mut hit = false;
                        for &k in
                            &self.by_feature[self.by_feature_ptr[j]..self.by_feature_ptr[j + 1]]
                        {
                            let k = k as usize;
                            let fire = mark[self.pair_latent[k] as usize] == r as u32;
                            feature_fires[k] += 1;
                            tp[k] += u64::from(fire);
                            hit |= fire && self.in_union[k];
                        }
                        let slot = self.union_slot[j];
                        if slot != u32::MAX {
                            union_hits[slot as usize] += u64::from(hit);
                        }
                    }
                }
                let sae_active = fires.iter().sum::<u64>();
                (
                    fires,
                    feature_fires,
                    tp,
                    union_hits,
                    true_active,
                    sae_active,
                )
            })
            .collect();
        for (fires, feature_fires, tp, union_hits, true_active, sae_active) in partial {
            let add =
                |acc: &mut Vec<u64>, v: Vec<u64>| acc.iter_mut().zip(v).for_each(|(a, x)| *a += x);
            add(&mut self.fires, fires);
            add(&mut self.feature_fires, feature_fires);
            add(&mut self.true_positives, tp);
            add(&mut self.union_hits, union_hits);
            self.true_active += true_active;
            self.sae_active += sae_active;
        }
    }

    /// Per-dimension sums, parallel over dimensions, rows in order.
    fn add_dims(&mut self, batch: &Batch<'_>, b: usize) {
        const CHUNK: usize = 64;
        let d = self.hidden_dim;
        self.dims
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, dims)| {
                let lo = c * CHUNK;
                for r in 0..b {
                    let x = &batch.hidden[r * d + lo..r * d + lo + dims.len()];
                    let y = &batch.reconstruction[r * d + lo..r * d + lo + dims.len()];
                    for ((s, &x), &y) in dims.iter_mut().zip(x).zip(y) {
                        let (x, y) = (f64::from(x), f64::from(y));
                        s.x += x;
                        s.xx += x * x;
                        s.rr += (x - y) * (x - y);
                    }
                }
            });
    }

    /// Per-row norms (parallel) folded in row order into shrinkage and the per-sample ratio.
    fn add_rows(&mut self, batch: &Batch<'_>, b: usize) {
        let d = self.hidden_dim;
        let norms: Vec<(f64, f64, f64)> = (0..b)
            .into_par_iter()
            .map(|r| {
                let (x, y) = (
                    &batch.hidden[r * d..(r + 1) * d],
                    &batch.reconstruction[r * d..(r + 1) * d],
                );
                row_norms(x, y)
            })
            .collect();
        for &(xx, yy, _) in &norms {
            if xx.sqrt() > MIN_NORM {
                self.shrink_sum += yy.sqrt() / xx.sqrt();
                self.shrink_rows += 1;
            }
        }
        let rr: Vec<f64> = norms.iter().map(|n| n.2).collect();
        let mut start = 0;
        if self.mean.is_none() {
            start = (self.mean_rows - self.pending_rr.len()).min(b);
            self.pending_x.extend_from_slice(&batch.hidden[..start * d]);
            self.pending_rr.extend_from_slice(&rr[..start]);
            if self.pending_rr.len() < self.mean_rows {
                return;
            }
            let mean = prefix_mean(&self.pending_x, self.pending_rr.len(), d);
            (self.ratio_sum, self.ratio_rows) = add_ratios(
                (self.ratio_sum, self.ratio_rows),
                &self.pending_x,
                &self.pending_rr,
                &mean,
            );
            self.mean = Some(mean);
            self.pending_x = Vec::new();
            self.pending_rr = Vec::new();
        }
        if let Some(mean) = &self.mean {
            (self.ratio_sum, self.ratio_rows) = add_ratios(
                (self.ratio_sum, self.ratio_rows),
                &batch.hidden[start * d..],
                &rr[start..],
                mean,
            );
        }
    }

    /// The metrics over every row added so far.
    pub fn summary(&self) -> Summary {
        let n = self.rows as f64;
        let per_row = |v: u64| if self.rows == 0 { 0.0 } else { v as f64 / n };
        let (mut sum_x2, mut sum_xx, mut sum_rr, mut r2_dims) = (0.0, 0.0, 0.0, 0.0);
        for s in &self.dims {
            sum_x2 += (s.x / n) * (s.x / n);
            sum_xx += s.xx;
            sum_rr += s.rr;
            r2_dims += r_squared(s.rr / n, s.xx / n - (s.x / n) * (s.x / n));
        }
        let (pooled, per_dimension) = if self.rows == 0 {
            (0.0, 0.0)
        } else {
            let per_dim = if self.dims.is_empty() {
                0.0
            } else {
                r2_dims / self.dims.len() as f64
            };
            (r_squared(sum_rr / n, sum_xx / n - sum_x2), per_dim)
        };
        let (mut ratio_sum, mut ratio_rows) = (self.ratio_sum, self.ratio_rows);
        if self.mean.is_none() && !self.pending_rr.is_empty() {
            let mean = prefix_mean(&self.pending_x, self.pending_rr.len(), self.hidden_dim);
            (ratio_sum, ratio_rows) = add_ratios(
                (ratio_sum, ratio_rows),
                &self.pending_x,
                &self.pending_rr,
                &mean,
            );
        }
        Summary {
            rows: self.rows,
            true_l0: per_row(self.true_active),
            sae_l0: per_row(self.sae_active),
            dead_latents: self.fires.iter().filter(|&&f| f == 0).count() as u64,
            shrinkage: if self.shrink_rows == 0 {
                0.0
            } else {
                self.shrink_sum / self.shrink_rows as f64
            },
            explained_variance: pooled,
            explained_variance_per_sample: if ratio_rows == 0 {
                0.0
            } else {
                1.0 - ratio_sum / ratio_rows as f64
            },
            explained_variance_per_dimension: per_dimension,
            fires: self.fires.clone(),
            feature_fires: self.feature_fires.clone(),
            true_positives: self.true_positives.clone(),
            union_hits: self.union_hits.clone(),
        }
    }
}

/// `‖x‖², ‖y‖², ‖x − y‖²` in f64, summed in dimension order.
fn row_norms(x: &[f32], y: &[f32]) -> (f64, f64, f64) {
    x.iter()
        .zip(y)
        .fold((0.0, 0.0, 0.0), |(xx, yy, rr), (&x, &y)| {
            let (x, y) = (f64::from(x), f64::from(y));
            (xx + x * x, yy + y * y, rr + (x - y) * (x - y))
        })
}

/// Mean of the `k` rows of `x` `[k, d]`, summed in row order.
fn prefix_mean(x: &[f32], k: usize, d: usize) -> Vec<f64> {
    let mut mean = vec![0.0; d];
    for row in x.chunks_exact(d.max(1)).take(k) {
        mean.iter_mut()
            .zip(row)
            .for_each(|(m, &v)| *m += f64::from(v));
    }
    mean.iter_mut().for_each(|m| *m /= k as f64);
    mean
}

/// Folds into `(sum, rows)`, in row order, `rr / ‖x − mean‖²` of the rows with
/// `‖x − mean‖² > TINY`.
fn add_ratios(acc: (f64, u64), x: &[f32], rr: &[f64], mean: &[f64]) -> (f64, u64) {
    let d = mean.len();
    let centred: Vec<f64> = (0..rr.len())
        .into_par_iter()
        .map(|r| {
            let row = &x[r * d..(r + 1) * d];
            row.iter()
                .zip(mean)
                .map(|(&v, &m)| (f64::from(v) - m) * (f64::from(v) - m))
                .sum()
        })
        .collect();
    centred.iter().zip(rr).fold(
        acc,
        |(s, k), (&c, &r)| {
            if c > TINY {
                (s + r / c, k + 1)
            } else {
                (s, k)
            }
        },
    )
}

/// `1 − mse / var`, with SAELens's convention for a (numerically) zero variance.
fn r_squared(mse: f64, var: f64) -> f64 {
    if var < TINY {
        if mse < TINY {
            1.0
        } else {
            0.0
        }
    } else {
        1.0 - mse / var
    }
}

#[cfg(test)]
mod tests;
