//! Hierarchy-aware absorption counts: for each parent feature with children, how often its matched
//! latent fires with and without an active child, and how often a child's latent fires in its place.
//!
//! Only the pairs the hierarchy names are counted (work ∝ active parents × their children per row).
//! Counts are integers summed over row ranges, so they are identical for any batch split or thread
//! count.

use crate::csr::CsrRef;
use crate::error::{Error, Result};
use crate::metrics::Latents;
use rayon::prelude::*;

/// No latent (an unmatched parent or child).
pub const NONE: i64 = -1;

/// One parent and what its counts are about.
pub struct Parent {
    pub feature: u32,
    /// Its matched latent, or [`NONE`].
    pub latent: i64,
    /// `(feature, matched latent or NONE)` of each child.
    pub children: Vec<(u32, i64)>,
    /// Latents other than `latent` whose decoder is close to the parent's direction.
    pub near: Vec<u32>,
}

/// Counts per parent, and per (parent, child) in the order of `Parent::children`, flattened.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct AbsorptionCounts {
    /// Rows where the parent is active and no child is; of those, rows where its latent fires.
    pub alone: Vec<u64>,
    pub alone_fires: Vec<u64>,
    /// Rows where the parent and at least one child are active; of those, rows where its latent fires.
    pub with_child: Vec<u64>,
    pub with_child_fires: Vec<u64>,
    /// Per child: rows where the parent and this child are active; of those, rows where the parent's
    /// latent is silent and the child's fires, and rows where it is silent and some near latent fires.
    pub both: Vec<u64>,
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
            both: vec![0; children],
            absorbed: vec![0; children],
            absorbed_near: vec![0; children],
        }
    }

    fn merge(&mut self, other: AbsorptionCounts) {
        let add = |a: &mut Vec<u64>, b: Vec<u64>| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        add(&mut self.alone, other.alone);
        add(&mut self.alone_fires, other.alone_fires);
        add(&mut self.with_child, other.with_child);
        add(&mut self.with_child_fires, other.with_child_fires);
        add(&mut self.both, other.both);
        add(&mut self.absorbed, other.absorbed);
        add(&mut self.absorbed_near, other.absorbed_near);
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
    /// Checks every index against `num_features` and `d_sae`; a feature may be the parent of one
    /// record only.
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
            if !latents.into_iter().all(latent_ok) || p.near.iter().any(|&l| l as usize >= d_sae) {
                return Err(Error::value(
                    "parents",
                    format!("latent indices must be in [0, {d_sae}) or -1"),
                ));
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

    /// Adds a batch of `b` rows: latents `[b, d_sae]` and ground-truth activations `[b, N]` (entries
    /// ≤ 0 inactive); on error nothing has been added.
    pub fn add(&mut self, latents: Latents<'_>, features: CsrRef<'_>) -> Result<()> {
        let b = features.num_rows();
        features.check("features", b, self.num_features)?;
        let values = features
            .values
            .ok_or_else(|| Error::value("features", "values are required"))?;
        match latents {
            Latents::Dense(z) if z.len() != b * self.d_sae => {
                return Err(Error::value(
                    "latents",
                    format!("must be [{b}, {}]", self.d_sae),
                ))
            }
            Latents::Dense(_) => {}
            Latents::Pattern(p) => p.check("latents", b, self.d_sae)?,
        }
        let partial = crate::threads::install(None, || {
            let parts = rayon::current_num_threads().clamp(1, b.max(1));
            (0..parts)
                .into_par_iter()
                .map(|p| {
                    self.count_rows(
                        latents,
                        features,
                        values,
                        b * p / parts..b * (p + 1) / parts,
                    )
                })
                .collect::<Vec<_>>()
        })?;
        for counts in partial {
            self.counts.merge(counts);
        }
        Ok(())
    }

    fn count_rows(
        &self,
        latents: Latents<'_>,
        features: CsrRef<'_>,
        values: &[f32],
        rows: std::ops::Range<usize>,
    ) -> AbsorptionCounts {
        let children = self.counts.both.len();
        let mut out = AbsorptionCounts::zeros(self.parents.len(), children);
        // Row stamps (row + 1; 0 = never): which features are active and which latents fire.
        let mut active = vec![0u32; self.num_features];
        let mut fired = vec![0u32; self.d_sae];
        for r in rows {
            let stamp = r as u32 + 1;
            let row = features.row(r);
            for k in row.clone() {
                if values[k] > 0.0 {
                    active[features.indices[k] as usize] = stamp;
                }
            }
            match latents {
                Latents::Dense(z) => {
                    let zr = &z[r * self.d_sae..(r + 1) * self.d_sae];
                    for (l, &v) in zr.iter().enumerate() {
                        if v != 0.0 {
                            fired[l] = stamp;
                        }
                    }
                }
                Latents::Pattern(p) => {
                    for &l in &p.indices[p.row(r)] {
                        fired[l as usize] = stamp;
                    }
                }
            }
            let fires = |l: i64| l != NONE && fired[l as usize] == stamp;
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
                    if !parent_fires {
                        out.absorbed[slot] += u64::from(fires(child_latent));
                        let near = *near_fires.get_or_insert_with(|| {
                            p.near.iter().any(|&l| fired[l as usize] == stamp)
                        });
                        out.absorbed_near[slot] += u64::from(near);
                    }
                }
                if any_child {
                    out.with_child[rec] += 1;
                    out.with_child_fires[rec] += u64::from(parent_fires);
                } else {
                    out.alone[rec] += 1;
                    out.alone_fires[rec] += u64::from(parent_fires);
                }
            }
        }
        out
    }

    /// The counts over every row added so far.
    pub fn counts(&self) -> &AbsorptionCounts {
        &self.counts
    }
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
            children: vec![(1, 1), (2, NONE)],
            near: vec![2],
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
        let pattern = CsrRef {
            indptr: &lat.0,
            indices: &lat.1,
            values: None,
        };
        acc.add(Latents::Pattern(pattern), features).unwrap();
        let c = acc.counts();
        assert_eq!((c.alone.clone(), c.alone_fires.clone()), (vec![2], vec![1]));
        assert_eq!(
            (c.with_child.clone(), c.with_child_fires.clone()),
            (vec![2], vec![0])
        );
        assert_eq!(c.both, vec![2, 1]);
        assert_eq!(c.absorbed, vec![2, 0]); // child 2 has no latent
        assert_eq!(c.absorbed_near, vec![1, 1]);
    }

    #[test]
    fn batch_split_and_dense_latents_give_the_same_counts() {
        let parent = Parent {
            feature: 0,
            latent: 0,
            children: vec![(1, 1)],
            near: vec![],
        };
        let (feat, z) = (
            ([0i64, 2, 3, 5], [0i32, 1, 0, 0, 1], [1f32, 1., 1., 1., 1.]),
            [0f32, 1., 1., 0., 0., 1.],
        );
        let mut whole = Absorption::new(2, 2, vec![parent]).unwrap();
        let f = CsrRef {
            indptr: &feat.0,
            indices: &feat.1,
            values: Some(&feat.2),
        };
        whole.add(Latents::Dense(&z), f).unwrap();
        let parent = Parent {
            feature: 0,
            latent: 0,
            children: vec![(1, 1)],
            near: vec![],
        };
        let mut split = Absorption::new(2, 2, vec![parent]).unwrap();
        for (lo, hi) in [(0usize, 1usize), (1, 3)] {
            let ptr: Vec<i64> = feat.0[lo..=hi].iter().map(|&p| p - feat.0[lo]).collect();
            let (a, e) = (feat.0[lo] as usize, feat.0[hi] as usize);
            let f = CsrRef {
                indptr: &ptr,
                indices: &feat.1[a..e],
                values: Some(&feat.2[a..e]),
            };
            split.add(Latents::Dense(&z[lo * 2..hi * 2]), f).unwrap();
        }
        assert_eq!(whole.counts(), split.counts());
        assert_eq!(whole.counts().both, vec![2]);
    }

    #[test]
    fn bad_indices_are_refused() {
        let p = |feature, latent| Parent {
            feature,
            latent,
            children: vec![],
            near: vec![],
        };
        assert!(Absorption::new(2, 2, vec![p(2, 0)]).is_err());
        assert!(Absorption::new(2, 2, vec![p(0, 2)]).is_err());
        assert!(Absorption::new(2, 2, vec![p(0, -2)]).is_err());
        assert!(Absorption::new(2, 2, vec![p(0, 0), p(0, 1)]).is_err());
    }
}
