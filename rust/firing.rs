//! Per-feature firing probabilities with SAELens's formulas
//! (`sae_lens.synthetic.firing_probabilities`).
//!
//! Values follow SAELens's float32 torch arithmetic operation by operation, so they agree with it
//! to about one ulp (torch's vectorised `pow`/`linspace` may round the last bit differently).
//! (`random` draws from torch's generator and therefore lives in the Python layer.)

use crate::error::{Error, Result};
use crate::memory;

fn check_len(num_features: usize) -> Result<()> {
    if num_features == 0 {
        return Err(Error::value("num_features", "must be at least 1"));
    }
    // The probabilities and one float32 scratch vector of the same length.
    let what = format!("{num_features} firing probabilities");
    memory::check("num_features", 8.0 * num_features as f64, &what)
}

/// `0 < min_prob (<|<=) max_prob <= 1`, with the comparison SAELens uses for each generator.
fn check_range(max_prob: f64, min_prob: f64, strict: bool) -> Result<()> {
    if !(max_prob > 0.0 && max_prob <= 1.0) {
        return Err(Error::value(
            "max_prob",
            format!("must be in (0, 1], got {max_prob}"),
        ));
    }
    if min_prob.is_nan() || min_prob <= 0.0 {
        return Err(Error::value(
            "min_prob",
            format!("must be > 0, got {min_prob}"),
        ));
    }
    let ordered = if strict {
        min_prob < max_prob
    } else {
        min_prob <= max_prob
    };
    if !ordered {
        let op = if strict { "<" } else { "<=" };
        return Err(Error::value(
            "min_prob",
            format!("must be {op} max_prob, got min_prob={min_prob}, max_prob={max_prob}"),
        ));
    }
    Ok(())
}

/// Zipfian: rank k = 1..N, q_k = k^-exponent rescaled linearly so that p_1 = max_prob and
/// p_N = min_prob.
///
/// Evaluated in float32 step by step as SAELens does (`min + (max - min) * (q - q_min) / (q_max -
/// q_min)`), so the result carries the same rounding. Bit-identical to SAELens when torch's `pow`
/// is exact (exponent 1); otherwise torch's ~1-ulp vectorised `pow` bounds the agreement.
pub fn zipfian(
    num_features: usize,
    exponent: f64,
    max_prob: f64,
    min_prob: f64,
) -> Result<Vec<f32>> {
    check_len(num_features)?;
    if !(exponent > 0.0 && exponent.is_finite()) {
        return Err(Error::value(
            "exponent",
            format!("must be a finite number > 0, got {exponent}"),
        ));
    }
    check_range(max_prob, min_prob, true)?;
    if num_features == 1 {
        return Ok(vec![max_prob as f32]);
    }
    let e = exponent as f32;
    let q: Vec<f32> = (1..=num_features)
        .map(|k| 1.0 / (k as f32).powf(e))
        .collect();
    let (q_max, q_min) = (q[0], q[num_features - 1]);
    let (lo, width, span) = (min_prob as f32, (max_prob - min_prob) as f32, q_max - q_min);
    Ok(q.into_iter()
        .map(|qk| lo + width * (qk - q_min) / span)
        .collect())
}

/// Linear: torch `linspace(max_prob, min_prob, N)` in float32 (descending).
pub fn linear(num_features: usize, max_prob: f64, min_prob: f64) -> Result<Vec<f32>> {
    check_len(num_features)?;
    check_range(max_prob, min_prob, false)?;
    Ok(linspace_f32(max_prob as f32, min_prob as f32, num_features))
}

/// Constant probability for every feature.
pub fn constant(num_features: usize, probability: f64) -> Result<Vec<f32>> {
    check_len(num_features)?;
    if !(0.0..=1.0).contains(&probability) {
        return Err(Error::value(
            "probability",
            format!("must be in [0, 1], got {probability}"),
        ));
    }
    Ok(vec![probability as f32; num_features])
}

/// torch's float32 `linspace`: the first half counts up from `start`, the second half down from
/// `end`.
pub fn linspace_f32(start: f32, end: f32, steps: usize) -> Vec<f32> {
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f32;
    let half = steps / 2;
    (0..steps)
        .map(|i| {
            if i < half {
                start + step * i as f32
            } else {
                end - step * (steps - 1 - i) as f32
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipfian_check_values() {
        // SAELens check values (reference doc §2.2), float32 torch.
        let want = [
            0.3, 0.147368, 0.096491, 0.071053, 0.055789, 0.045614, 0.038346, 0.032895, 0.028655,
            0.025263, 0.022488, 0.020175, 0.018219, 0.016541, 0.015088, 0.013816, 0.012693,
            0.011696, 0.010803, 0.01,
        ];
        let got = zipfian(20, 1.0, 0.3, 0.01).unwrap();
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() <= 5e-7, "{g} vs {w}");
        }
    }

    #[test]
    fn zipfian_16k_preset_values() {
        let p = zipfian(16384, 0.5, 0.4, 5e-4).unwrap();
        for (i, w) in [
            (0, 0.4),
            (1, 0.2820678),
            (127, 0.0329435),
            (10879, 0.0012145),
            (16383, 0.0005),
        ] {
            // The doc rounds to 7 decimals: allow half a unit there plus f32 rounding.
            assert!(
                (p[i] as f64 - w).abs() <= 5e-8 + 1e-7 * w,
                "p[{i}]={} vs {w}",
                p[i]
            );
        }
        let sum: f64 = p.iter().map(|&x| x as f64).sum();
        assert!((sum - 59.144).abs() < 1e-3, "{sum}");
    }

    #[test]
    fn linspace_matches_torch_check_values() {
        // torch.linspace(5, 4, 16384) check values (reference doc §2.3).
        let v = linspace_f32(5.0, 4.0, 16384);
        assert_eq!(v[1], 4.999_939);
        assert_eq!(v[8191], 4.500_030_5);
        assert_eq!(v[8192], 4.499_969_5);
        assert_eq!((v[0], v[16383]), (5.0, 4.0));
    }

    #[test]
    fn validation_names_the_argument() {
        let name = |r: Result<Vec<f32>>| r.unwrap_err().name();
        assert_eq!(name(zipfian(0, 1.0, 0.3, 0.01)), "num_features");
        assert_eq!(name(zipfian(5, 0.0, 0.3, 0.01)), "exponent");
        assert_eq!(name(zipfian(5, 1.0, 1.5, 0.01)), "max_prob");
        assert_eq!(name(zipfian(5, 1.0, 0.3, 0.3)), "min_prob");
        assert_eq!(name(zipfian(5, 1.0, 0.3, f64::NAN)), "min_prob");
        assert_eq!(name(linear(5, 0.3, 0.4)), "min_prob");
        assert!(linear(5, 0.3, 0.3).is_ok());
        assert_eq!(name(constant(5, -0.1)), "probability");
        assert_eq!(zipfian(1, 1.0, 0.3, 0.01).unwrap(), vec![0.3f32]);
    }
}
