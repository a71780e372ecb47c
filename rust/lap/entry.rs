//! Matrix entry types (f32, f64) and their block screens: which of [`LANES`] entries need an
//! exact look. The AVX2 versions give the same bits as the portable ones.

use super::passes::LANES;
use std::ops::{Neg, Sub};

/// Matrix entries the solver reads (costs are used in f64).
pub trait Entry:
    Copy + Send + Sync + PartialOrd + Sub<Output = Self> + Neg<Output = Self> + 'static
{
    const INFINITY: Self;
    const NEG_INFINITY: Self;
    const MAX: Self;

    fn to_f64(self) -> f64;

    /// `-self` when `negate`, else `self` (exact).
    #[inline(always)]
    fn signed(self, negate: bool) -> Self {
        if negate {
            -self
        } else {
            self
        }
    }

    /// The smallest value `>= x` (`+inf` above the range).
    fn round_up(x: f64) -> Self;

    /// Bit k set when `c = x[k].signed(negate)` is NaN or below `worst[k]` or below `row`.
    #[inline(always)]
    fn screen_top(x: &[Self], worst: &[Self], row: Self, negate: bool) -> u32 {
        let mut bits = 0;
        for k in 0..LANES {
            let c = x[k].signed(negate);
            let keep = (c >= worst[k]) & (c >= row);
            bits |= (!keep as u32) << k;
        }
        bits
    }

    /// With `r = fl(x[k].signed(negate) - sub[k])`: bit k set when `r <= cmp[k]`, and
    /// `acc[k] = min(acc[k], r)` (a NaN `r` is ignored).
    #[inline(always)]
    fn screen_rc(x: &[Self], sub: &[Self], cmp: &[Self], negate: bool, acc: &mut [Self]) -> u32 {
        let mut bits = 0;
        for k in 0..LANES {
            let r = x[k].signed(negate) - sub[k];
            bits |= ((r <= cmp[k]) as u32) << k;
            if r < acc[k] {
                acc[k] = r;
            }
        }
        bits
    }

    /// [`Entry::screen_top`] with AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline(always)]
    unsafe fn screen_top_avx2(x: &[Self], worst: &[Self], row: Self, negate: bool) -> u32 {
        Self::screen_top(x, worst, row, negate)
    }

    /// [`Entry::screen_rc`] with AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline(always)]
    unsafe fn screen_rc_avx2(
        x: &[Self],
        sub: &[Self],
        cmp: &[Self],
        negate: bool,
        acc: &mut [Self],
    ) -> u32 {
        Self::screen_rc(x, sub, cmp, negate, acc)
    }
}

impl Entry for f64 {
    const INFINITY: Self = f64::INFINITY;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    const MAX: Self = f64::MAX;

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }

    #[inline(always)]
    fn round_up(x: f64) -> Self {
        x
    }
}

impl Entry for f32 {
    const INFINITY: Self = f32::INFINITY;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    const MAX: Self = f32::MAX;

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }

    #[inline(always)]
    fn round_up(x: f64) -> Self {
        let f = x as f32;
        if (f as f64) < x {
            f.next_up()
        } else {
            f
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn screen_top_avx2(x: &[Self], worst: &[Self], row: Self, negate: bool) -> u32 {
        use std::arch::x86_64::*;
        assert!(x.len() >= LANES && worst.len() >= LANES);
        let sign = _mm256_set1_ps(if negate { -0.0 } else { 0.0 });
        let row = _mm256_set1_ps(row);
        let mut bits = 0;
        for h in 0..LANES / 8 {
            // SAFETY: both slices hold LANES values (asserted).
            let (c, w) = unsafe {
                (
                    _mm256_loadu_ps(x.as_ptr().add(8 * h)),
                    _mm256_loadu_ps(worst.as_ptr().add(8 * h)),
                )
            };
            let c = _mm256_xor_ps(c, sign);
            // "Not >=" is also true for NaN.
            let low = _mm256_or_ps(
                _mm256_cmp_ps::<_CMP_NGE_UQ>(c, w),
                _mm256_cmp_ps::<_CMP_NGE_UQ>(c, row),
            );
            bits |= (_mm256_movemask_ps(low) as u32) << (8 * h);
        }
        bits
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn screen_rc_avx2(
        x: &[Self],
        sub: &[Self],
        cmp: &[Self],
        negate: bool,
        acc: &mut [Self],
    ) -> u32 {
        use std::arch::x86_64::*;
        assert!(x.len() >= LANES && sub.len() >= LANES && cmp.len() >= LANES && acc.len() >= LANES);
        let sign = _mm256_set1_ps(if negate { -0.0 } else { 0.0 });
        let mut bits = 0;
        for h in 0..LANES / 8 {
            // SAFETY: every slice holds LANES values (asserted).
            unsafe {
                let c = _mm256_xor_ps(_mm256_loadu_ps(x.as_ptr().add(8 * h)), sign);
                let r = _mm256_sub_ps(c, _mm256_loadu_ps(sub.as_ptr().add(8 * h)));
                let k = _mm256_loadu_ps(cmp.as_ptr().add(8 * h));
                bits |= (_mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(r, k)) as u32) << (8 * h);
                // min_ps returns its second operand when the first is NaN.
                let a = acc.as_mut_ptr().add(8 * h);
                _mm256_storeu_ps(a, _mm256_min_ps(r, _mm256_loadu_ps(a)));
            }
        }
        bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries, thresholds and duals around the interesting values, in every lane position.
    fn samples() -> Vec<f32> {
        let mut v = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            1.0e-30,
            3.0e38,
            -3.0e38,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1.0f32.next_up(),
            1.0f32.next_down(),
        ];
        let mut seed = 7u64;
        for _ in 0..51 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            v.push(((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0);
        }
        v
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_screens_match_the_portable_ones() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let s = samples();
        for shift in 0..s.len() {
            let x: Vec<f32> = (0..LANES).map(|k| s[(k + shift) % s.len()]).collect();
            let w: Vec<f32> = (0..LANES)
                .map(|k| s[(3 * k + shift + 1) % s.len()])
                .collect();
            let a: Vec<f32> = (0..LANES)
                .map(|k| s[(5 * k + shift + 2) % s.len()])
                .collect();
            for &row in &s {
                let rows = [row; LANES];
                for negate in [false, true] {
                    let (mut acc_simd, mut acc) = (a.clone(), a.clone());
                    // SAFETY: AVX2 is available (checked above).
                    let (top, rc) = unsafe {
                        (
                            f32::screen_top_avx2(&x, &w, row, negate),
                            f32::screen_rc_avx2(&x, &w, &rows, negate, &mut acc_simd),
                        )
                    };
                    assert_eq!(top, f32::screen_top(&x, &w, row, negate));
                    assert_eq!(rc, f32::screen_rc(&x, &w, &rows, negate, &mut acc));
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&acc_simd), bits(&acc));
                }
            }
        }
    }

    #[test]
    fn round_up_is_the_least_f32_not_below() {
        for x in [0.1f64, -0.1, 1.0, 1e-50, -1e-50, 1e39, -1e39, 0.0] {
            let f = f32::round_up(x);
            assert!(f as f64 >= x, "{x}");
            assert!((f.next_down() as f64) < x, "{x}");
        }
    }
}
