//! Hierarchy-aware absorption counts: for each parent feature with children, how often its matched
//! latent fires with and without an active child, how often a child's latent fires in its place,
//! and how much of the parent's activation other latents carry (the absorption fraction).
//!
//! Only the pairs the hierarchy names are counted (work ∝ active parents × their children per row).
//! Counts are integers summed over row ranges and the fractions are float64 sums folded in row
//! order, so both are identical for any batch split or thread count.

use crate::csr::CsrRef;
use crate::error::{Error, Result};
use rayon::prelude::*;

/// No latent (an unmatched parent or child).
pub const NONE: i64 = -1;

/// Absorbing latents must carry at least this share of the parent's activation (SAEBench's
/// `probe_projection_proportion_threshold`).
pub const ABSORBED_SHARE: f64 = 0.4;

/// At most this many absorbing latents count per row (SAEBench's
/// `absorption_fraction_max_absorbing_latents`).
pub const MAX_ABSORBERS: usize = 3;

/// A latent other than the parent's own that may carry the parent's direction.
pub struct Other {
    pub latent: u32,
    /// What one unit of the latent adds to the reconstruction along the parent's direction.
    pub coef: f64,
    /// Whether its decoder is near the parent's direction (for the near absorption count).
    pub near: bool,
}

/// One parent and what its counts are about.
pub struct Parent {
    pub feature: u32,
    /// Its matched latent, or [`NONE`].
    pub latent: i64,
    /// What one unit of `latent` adds to the reconstruction along the parent's direction.
    pub coef: f64,
    /// `(feature, matched latent or NONE)` of each child.
    pub children: Vec<(u32, i64)>,
    /// The candidate absorbers.
    pub others: Vec<Other>,
}

/// Counts per parent, and per (parent, child) in the order of `Parent::children`, flattened.
#[derive(Clone, Default, PartialEq, Debug)]
pub struct AbsorptionCounts {
    /// Rows where the parent is active and no child is; of those, rows where its latent fires.
    pub alone: Vec<u64>,
    pub alone_fires: Vec<u64>,
    /// Rows where the parent and at least one child are active; of those, rows where its latent
    /// fires; and the sum of the absorption fraction over them.
    pub with_child: Vec<u64>,
    pub with_child_fires: Vec<u64>,
    pub fraction: Vec<f64>,
    /// Per child: rows where the parent and this child are active; of those, rows where the parent's
    /// latent fires, rows where it is silent and the child's fires, and rows where it is silent and
    /// some near latent fires.
    pub both: Vec<u64>,
    pub both_fires: Vec<u64>,
    pub absorbed: Vec<u64>,
    pub absorbed_near: Vec<u64>,
}

impl AbsorptionCounts {
    fn zeros(parents: usize, children: usize) -> Self {
        AbsorptionCounts {
            alone: vec![0; parents],
            alone_fires: vec![0; parents],
            with_child: vec![0; parents],
            with_child_fires: vec![0; parents],
            fraction: vec![0.0; parents],
            both: vec![0; children],
            both_fires: vec![0; children],
            absorbed: vec![0; children],
            absorbed_near: vec![0; children],
        }
    }

    /// Adds `other`'s integer counts (its `fraction` is folded separately, in row order).
    fn merge(&mut self, other: AbsorptionCounts) {
        let add = |a: &mut Vec<u64>, b: Vec<u64>| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        add(&mut self.alone, other.alone);
        add(&mut self.alone_fires, other.alone_fires);
        add(&mut self.with_child, other.with_child);
        add(&mut self.with_child_fires, other.with_child_fires);
        add(&mut self.both, other.both);
        add(&mut self.both_fires, other.both_fires);
        add(&mut self.absorbed, other.absorbed);
        add(&mut self.absorbed_near, other.absorbed_near);
    }
}

/// SAEBench's absorption fraction of one row: `target` = the parent's activation (> 0), `main` =
/// its latent's projection, `absorbers` = the other latents' positive projections, largest first.
pub fn absorption_fraction(target: f64, main: f64, absorbers: &[f64]) -> f64 {
    let absorbed = absorbers.iter().fold(0.0, |s, &v| s + v);
    if main >= target || absorbed / target < ABSORBED_SHARE {
        0.0
    } else if main <= 0.0 {
        1.0
    } else {
        let absorbed = absorbed.min(target - main);
        (absorbed / (absorbed + main)).clamp(0.0, 1.0)
    }
}

/// Running absorption counts of an evaluation.
pub struct Absorption {
    num_features: usize,
    d_sae: usize,
    parents: Vec<Parent>,
    /// First flattened child slot of each parent.
    child_start: Vec<usize>,
    /// Parent record of each feature, or `u32::MAX`.
    parent_of: Vec<u32>,
    counts: AbsorptionCounts,
}

impl Absorption {
    /// Checks every index against `num_features` and `d_sae` and every coefficient for finiteness;
    /// a feature may be the parent of one record only.
    pub fn new(num_features: usize, d_sae: usize, parents: Vec<Parent>) -> Result<Self> {
        let latent_ok = |l: i64| l == NONE || (l >= 0 && (l as usize) < d_sae);
        let mut parent_of = vec![u32::MAX; num_features];
        let mut child_start = Vec::with_capacity(parents.len());
        let mut children = 0;
        for (k, p) in parents.iter().enumerate() {
            let features = std::iter::once(p.feature).chain(p.children.iter().map(|c| c.0));
            if features.into_iter().any(|j| j as usize >= num_features) {
                return Err(Error::value(
                    "parents",
                    format!("feature indices must be in [0, {num_features})"),
                ));
            }
            let latents = std::iter::once(p.latent).chain(p.children.iter().map(|c| c.1));
            if !latents.into_iter().all(latent_ok)
                || p.others.iter().any(|o| o.latent as usize >= d_sae)
            {
                return Err(Error::value(
                    "parents",
                    format!("latent indices must be in [0, {d_sae}) or -1"),
                ));
            }
            if !p.coef.is_finite() || p.others.iter().any(|o| !o.coef.is_finite()) {
                return Err(Error::value("parents", "coefficients must be finite"));
            }
            if parent_of[p.feature as usize] != u32::MAX {
                return Err(Error::value(
                    "parents",
                    "a feature is listed as a parent twice",
                ));
            }
            parent_of[p.feature as usize] = k as u32;
            child_start.push(children);
            children += p.children.len();
        }
        Ok(Absorption {
            num_features,
            d_sae,
            counts: AbsorptionCounts::zeros(parents.len(), children),
            parents,
            child_start,
            parent_of,
        })
    }

    /// Adds a batch of `b` rows: the latents' non-zeros `[b, d_sae]` and the ground-truth
    /// activations `[b, N]` (entries ≤ 0 inactive), both CSR with values; on error nothing has been
    /// added.
    pub fn add(&mut self, latents: CsrRef<'_>, features: CsrRef<'_>) -> Result<()> {
        let b = features.num_rows();
        features.check("features", b, self.num_features)?;
        let values = features
            .values
            .ok_or_else(|| Error::value("features", "values are required"))?;
        latents.check("latents", b, self.d_sae)?;
        let latent_values = latents
            .values
            .ok_or_else(|| Error::value("latents", "values are required"))?;
        let partial = crate::threads::install(None, || {
            let parts = rayon::current_num_threads().clamp(1, b.max(1));
            (0..parts)
                .into_par_iter()
                .map(|p| {
                    self.count_rows(
                        (latents, latent_values),
                        (features, values),
                        b * p / parts..b * (p + 1) / parts,
                    )
                })
                .collect::<Vec<_>>()
        })?;
        // Partitions are in row order and so is each one's list of fractions.
        for (counts, fractions) in partial {
            self.counts.merge(counts);
            for (rec, f) in fractions {
                self.counts.fraction[rec as usize] += f;
            }
        }
        Ok(())
    }

    /// The counts of `rows`, and their non-zero fractions as `(parent record, fraction)` in row
    /// order.
    fn count_rows(
        &self,
        (latents, latent_values): (CsrRef<'_>, &[f32]),
        (features, values): (CsrRef<'_>, &[f32]),
        rows: std::ops::Range<usize>,
    ) -> (AbsorptionCounts, Vec<(u32, f64)>) {
        let children = self.counts.both.len();
        let mut out = AbsorptionCounts::zeros(self.parents.len(), children);
        let mut fractions = Vec::new();
        // Row stamps (row + 1; 0 = never): which features are active and which latents fire (with
        // their values in `latent_value`).
        let mut active = vec![0u32; self.num_features];
        let (mut fired, mut latent_value) = (vec![0u32; self.d_sae], vec![0f32; self.d_sae]);
        for r in rows {
            let stamp = r as u32 + 1;
            let row = features.row(r);
            for k in row.clone() {
                if values[k] > 0.0 {
                    active[features.indices[k] as usize] = stamp;
                }
            }
            for k in latents.row(r) {
                let l = latents.indices[k] as usize;
                (fired[l], latent_value[l]) = (stamp, latent_values[k]);
            }
            let value = |l: usize| -> f32 {
                if fired[l] == stamp {
                    latent_value[l]
                } else {
                    0.0
                }
            };
            let fires = |l: i64| l != NONE && value(l as usize) != 0.0;
            for k in row {
                let j = features.indices[k] as usize;
                let rec = self.parent_of[j];
                if values[k] <= 0.0 || rec == u32::MAX {
                    continue;
                }
                let (rec, p) = (rec as usize, &self.parents[rec as usize]);
                let parent_fires = fires(p.latent);
                // Only asked when the parent's latent is silent (and then once per parent and row).
                let mut near_fires = None;
                let mut any_child = false;
                for (c, &(child, child_latent)) in p.children.iter().enumerate() {
                    if active[child as usize] != stamp {
                        continue;
                    }
                    any_child = true;
                    let slot = self.child_start[rec] + c;
                    out.both[slot] += 1;
                    out.both_fires[slot] += u64::from(parent_fires);
                    if !parent_fires {
                        out.absorbed[slot] += u64::from(fires(child_latent));
                        let near = *near_fires.get_or_insert_with(|| {
                            p.others
                                .iter()
                                .any(|o| o.near && value(o.latent as usize) != 0.0)
                        });
                        out.absorbed_near[slot] += u64::from(near);
                    }
                }
                if any_child {
                    out.with_child[rec] += 1;
                    out.with_child_fires[rec] += u64::from(parent_fires);
                    let main = if parent_fires {
                        f64::from(value(p.latent as usize)) * p.coef
                    } else {
                        0.0
                    };
                    let f =
                        absorption_fraction(f64::from(values[k]), main, &top_absorbers(p, value));
                    if f != 0.0 {
                        fractions.push((rec as u32, f));
                    }
                } else {
                    out.alone[rec] += 1;
                    out.alone_fires[rec] += u64::from(parent_fires);
                }
            }
        }
        (out, fractions)
    }

    /// The counts over every row added so far.
    pub fn counts(&self) -> &AbsorptionCounts {
        &self.counts
    }
}

/// The largest [`MAX_ABSORBERS`] positive projections of `p`'s other latents on a row, largest
/// first (a shorter list when fewer are positive).
fn top_absorbers(p: &Parent, value: impl Fn(usize) -> f32) -> Vec<f64> {
    let mut top: Vec<f64> = Vec::with_capacity(MAX_ABSORBERS + 1);
    for o in &p.others {
        let v = value(o.latent as usize);
        if v == 0.0 {
            continue;
        }
        let proj = f64::from(v) * o.coef;
        if proj > 0.0 {
            let at = top.partition_point(|&t| t >= proj);
            if at < MAX_ABSORBERS {
                top.insert(at, proj);
                top.truncate(MAX_ABSORBERS);
            }
        }
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_hand_computation() {
        // Parent feature 0 (latent 0) with children 1 (latent 1) and 2 (no latent); latent 2 is near 0.
        let parent = Parent {
            feature: 0,
            latent: 0,
            coef: 1.0,
            children: vec![(1, 1), (2, NONE)],
            others: vec![Other {
                latent: 2,
                coef: 0.5,
                near: true,
            }],
        };
        let mut acc = Absorption::new(3, 3, vec![parent]).unwrap();
        // rows: {0} with latents {0}; {0, 1} with {1}; {0, 1, 2} with {1, 2}; {0, 2 (value 0)} with {}.
        let feat = (
            [0i64, 1, 3, 6, 8],
            [0i32, 0, 1, 0, 1, 2, 0, 2],
            [1f32, 1., 1., 1., 1., 1., 1., 0.],
        );
        let lat = ([0i64, 1, 2, 4, 4], [0i32, 1, 1, 2]);
        let features = CsrRef {
            indptr: &feat.0,
            indices: &feat.1,
            values: Some(&feat.2),
        };
        let lat_values = [1f32; 4];
        let sparse = CsrRef {
            indptr: &lat.0,
            indices: &lat.1,
            values: Some(&lat_values),
        };
        acc.add(sparse, features).unwrap();
        let c = acc.counts();
        assert_eq!((c.alone.clone(), c.alone_fires.clone()), (vec![2], vec![1]));
        assert_eq!(
            (c.with_child.clone(), c.with_child_fires.clone()),
            (vec![2], vec![0])
        );
        assert_eq!(c.both, vec![2, 1]);
        assert_eq!(c.both_fires, vec![0, 0]); // latent 0 is silent whenever a child is active
        assert_eq!(c.absorbed, vec![2, 0]); // child 2 has no latent
        assert_eq!(c.absorbed_near, vec![1, 1]);
        // Rows with a child: {0, 1} latents {1} (no absorber fires: 0); {0, 1, 2} latents {1, 2}:
        // main 0, latent 2 carries 0.5 of the parent's 1.0 (≥ 0.4), so the fraction is 1.
        assert_eq!(c.fraction, vec![1.0]);
    }

    #[test]
    fn fraction_follows_saebench() {
        // Main carries it all, or absorbers carry too little: no absorption.
        assert_eq!(absorption_fraction(1.0, 1.0, &[0.9]), 0.0);
        assert_eq!(absorption_fraction(1.0, 0.2, &[0.3]), 0.0);
        // Main silent, absorbers carry ≥ 40 %: full.
        assert_eq!(absorption_fraction(1.0, 0.0, &[0.3, 0.2]), 1.0);
        // Partial: absorbed capped at what main leaves, 0.5 / (0.5 + 0.5).
        assert_eq!(absorption_fraction(1.0, 0.5, &[0.6]), 0.5);
        assert_eq!(absorption_fraction(2.0, 0.5, &[0.5, 0.4]), 0.9 / 1.4);
    }

    #[test]
    fn top_absorbers_keeps_the_largest_positive_ones() {
        let others = [0.5, -1.0, 2.0, 1.0, 3.0]
            .iter()
            .enumerate()
            .map(|(l, &coef)| Other {
                latent: l as u32,
                coef,
                near: false,
            })
            .collect();
        let p = Parent {
            feature: 0,
            latent: NONE,
            coef: 0.0,
            children: vec![],
            others,
        };
        assert_eq!(top_absorbers(&p, |_| 1.0), vec![3.0, 2.0, 1.0]);
        assert_eq!(
            top_absorbers(&p, |l| [1.0, 1.0, 0.0, 0.0, 0.0][l]),
            vec![0.5]
        );
    }

    #[test]
    fn batch_split_gives_the_same_counts() {
        let parent = || Parent {
            feature: 0,
            latent: 0,
            coef: 0.5,
            children: vec![(1, 1)],
            others: vec![Other {
                latent: 1,
                coef: 0.3,
                near: false,
            }],
        };
        let (feat, z) = (
            ([0i64, 2, 3, 5], [0i32, 1, 0, 0, 1], [1f32, 1., 1., 1., 1.]),
            [0f32, 1., 0.7, 0.2, 0., 1.9],
        );
        let latents = crate::csr::from_dense(&z, 3, 2).unwrap();
        let mut whole = Absorption::new(2, 2, vec![parent()]).unwrap();
        let f = CsrRef {
            indptr: &feat.0,
            indices: &feat.1,
            values: Some(&feat.2),
        };
        whole.add(latents.view(), f).unwrap();
        let mut split = Absorption::new(2, 2, vec![parent()]).unwrap();
        for (lo, hi) in [(0usize, 1usize), (1, 3)] {
            let ptr: Vec<i64> = feat.0[lo..=hi].iter().map(|&p| p - feat.0[lo]).collect();
            let (a, e) = (feat.0[lo] as usize, feat.0[hi] as usize);
            let f = CsrRef {
                indptr: &ptr,
                indices: &feat.1[a..e],
                values: Some(&feat.2[a..e]),
            };
            let latents = crate::csr::from_dense(&z[lo * 2..hi * 2], hi - lo, 2).unwrap();
            split.add(latents.view(), f).unwrap();
        }
        assert_eq!(whole.counts(), split.counts());
        assert_eq!(whole.counts().both, vec![2]);
        assert!(whole.counts().fraction[0] > 0.0);
    }

    #[test]
    fn bad_indices_are_refused() {
        let p = |feature, latent| Parent {
            feature,
            latent,
            coef: 1.0,
            children: vec![],
            others: vec![],
        };
        assert!(Absorption::new(2, 2, vec![p(2, 0)]).is_err());
        assert!(Absorption::new(2, 2, vec![p(0, 2)]).is_err());
        assert!(Absorption::new(2, 2, vec![p(0, -2)]).is_err());
        assert!(Absorption::new(2, 2, vec![p(0, 0), p(0, 1)]).is_err());
        let mut bad = p(0, 0);
        bad.coef = f64::NAN;
        assert!(Absorption::new(2, 2, vec![bad]).is_err());
    }
}
