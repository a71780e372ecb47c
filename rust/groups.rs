//! The hierarchy's groups: the feature children of each tree node, with the feature that gates
//! them (their effective parent, or none under an organizational root), and how the walk down the
//! tree finds them ([`Hierarchy`]). Sampling them is [`crate::world`]'s.

use crate::error::{Error, Result};

/// Hierarchy groups (see module docs). Group g has members `members[ptr[g]..ptr[g+1]]`.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// Per group: the feature gating it, or -1 (the children of an organizational root).
    pub gate: Vec<i32>,
    /// Per group: at most one member stays active (one uniformly chosen active member).
    pub exclusive: Vec<bool>,
    /// Per group: members scale by `gate value / gate mean`.
    pub rescale: Vec<bool>,
    pub ptr: Vec<usize>,
    pub members: Vec<u32>,
}

impl Groups {
    /// Checks shapes, ranges, that every feature is in at most one group and that gating has no
    /// cycle.
    pub fn validate(&self, num_features: usize) -> Result<()> {
        let g = self.gate.len();
        let err = |m: String| Err(Error::value("hierarchy", m));
        if self.exclusive.len() != g || self.rescale.len() != g || self.ptr.len() != g + 1 {
            return err(format!(
                "group arrays disagree: {g} gates, ptr of {}",
                self.ptr.len()
            ));
        }
        if self.ptr[0] != 0
            || self.ptr[g] != self.members.len()
            || self.ptr.windows(2).any(|w| w[0] > w[1])
        {
            return err("group pointers must rise from 0 to the number of members".into());
        }
        let mut parent = vec![-2i64; num_features]; // -2: in no group
        for k in 0..g {
            let gate = self.gate[k];
            if gate < -1 || gate >= num_features as i32 {
                return err(format!(
                    "group {k} has gate {gate} outside [-1, {num_features})"
                ));
            }
            for &m in &self.members[self.ptr[k]..self.ptr[k + 1]] {
                if m as usize >= num_features {
                    return err(format!(
                        "member {m} out of range for {num_features} features"
                    ));
                }
                if parent[m as usize] != -2 {
                    return err(format!("feature {m} belongs to two groups"));
                }
                parent[m as usize] = gate as i64;
            }
        }
        // Follow gates upward from every feature: meeting the current path again means a cycle.
        let mut state = vec![0u8; num_features]; // 0 new, 1 on path, 2 done
        for start in 0..num_features {
            let mut path = Vec::new();
            let mut f = start as i64;
            while f >= 0 && state[f as usize] == 0 {
                state[f as usize] = 1;
                path.push(f as usize);
                f = parent[f as usize];
            }
            if f >= 0 && state[f as usize] == 1 {
                return err(format!("feature {f} is gated by its own descendant"));
            }
            path.into_iter().for_each(|p| state[p] = 2);
        }
        Ok(())
    }

    /// The members of group g.
    #[inline(always)]
    pub fn members(&self, g: usize) -> &[u32] {
        &self.members[self.ptr[g]..self.ptr[g + 1]]
    }
}

/// What a feature gates, read in one load. SAELens's hierarchies give each parent one group of
/// consecutive features, which the record holds whole; other layouts go through the lists
/// (`listed`), a chain of four dependent loads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gate {
    /// Members `first..first + len` (none when `len` is 0), unless `listed`.
    pub first: u32,
    pub len: u32,
    pub exclusive: bool,
    pub rescale: bool,
    /// The feature gates several groups, or one that is not a run: read [`Hierarchy::gated_by`].
    pub listed: bool,
}

impl Gate {
    /// Feature q's record from the groups it gates.
    fn new(groups: &Groups, gated: &[u32]) -> Gate {
        let [g] = *gated else {
            return Gate {
                listed: !gated.is_empty(),
                ..Gate::default()
            };
        };
        let members = groups.members(g as usize);
        let first = members.first().copied().unwrap_or(0);
        let run = (first..).zip(members).all(|(i, &m)| i == m);
        Gate {
            first,
            len: members.len() as u32,
            exclusive: groups.exclusive[g as usize],
            rescale: groups.rescale[g as usize],
            listed: !run,
        }
    }
}

/// The groups indexed for the walk down the tree: per feature, the groups it gates (as lists and
/// as one [`Gate`] record), and the exclusive groups without a gate.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    groups: Groups,
    /// Groups gated by feature q: `gated[gated_ptr[q]..gated_ptr[q+1]]`.
    gated_ptr: Vec<usize>,
    gated: Vec<u32>,
    /// Per feature: what it gates, in one record.
    gates: Vec<Gate>,
    /// Exclusive groups with no gate (under organizational roots).
    free_exclusive: Vec<u32>,
}

impl Hierarchy {
    /// Validates `groups` over `num_features` features (see [`Groups::validate`]) and indexes them.
    pub fn new(groups: Groups, num_features: usize) -> Result<Self> {
        groups.validate(num_features)?;
        let n = num_features;
        let mut gated_ptr = vec![0usize; n + 1];
        for &gate in &groups.gate {
            if gate >= 0 {
                gated_ptr[gate as usize + 1] += 1;
            }
        }
        for q in 0..n {
            gated_ptr[q + 1] += gated_ptr[q];
        }
        let mut fill = gated_ptr.clone();
        let mut gated = vec![0u32; gated_ptr[n]];
        for (k, &gate) in groups.gate.iter().enumerate() {
            if gate >= 0 {
                gated[fill[gate as usize]] = k as u32;
                fill[gate as usize] += 1;
            }
        }
        let gates = (0..n)
            .map(|q| Gate::new(&groups, &gated[gated_ptr[q]..gated_ptr[q + 1]]))
            .collect();
        let free_exclusive = (0..groups.gate.len())
            .filter(|&k| groups.gate[k] < 0 && groups.exclusive[k])
            .map(|k| k as u32)
            .collect();
        Ok(Hierarchy {
            groups,
            gated_ptr,
            gated,
            gates,
            free_exclusive,
        })
    }

    /// The groups.
    #[inline(always)]
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// Per feature: whether it belongs to a gated group (so it is not drawn at the top level).
    pub fn gated_members(&self) -> Vec<bool> {
        let mut member = vec![false; self.gates.len()];
        for (k, &gate) in self.groups.gate.iter().enumerate() {
            if gate >= 0 {
                self.groups
                    .members(k)
                    .iter()
                    .for_each(|&m| member[m as usize] = true);
            }
        }
        member
    }

    /// The gates of rescaled groups, in group order: features whose children scale by their value.
    pub fn rescaling_gates(&self) -> impl Iterator<Item = u32> + '_ {
        let g = &self.groups;
        (0..g.gate.len())
            .filter(|&k| g.gate[k] >= 0 && g.rescale[k])
            .map(|k| g.gate[k] as u32)
    }

    /// What feature q gates, in one record.
    #[inline(always)]
    pub fn gate(&self, q: u32) -> Gate {
        self.gates[q as usize]
    }

    /// The groups feature q gates, from the lists.
    #[inline(always)]
    pub fn gated_by(&self, q: u32) -> &[u32] {
        &self.gated[self.gated_ptr[q as usize]..self.gated_ptr[q as usize + 1]]
    }

    /// Exclusive groups without a gate: their members are top-level features.
    #[inline(always)]
    pub fn free_exclusive(&self) -> &[u32] {
        &self.free_exclusive
    }

    /// Makes every gate's record send the walk to the lists (a test of the records).
    #[cfg(test)]
    pub(crate) fn list_every_gate(&mut self) {
        self.gates.iter_mut().for_each(|g| g.listed = g.len > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group: `(gate, exclusive, rescale, members)`.
    type Spec<'a> = (i32, bool, bool, &'a [u32]);

    fn groups(specs: &[Spec<'_>]) -> Groups {
        let mut g = Groups {
            ptr: vec![0],
            ..Groups::default()
        };
        for &(gate, exclusive, rescale, members) in specs {
            g.gate.push(gate);
            g.exclusive.push(exclusive);
            g.rescale.push(rescale);
            g.members.extend_from_slice(members);
            g.ptr.push(g.members.len());
        }
        g
    }

    #[test]
    fn indexes_gates_runs_and_lists() {
        // Feature 0 gates the run 2..5, feature 1 gates two groups, one not a run; 9 and 8 sit
        // under an organizational root, exclusive.
        let specs: &[Spec<'_>] = &[
            (0, true, true, &[2, 3, 4]),
            (1, false, false, &[5]),
            (1, false, true, &[7, 6]),
            (-1, true, false, &[9, 8]),
        ];
        let h = Hierarchy::new(groups(specs), 10).unwrap();
        let g0 = h.gate(0);
        assert_eq!(
            (g0.first, g0.len, g0.exclusive, g0.rescale),
            (2, 3, true, true)
        );
        assert!(!g0.listed && h.gate(1).listed && h.gated_by(1) == [1, 2]);
        assert!((2..10).all(|q| h.gate(q).len == 0 && !h.gate(q).listed));
        assert_eq!(h.free_exclusive(), [3]);
        assert_eq!(h.rescaling_gates().collect::<Vec<_>>(), [0, 1]);
        let member = h.gated_members();
        assert_eq!(
            (0..10).filter(|&i| member[i]).collect::<Vec<_>>(),
            [2, 3, 4, 5, 6, 7]
        );
        // One non-run group alone is listed too.
        let h = Hierarchy::new(groups(&[(0, false, false, &[3, 2])]), 4).unwrap();
        assert!(h.gate(0).listed && h.gated_by(0) == [0]);
    }

    #[test]
    fn rejects_malformed_groups() {
        let bad: &[&[Spec<'_>]] = &[
            &[(4, false, false, &[1])],                          // gate out of range
            &[(-2, false, false, &[1])],                         // gate below -1
            &[(0, false, false, &[4])],                          // member out of range
            &[(0, false, false, &[1]), (2, false, false, &[1])], // a member twice
            &[(0, false, false, &[1]), (1, false, false, &[0])], // a cycle
            &[(0, false, false, &[0])],                          // gated by itself
        ];
        for specs in bad {
            let e = Hierarchy::new(groups(specs), 4).unwrap_err();
            assert!(e.to_string().starts_with("hierarchy: "), "{e}");
        }
        let mut g = groups(&[(0, false, false, &[1])]);
        g.rescale.clear();
        assert!(g.validate(4).is_err());
        let mut g = groups(&[(0, false, false, &[1])]);
        g.ptr = vec![1, 1];
        assert!(g.validate(4).is_err());
        assert!(
            groups(&[(0, false, false, &[1]), (1, true, false, &[2, 3])])
                .validate(4)
                .is_ok()
        );
    }
}
