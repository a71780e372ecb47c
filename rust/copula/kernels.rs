//! The kernels of [`FactorColumns::bounds`]: AVX-512 (`vpdpwssd` with VNNI, else `vpmaddwd` +
//! `vpaddd`, up to [`FactorColumns::ROWS_AT_ONCE`] rows per read of F), AVX2 and portable. All
//! compute the same exact integer dot products and the same f32/f64 operations in the same order
//! (Rust never fuses multiplies and adds), so every machine gets the same bits.

use super::bounds::{BITS_HI, BITS_LO, BLOCK, GROUP, PART, PARTS, TILE};
use super::{FactorColumns, RowBounds};
use wide::{f32x4, i16x8, i32x4};

impl FactorColumns {
    /// One row in portable SIMD ([`wide`]: `pmaddwd` on SSE2, widening `smull` on NEON, plain
    /// lanes elsewhere; chosen when the crate is compiled, so it serves every build target): the
    /// reference the other kernels match bit for bit.
    pub(super) fn portable(&self, row: usize, out: &mut RowBounds) {
        let (padded, pairs, blocks) = (self.padded(), self.pairs, self.num_blocks());
        let eps = &out.quantized[row * pairs..(row + 1) * pairs];
        let m = out.max_eps[row];
        let lam = &mut out.lam[row * padded..(row + 1) * padded];
        let sums = &mut out.sums[row * blocks * PARTS..(row + 1) * blocks * PARTS];
        // A group line's running sums: lane g belongs to block g of the group.
        let mut line = [0.0f64; GROUP];
        for (t, lt) in lam.chunks_exact_mut(TILE).enumerate() {
            let tile = &self.tiles[2 * t * pairs * TILE..2 * (t + 1) * pairs * TILE];
            let mut acc = [i32x4::ZERO; TILE / 4];
            for (col, &e) in tile.chunks_exact(2 * TILE).zip(eps) {
                // acc[l] += col[2l]·e₀ + col[2l+1]·e₁, e = (e₀, e₁) packed as `quantize` packs it.
                let (e0, e1) = (e as i16, (e >> 16) as i16);
                let e = i16x8::new([e0, e1, e0, e1, e0, e1, e0, e1]);
                for (a, c) in acc.iter_mut().zip(col.chunks_exact(8)) {
                    *a += i16x8::new(c.try_into().expect("8 lanes")).dot(e);
                }
            }
            let at = t * TILE..(t + 1) * TILE;
            let lt: &mut [f32; TILE] = lt.try_into().expect("a tile");
            rates(
                lt,
                &acc,
                &self.c[at.clone()],
                &self.p[at.clone()],
                &self.q[at],
                m,
            );
            for (k, lane) in lt.chunks_exact(GROUP).enumerate() {
                for (s, &l) in line.iter_mut().zip(lane) {
                    *s += l as f64;
                }
                let j = t * TILE + (k + 1) * GROUP; // positions done
                if j.is_multiple_of(PART * GROUP) {
                    let end = j / (PART * GROUP) * GROUP - GROUP;
                    sums[end..end + GROUP].copy_from_slice(&line);
                    if j.is_multiple_of(GROUP * BLOCK) {
                        line = [0.0; GROUP];
                    }
                }
            }
        }
    }

    /// One row with AVX2 (`vpmaddwd` + `vpaddd`, 8 lanes): the same operations as
    /// [`Self::portable`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2(&self, row: usize, out: &mut RowBounds) {
        use std::arch::x86_64::*;
        const V: usize = 8;
        let (pairs, padded, blocks) = (self.pairs, self.padded(), self.num_blocks());
        assert!(out.quantized.len() >= (row + 1) * pairs && out.lam.len() >= (row + 1) * padded);
        assert!(out.sums.len() >= (row + 1) * blocks * PARTS && out.max_eps.len() > row);
        let eps = out.quantized.as_ptr().add(row * pairs);
        let lam = out.lam.as_mut_ptr().add(row * padded);
        let sums = out.sums.as_mut_ptr().add(row * blocks * PARTS);
        let m = _mm256_set1_ps(out.max_eps[row]);
        let (lo_bits, hi_bits) = (_mm256_set1_ps(BITS_LO), _mm256_set1_ps(BITS_HI));
        // A group line's 16 running sums, as 4 vectors of 4 f64.
        let mut line = [_mm256_setzero_pd(); 4];
        for t in 0..padded / TILE {
            let tile = self.tiles.as_ptr().add(2 * t * pairs * TILE);
            let mut acc = [_mm256_setzero_si256(); TILE / V];
            for k in 0..pairs {
                let e = _mm256_set1_epi32(*eps.add(k));
                for (v, a) in acc.iter_mut().enumerate() {
                    let col = _mm256_loadu_si256(tile.add(2 * (k * TILE + v * V)).cast());
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(col, e));
                }
            }
            for (v, &a) in acc.iter().enumerate() {
                // rates(), lane by lane.
                let j = t * TILE + v * V;
                let c = _mm256_loadu_ps(self.c.as_ptr().add(j));
                let p = _mm256_loadu_ps(self.p.as_ptr().add(j));
                let q = _mm256_loadu_ps(self.q.as_ptr().add(j));
                let x = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(a), p), q);
                let bits = _mm256_sub_ps(c, _mm256_mul_ps(m, x));
                let bits = _mm256_min_ps(_mm256_max_ps(bits, lo_bits), hi_bits);
                let l = _mm256_castsi256_ps(_mm256_cvttps_epi32(bits));
                _mm256_storeu_ps(lam.add(j), l);
                // Lanes 0-7 of a group line (even v) or 8-15 (odd v).
                let h = v % 2 * 2;
                line[h] = _mm256_add_pd(line[h], _mm256_cvtps_pd(_mm256_castps256_ps128(l)));
                let upper = _mm256_cvtps_pd(_mm256_extractf128_ps(l, 1));
                line[h + 1] = _mm256_add_pd(line[h + 1], upper);
                if (j + V).is_multiple_of(PART * GROUP) {
                    let at = sums.add((j + V) / (PART * GROUP) * GROUP - GROUP);
                    for (k, &s) in line.iter().enumerate() {
                        _mm256_storeu_pd(at.add(4 * k), s);
                    }
                    if (j + V).is_multiple_of(GROUP * BLOCK) {
                        line = [_mm256_setzero_pd(); 4];
                    }
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn avx512_vnni<const R: usize>(&self, first: usize, out: &mut RowBounds) {
        self.avx512_rows::<R, true>(first, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn avx512<const R: usize>(&self, first: usize, out: &mut RowBounds) {
        self.avx512_rows::<R, false>(first, out)
    }

    /// Rows `first..first + R`: each vector of F̃ is loaded once for all R rows. Integer dot
    /// products by `vpdpwssd` (VNNI) or `vpmaddwd` + `vpaddd`: the same exact sums.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // v and row index several arrays in step
    unsafe fn avx512_rows<const R: usize, const VNNI: bool>(
        &self,
        first: usize,
        out: &mut RowBounds,
    ) {
        use std::arch::x86_64::*;
        const V: usize = 16;
        let (pairs, padded, blocks) = (self.pairs, self.padded(), self.num_blocks());
        assert!(
            out.quantized.len() >= (first + R) * pairs && out.lam.len() >= (first + R) * padded
        );
        assert!(out.sums.len() >= (first + R) * blocks * PARTS && out.max_eps.len() >= first + R);
        let eps = out.quantized.as_ptr().add(first * pairs);
        let lam = out.lam.as_mut_ptr().add(first * padded);
        let sums = out.sums.as_mut_ptr().add(first * blocks * PARTS);
        let m: [__m512; R] = std::array::from_fn(|row| _mm512_set1_ps(out.max_eps[first + row]));
        let (lo_bits, hi_bits) = (_mm512_set1_ps(BITS_LO), _mm512_set1_ps(BITS_HI));
        // Block sums: one group line is one 16-lane vector; sums restart with each group.
        let (mut lo, mut hi) = ([_mm512_setzero_pd(); R], [_mm512_setzero_pd(); R]);
        for t in 0..padded / TILE {
            let tile = self.tiles.as_ptr().add(2 * t * pairs * TILE);
            let mut acc = [[_mm512_setzero_si512(); TILE / V]; R];
            for k in 0..pairs {
                let col: [__m512i; TILE / V] = std::array::from_fn(|v| {
                    _mm512_loadu_si512(tile.add(2 * (k * TILE + v * V)).cast())
                });
                for (row, acc) in acc.iter_mut().enumerate() {
                    let e = _mm512_set1_epi32(*eps.add(row * pairs + k));
                    for (a, &c) in acc.iter_mut().zip(&col) {
                        *a = if VNNI {
                            _mm512_dpwssd_epi32(*a, c, e)
                        } else {
                            _mm512_add_epi32(*a, _mm512_madd_epi16(c, e))
                        };
                    }
                }
            }
            for v in 0..TILE / V {
                // rates(), lane by lane; the lanes' constants serve all R rows.
                let j = t * TILE + v * V;
                let c = _mm512_loadu_ps(self.c.as_ptr().add(j));
                let p = _mm512_loadu_ps(self.p.as_ptr().add(j));
                let q = _mm512_loadu_ps(self.q.as_ptr().add(j));
                for row in 0..R {
                    let dot = _mm512_cvtepi32_ps(acc[row][v]);
                    let x = _mm512_add_ps(_mm512_mul_ps(dot, p), q);
                    let bits = _mm512_sub_ps(c, _mm512_mul_ps(m[row], x));
                    let bits = _mm512_min_ps(_mm512_max_ps(bits, lo_bits), hi_bits);
                    let l = _mm512_castsi512_ps(_mm512_cvttps_epi32(bits));
                    _mm512_storeu_ps(lam.add(row * padded + j), l);
                    let upper = _mm512_extractf64x4_pd(_mm512_castps_pd(l), 1);
                    lo[row] = _mm512_add_pd(lo[row], _mm512_cvtps_pd(_mm512_castps512_ps256(l)));
                    hi[row] = _mm512_add_pd(hi[row], _mm512_cvtps_pd(_mm256_castpd_ps(upper)));
                    if (j + V).is_multiple_of(PART * GROUP) {
                        // The end of a part: j's group, part and row give the place.
                        let at = sums
                            .add(row * blocks * PARTS + (j + V) / (PART * GROUP) * GROUP - GROUP);
                        _mm512_storeu_pd(at, lo[row]);
                        _mm512_storeu_pd(at.add(8), hi[row]);
                        if (j + V).is_multiple_of(GROUP * BLOCK) {
                            (lo[row], hi[row]) = (_mm512_setzero_pd(), _mm512_setzero_pd());
                        }
                    }
                }
            }
        }
    }
}

/// The rates of a tile's lanes from their rate lines: the float whose bits are
/// `C - m·(dot·P + Q)` clamped to `[BITS_LO, BITS_HI]`, with the same f32 operations as the vector
/// kernels (no fused multiply-adds; the clamp as their `max` then `min`, NaN giving `BITS_LO`).
#[inline(always)]
fn rates(out: &mut [f32; TILE], dot: &[i32x4; TILE / 4], c: &[f32], p: &[f32], q: &[f32], m: f32) {
    let (lo, hi, m) = (
        f32x4::splat(BITS_LO),
        f32x4::splat(BITS_HI),
        f32x4::splat(m),
    );
    for (l, (d, out)) in dot.iter().zip(out.chunks_exact_mut(4)).enumerate() {
        let lanes = |x: &[f32]| f32x4::new(x[4 * l..4 * l + 4].try_into().expect("4 lanes"));
        let x = d.round_float() * lanes(p) + lanes(q);
        // After the clamp every lane is finite and in (0, 2³¹): truncation is exact everywhere.
        let bits = (lanes(c) - m * x).max(lo).min(hi).fast_trunc_int();
        for (o, b) in out.iter_mut().zip(bits.to_array()) {
            *o = f32::from_bits(b as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copula::tests::{copula, rows_of_eps};

    fn portable_row(cols: &FactorColumns, e: &[f32]) -> RowBounds {
        let mut one = RowBounds::default();
        one.padded = cols.padded();
        one.max_eps = vec![cols.quantize(e, &mut one.quantized)];
        one.lam.resize(cols.padded(), 0.0);
        one.sums.resize(cols.num_blocks() * PARTS, 0.0);
        cols.portable(0, &mut one);
        one
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        for r in [1, 7, 25] {
            let c = copula(300, r, 0.3);
            let cols = FactorColumns::new(&c, (0..300).collect());
            // Seven rows: batches of 4 and 3 on wide vectors, each row as if alone.
            let eps = rows_of_eps(7, r);
            let mut all = RowBounds::default();
            cols.bounds(&eps, &mut all);
            let (p, nb) = (cols.padded(), cols.num_blocks());
            for (k, e) in eps.chunks(r).enumerate() {
                let one = portable_row(&cols, e);
                assert_eq!(
                    bits(&all.lam[k * p..(k + 1) * p]),
                    bits(&one.lam),
                    "rank {r}, row {k}"
                );
                assert_eq!(
                    bits64(&all.sums[k * nb * PARTS..(k + 1) * nb * PARTS]),
                    bits64(&one.sums)
                );
            }
            #[cfg(target_arch = "x86_64")]
            if crate::kernel::Kernel::detected() >= crate::kernel::Kernel::Avx2 {
                let mut avx2 = RowBounds::default();
                cols.bounds(&eps, &mut avx2);
                avx2.lam.fill(0.0);
                for k in 0..7 {
                    // SAFETY: the CPU supports AVX2 (checked above).
                    unsafe { cols.avx2(k, &mut avx2) };
                }
                assert_eq!(bits(&avx2.lam), bits(&all.lam), "rank {r}");
                assert_eq!(bits64(&avx2.sums), bits64(&all.sums), "rank {r}");
            }
            #[cfg(target_arch = "x86_64")]
            if crate::kernel::Kernel::detected() >= crate::kernel::Kernel::Avx512 {
                // vpmaddwd + vpaddd instead of VNNI: the same exact sums.
                let mut madd = RowBounds::default();
                cols.bounds(&eps, &mut madd);
                madd.lam.fill(0.0);
                // SAFETY: AVX-512F and BW are available (checked above).
                unsafe {
                    cols.avx512::<4>(0, &mut madd);
                    cols.avx512::<3>(4, &mut madd);
                }
                assert_eq!(bits(&madd.lam), bits(&all.lam), "rank {r}");
                assert_eq!(bits64(&madd.sums), bits64(&all.sums), "rank {r}");
            }
        }
    }

    fn bits(x: &[f32]) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    fn bits64(x: &[f64]) -> Vec<u64> {
        x.iter().map(|v| v.to_bits()).collect()
    }
}
