//! Independent features: feature i fires with probability p_i, independently; a firing feature's
//! value is `relu(mean_i + std_i * N(0, 1))` (SAELens semantics). Entries that end up 0 are not
//! stored, so a row's CSR support is exactly its set of active (> 0) features.

use crate::csr::{build_rows, Csr, RowSink};
use crate::error::{Error, Result};
use crate::hazard::{merge_sorted, HazardTable};
use crate::rng::{row_rng_from_base, stream_base, RowRng, Stream};
use crate::threads;
use rand_distr::{Distribution, StandardNormal};

/// Rows walked in lockstep per thread (an execution detail: output does not depend on it).
const LANES: usize = 4;

/// A per-feature f32 parameter given either once for all features or per feature.
#[derive(Debug, Clone, PartialEq)]
pub enum PerFeature {
    Scalar(f32),
    Vector(Vec<f32>),
}

impl PerFeature {
    /// From a slice of length 1 (broadcast) or `num_features`.
    pub fn from_slice(v: &[f32], num_features: usize, name: &'static str) -> Result<Self> {
        match v.len() {
            1 => Ok(PerFeature::Scalar(v[0])),
            k if k == num_features => Ok(PerFeature::Vector(v.to_vec())),
            k => Err(Error::value(
                name,
                format!("must be a scalar or have shape ({num_features},), got {k} values"),
            )),
        }
    }

    #[inline]
    pub fn get(&self, i: u32) -> f32 {
        match self {
            PerFeature::Scalar(x) => *x,
            PerFeature::Vector(v) => v[i as usize],
        }
    }

    fn values(&self) -> &[f32] {
        match self {
            PerFeature::Scalar(x) => std::slice::from_ref(x),
            PerFeature::Vector(v) => v,
        }
    }
}

/// Checks the magnitudes of `num_features` features: `mean` finite, `std` finite and >= 0, and
/// `|mean| + 64 std` within float32 range, so that no sampled value can overflow.
pub fn check_magnitudes(mean: &PerFeature, std: &PerFeature, num_features: usize) -> Result<()> {
    for (name, values) in [
        ("mean_magnitudes", mean.values()),
        ("std_magnitudes", std.values()),
    ] {
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(Error::value(
                name,
                format!("must be finite; entry {i} is {}", values[i]),
            ));
        }
    }
    if let Some(i) = std.values().iter().position(|&x| x < 0.0) {
        return Err(Error::value(
            "std_magnitudes",
            format!("must be >= 0; entry {i} is {}", std.values()[i]),
        ));
    }
    let n = num_features as u32;
    if let Some(i) =
        (0..n).find(|&i| mean.get(i).abs() as f64 + 64.0 * std.get(i) as f64 > f32::MAX as f64)
    {
        return Err(Error::value(
            "mean_magnitudes",
            format!("|mean| + 64 std overflows float32 at feature {i}"),
        ));
    }
    Ok(())
}

/// Sampler of independent features with per-feature magnitudes.
#[derive(Debug, Clone)]
pub struct IndependentSampler {
    table: HazardTable,
    mean: PerFeature,
    std: PerFeature,
    /// All stds are 0: magnitudes need no random numbers.
    fixed_magnitudes: bool,
}

impl IndependentSampler {
    /// `p` in [0, 1]; magnitudes as [`check_magnitudes`] requires.
    pub fn new(p: &[f64], mean: PerFeature, std: PerFeature) -> Result<Self> {
        let table = HazardTable::new(p, "firing_probabilities")?;
        check_magnitudes(&mean, &std, p.len())?;
        let fixed_magnitudes = std.values().iter().all(|&s| s == 0.0);
        Ok(IndependentSampler {
            table,
            mean,
            std,
            fixed_magnitudes,
        })
    }

    /// Number of features N.
    pub fn num_features(&self) -> usize {
        self.table.num_features()
    }

    /// Rows `start .. start + n` of the stream seeded by `seed`, as CSR `[n, N]`.
    pub fn sample(&self, seed: u64, start: u64, n: u64, num_threads: Option<usize>) -> Result<Csr> {
        let fire = stream_base(seed, Stream::Firing);
        let mag = stream_base(seed, Stream::Magnitude);
        threads::install(num_threads, || {
            build_rows(start, n, |rows, sink| {
                let mut lanes: [Vec<u32>; LANES] = Default::default();
                for first in rows.clone().step_by(LANES) {
                    let live = (rows.end - first).min(LANES as u64) as usize;
                    let mut rngs: [RowRng; LANES] =
                        std::array::from_fn(|k| row_rng_from_base(fire, first + k as u64));
                    self.table
                        .walk_lanes(&mut rngs, live, |k, j| lanes[k].push(j));
                    for (k, line) in lanes.iter_mut().enumerate().take(live) {
                        self.write_row(line, mag, first + k as u64, sink);
                        line.clear();
                    }
                }
            })
        })?
    }

    /// Writes one row's entries given its firing line features (ascending).
    #[inline]
    fn write_row(&self, line: &[u32], mag: u64, row: u64, sink: &mut RowSink) {
        let certain = self.table.certain();
        if self.fixed_magnitudes {
            merge_sorted(
                line,
                certain,
                |j| j,
                |j| {
                    let v = self.mean.get(j).max(0.0);
                    if v > 0.0 {
                        sink.push(j, v);
                    }
                },
            );
        } else {
            let mut rng = row_rng_from_base(mag, row);
            merge_sorted(
                line,
                certain,
                |j| j,
                |j| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    let v = (self.mean.get(j) + self.std.get(j) * z as f32).max(0.0);
                    if v > 0.0 {
                        sink.push(j, v);
                    }
                },
            );
        }
        sink.end_row();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(p: &[f64], std: f32) -> IndependentSampler {
        IndependentSampler::new(p, PerFeature::Scalar(1.0), PerFeature::Scalar(std)).unwrap()
    }

    #[test]
    fn rows_are_identical_for_any_split_and_thread_count() {
        let p: Vec<f64> = (0..1000).map(|i| 0.3 / (1.0 + i as f64)).collect();
        let s = sampler(&p, 0.5);
        let whole = s.sample(9, 0, 2000, Some(1)).unwrap();
        for threads in [Some(2), Some(3), None] {
            assert_eq!(s.sample(9, 0, 2000, threads).unwrap(), whole);
        }
        let part = s.sample(9, 777, 600, Some(2)).unwrap();
        let (a, b) = (whole.indptr[777] as usize, whole.indptr[1377] as usize);
        assert_eq!(part.indices, whole.indices[a..b]);
        assert_eq!(part.values, whole.values[a..b]);
        let shifted: Vec<i64> = whole.indptr[777..=1377]
            .iter()
            .map(|x| x - a as i64)
            .collect();
        assert_eq!(part.indptr, shifted);
    }

    #[test]
    fn magnitudes_do_not_change_the_firing_pattern() {
        let p = vec![0.2; 50];
        let a = sampler(&p, 0.0).sample(1, 0, 300, None).unwrap();
        let b = IndependentSampler::new(&p, PerFeature::Scalar(3.0), PerFeature::Scalar(0.01))
            .unwrap()
            .sample(1, 0, 300, None)
            .unwrap();
        assert_eq!(a.indptr, b.indptr);
        assert_eq!(a.indices, b.indices);
        assert!(a.values.iter().all(|&v| v == 1.0));
        assert!(b.values.iter().all(|&v| (v - 3.0).abs() < 0.1));
    }

    #[test]
    fn zero_rows_and_negative_means() {
        let s = sampler(&[0.5, 0.5], 0.0);
        let e = s.sample(0, 10, 0, None).unwrap();
        assert_eq!((e.indptr, e.indices.len()), (vec![0], 0));
        let neg =
            IndependentSampler::new(&[1.0], PerFeature::Scalar(-1.0), PerFeature::Scalar(0.0))
                .unwrap();
        assert!(neg.sample(0, 0, 10, None).unwrap().indices.is_empty());
    }

    #[test]
    fn rejects_bad_magnitudes() {
        let p = [0.5, 0.5];
        let err = |m: &[f32], s: &[f32]| {
            let m = PerFeature::from_slice(m, 2, "mean_magnitudes")?;
            let s = PerFeature::from_slice(s, 2, "std_magnitudes")?;
            IndependentSampler::new(&p, m, s).map(|_| ())
        };
        let name = |r: Result<()>| r.unwrap_err().name();
        assert_eq!(name(err(&[1.0, 2.0, 3.0], &[0.0])), "mean_magnitudes");
        assert_eq!(name(err(&[f32::NAN], &[0.0])), "mean_magnitudes");
        assert_eq!(name(err(&[1.0], &[-1.0, 0.0])), "std_magnitudes");
        assert_eq!(name(err(&[1.0], &[f32::INFINITY])), "std_magnitudes");
        assert_eq!(name(err(&[1.0], &[1e38])), "mean_magnitudes");
        let s = sampler(&p, 0.0);
        assert_eq!(
            s.sample(0, u64::MAX, 2, None)
                .unwrap_err()
                .to_string()
                .split(':')
                .next(),
            Some("start")
        );
    }
}
