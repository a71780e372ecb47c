//! The copula's hazard math: the survival function Φ̄, the hazard `-ln Φ(w)` of a feature whose
//! threshold gap is w, the thinning test that turns a bounded rate into the exact `Φ̄(w)`, and the
//! tangents of `log2 hazard` from which [`super::FactorColumns`] builds its rate bounds.

/// `Φ̄(w) = P(N(0, 1) > w)`.
#[inline]
pub fn normal_sf(w: f64) -> f64 {
    0.5 * libm::erfc(w * std::f64::consts::FRAC_1_SQRT_2)
}

/// The hazard `-ln Φ(w) = -ln(1 - Φ̄(w))` of firing when the threshold gap is w.
#[inline]
pub fn hazard(w: f64) -> f64 {
    -(-normal_sf(w)).ln_1p()
}

/// Whether a candidate with rate `l` (>= `hazard(w)`) and gap w survives thinning, given a uniform
/// `keep`: `keep · (1 - e^{-l}) < Φ̄(w)`. Most candidates are decided by brackets of both sides
/// (a table of Φ̄ on a 1/128 grid, which falls with w, and Taylor bounds of `1 - e^{-l}` for
/// l <= 1/16); the rest, within ~2 % of the boundary, are computed exactly.
#[inline]
pub fn survives_thinning(w: f64, l: f32, keep: f64) -> bool {
    let l = l as f64;
    if l <= 1.0 / 16.0 {
        if let Some((below, above)) = survival_bracket(w) {
            let low = l - 0.5 * l * l; // 1 - e^{-l} lies in [low, low + l³/6]
            let (least, most) = (keep * low, keep * (low + l * l * l / 6.0));
            // 1e-12: room for the rounding of these bounds.
            if most * (1.0 + 1e-12) < below {
                return true;
            }
            if least > above * (1.0 + 1e-12) {
                return false;
            }
        }
    }
    keep * -(-l).exp_m1() < normal_sf(w)
}

/// Grid of [`survival_bracket`]: w = SURVIVAL_LOW + k / SURVIVAL_STEPS for k = 0..=SURVIVAL_LEN.
const SURVIVAL_LOW: f64 = -8.0;
const SURVIVAL_STEPS: f64 = 128.0;
const SURVIVAL_LEN: usize = 16 * 128;

/// `(Φ̄(w_{k+1}), Φ̄(w_k))` for the grid cell `[w_k, w_{k+1})` holding w, if inside the grid.
#[inline]
fn survival_bracket(w: f64) -> Option<(f64, f64)> {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..=SURVIVAL_LEN)
            .map(|k| normal_sf(SURVIVAL_LOW + k as f64 / SURVIVAL_STEPS))
            .collect()
    });
    let x = (w - SURVIVAL_LOW) * SURVIVAL_STEPS;
    if !(x >= 1.0 && x < (SURVIVAL_LEN - 1) as f64) {
        return None;
    }
    // Grid points are exact in f64; the rounding of x can only misplace w by one cell.
    let grid = |k: usize| SURVIVAL_LOW + k as f64 / SURVIVAL_STEPS;
    let mut k = x as usize;
    if w < grid(k) {
        k -= 1;
    } else if w >= grid(k + 1) {
        k += 1;
    }
    Some((table[k + 1], table[k]))
}

/// `L'(w)` for `L(w) = log2 hazard(w)`: `-φ(w) / (Φ(w) · hazard(w) · ln 2)`.
pub(super) fn log2_hazard_slope(w: f64) -> f64 {
    let density = (-0.5 * w * w).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let below = 0.5 * libm::erfc(-w * std::f64::consts::FRAC_1_SQRT_2);
    -density / (below * hazard(w) * std::f64::consts::LN_2)
}

/// Range of tangent points (outside it, tangents are still bounds, only looser).
const TANGENT_RANGE: (f64, f64) = (-6.0, 9.5);
/// Added to every tangent, in log2: covers the f32 rounding of the rate's last steps.
pub(super) const LOG2_MARGIN: f64 = 1e-3;
/// Rates are capped at `2^9.45 ≈ 699`, which still bounds `hazard(w)` for w > -37; below that
/// `Φ̄(w)` is 1 in f64 and thinning is exact anyway.
pub(super) const LOG2_CAP: f64 = 9.45;

/// The tangent point of feature j's bound: where `E[2^tangent(w)]` is least when the gap is
/// `w = (t - u)/s` with `u ~ N(0, σ²)` (the load's law over rows). Setting the derivative to zero
/// gives `c = t/s + ln 2 · (σ/s)² · L'(c)`, a contraction for σ/s < 1 (iterated a few times).
pub(super) fn tangent_point(gap: f64, spread: f64) -> f64 {
    let v = std::f64::consts::LN_2 * spread * spread;
    let mut c = gap.clamp(TANGENT_RANGE.0, TANGENT_RANGE.1);
    for _ in 0..8 {
        c = (gap + v * log2_hazard_slope(c)).clamp(TANGENT_RANGE.0, TANGENT_RANGE.1);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn tangents_of_log2_hazard_bound_it() {
        // L(w) = log2 hazard(w), with Φ(w) taken directly for w < 0 (1 - Φ̄ loses it there).
        let l = |w: f64| {
            match w < 0.0 {
                true => -(0.5 * libm::erfc(-w * std::f64::consts::FRAC_1_SQRT_2)).ln(),
                false => hazard(w),
            }
            .log2()
        };
        // L is concave: second differences are <= 0 (up to f64 noise) on [-37, 37].
        let h = 0.01;
        let mut w = -37.0;
        while w < 37.0 {
            assert!(l(w - h) + l(w + h) - 2.0 * l(w) <= 1e-9, "w = {w}");
            if (-6.5..10.0).contains(&w) {
                let numeric = (l(w + 1e-6) - l(w - 1e-6)) / 2e-6;
                let slope = log2_hazard_slope(w);
                assert!(
                    (slope - numeric).abs() <= 1e-5 * (1.0 + numeric.abs()),
                    "w = {w}"
                );
            }
            w += 0.0173;
        }
        // So every tangent, margin included, lies above it, also far from its point.
        for at in [-6.0, -2.3, 0.0, 1.7, 3.1, 6.2, 9.5] {
            let slope = log2_hazard_slope(at);
            let mut w = -37.0;
            while w < 37.0 {
                assert!(
                    l(at) + slope * (w - at) + LOG2_MARGIN >= l(w),
                    "at {at}, w = {w}"
                );
                w += 0.0311;
            }
        }
        // The best tangent point sits below the mean gap, by about ln 2 · spread² · |L'|.
        let c = tangent_point(3.0, 0.5);
        assert!(c < 3.0 && c > 3.0 - 0.25 * 6.0, "{c}");
        assert_eq!(tangent_point(3.0, 0.0), 3.0);
        assert_eq!(tangent_point(50.0, 0.1), TANGENT_RANGE.1);
    }

    #[test]
    fn thinning_brackets_decide_as_the_exact_test() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
        let (mut bracketed, mut total) = (0, 0);
        for _ in 0..200_000 {
            let u: [f64; 3] = std::array::from_fn(|_| rand::RngExt::random(&mut rng));
            let w = -10.0 + 20.0 * u[0];
            // Rates from just above the hazard to far above it, and some above 1/16.
            let l = (hazard(w) * (1.0 + 3.0 * u[1] * u[1]) + 1e-30) as f32;
            let l = if (l as f64) < hazard(w) {
                l.next_up()
            } else {
                l
            };
            let exact_value = -(-(l as f64)).exp_m1() / normal_sf(w);
            // keep near the boundary half the time.
            let keep = if u[2] < 0.5 {
                u[2] * 2.0
            } else {
                (1.0 + (u[2] - 0.75) * 0.1) / exact_value
            };
            let exact = keep * -(-(l as f64)).exp_m1() < normal_sf(w);
            total += 1;
            if (keep * exact_value - 1.0).abs() > 1e-9 {
                assert_eq!(
                    survives_thinning(w, l, keep),
                    exact,
                    "w {w}, l {l}, keep {keep}"
                );
            }
            if l as f64 <= 1.0 / 16.0 && survival_bracket(w).is_some() {
                bracketed += 1;
            }
        }
        assert!(
            bracketed > total / 4,
            "the brackets were rarely tried: {bracketed}"
        );
    }
}
