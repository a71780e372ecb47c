//! Compressed sparse rows: the batches the samplers fill ([`Csr`], row by row in parallel by
//! [`build_rows`]), CSR arrays borrowed from Python ([`CsrRef`]) with the crate's one CSR check,
//! the non-zeros of a dense batch ([`from_dense`]) and the hidden activations `a·W + b` of a batch
//! ([`hidden`]).

use crate::error::{Error, Result};
use crate::memory;
use rayon::prelude::*;

/// A batch of sparse rows: row r holds `indices[indptr[r]..indptr[r+1]]` (ascending) with `values`.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    pub indptr: Vec<i64>,
    pub indices: Vec<i32>,
    pub values: Vec<f32>,
}

impl Csr {
    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// The same arrays, borrowed (to [`CsrRef::check`] them, say).
    pub fn view(&self) -> CsrRef<'_> {
        CsrRef {
            indptr: &self.indptr,
            indices: &self.indices,
            values: Some(&self.values),
        }
    }
}

/// Borrowed CSR arrays, as they arrive from Python: row r holds `indices[indptr[r]..indptr[r+1]]`
/// with `values` at the same positions; `values` is absent for a pattern of non-zeros.
#[derive(Debug, Clone, Copy)]
pub struct CsrRef<'a> {
    pub indptr: &'a [i64],
    pub indices: &'a [i32],
    pub values: Option<&'a [f32]>,
}

impl CsrRef<'_> {
    /// Number of rows the row pointers describe (0 when there are none at all).
    pub fn num_rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Positions of row r's entries (in a checked CSR).
    pub fn row(&self, r: usize) -> std::ops::Range<usize> {
        self.indptr[r] as usize..self.indptr[r + 1] as usize
    }

    /// The one CSR check of the crate: `rows` rows over `cols` columns (row pointers rising from 0
    /// to the number of entries, values as many as indices), column indices in range and strictly
    /// ascending within each row. Errors name the argument `name`. Rows are checked in parallel on
    /// the current rayon pool.
    pub fn check(&self, name: &'static str, rows: usize, cols: usize) -> Result<()> {
        let p = self.indptr;
        let bad = |m: &str| Err(Error::value(name, m.to_string()));
        if p.len() != rows + 1 || p[0] != 0 || p.windows(2).any(|w| w[0] > w[1]) {
            return bad("inconsistent CSR row pointers for this batch");
        }
        if p[rows] as usize != self.indices.len()
            || self.values.is_some_and(|v| v.len() != self.indices.len())
        {
            return bad("CSR arrays have different lengths");
        }
        let ordered = (0..rows).into_par_iter().all(|r| {
            let idx = &self.indices[self.row(r)];
            idx.iter().all(|&j| j >= 0 && (j as usize) < cols)
                && idx.windows(2).all(|w| w[0] < w[1])
        });
        if !ordered {
            return bad(&format!(
                "column indices must be in [0, {cols}) and strictly ascending within each row"
            ));
        }
        Ok(())
    }
}

/// Where a row writes its entries (ascending column order).
#[derive(Default)]
pub struct RowSink {
    counts: Vec<u32>,
    indices: Vec<i32>,
    values: Vec<f32>,
    open: u32,
}

impl RowSink {
    /// Appends one entry to the current row.
    #[inline]
    pub fn push(&mut self, col: u32, value: f32) {
        self.indices.push(col as i32);
        self.values.push(value);
        self.open += 1;
    }

    /// Closes the current row (call once per row, in row order).
    pub fn end_row(&mut self) {
        self.counts.push(self.open);
        self.open = 0;
    }

    fn clear(&mut self) {
        self.counts.clear();
        self.indices.clear();
        self.values.clear();
    }
}

/// Rows per parallel task. Any value gives the same output; this one amortises task overhead.
const ROWS_PER_TASK: u64 = 256;

/// Builds the CSR of rows `start .. start + n`. `rows(range, sink)` writes the rows of a range of
/// global row indices in order, calling `sink.end_row()` after each. Each row must be a pure
/// function of its global index for the result to be independent of threading. Rows past 2^63 - 1
/// are rejected (indptr and row indices are i64 in Python), and so is an output that would not fit
/// in this machine's memory ([`crate::memory`]): the row pointers are checked first, the entries as
/// soon as the first rows tell their density. Both errors name `n`.
///
/// Work proceeds in rounds of a few tasks per thread: tasks fill recycled scratch sinks in
/// parallel while the previous round is appended to the output in row order (two sets of sinks, so
/// no thread waits for the copy). Scratch memory stays small and warm, so the only fresh pages
/// touched are the output's own.
pub fn build_rows<F>(start: u64, n: u64, rows: F) -> Result<Csr>
where
    F: Fn(std::ops::Range<u64>, &mut RowSink) + Sync,
{
    if start.checked_add(n).is_none_or(|end| end > i64::MAX as u64) {
        return Err(Error::value(
            "start",
            format!("start + n must be < 2^63, got {start} + {n}"),
        ));
    }
    let num_tasks = n.div_ceil(ROWS_PER_TASK);
    let per_round = 4 * rayon::current_num_threads() as u64;
    let mut out = Csr {
        indptr: memory::with_capacity("n", n + 1, &format!("the row pointers of {n} rows"))?,
        indices: Vec::new(),
        values: Vec::new(),
    };
    advise_huge_pages(&out.indptr);
    out.indptr.push(0);
    let (mut filling, mut filled): (Vec<RowSink>, Vec<RowSink>) = (Vec::new(), Vec::new());
    let mut first = 0;
    loop {
        // This round (empty once all tasks are done) is sampled while the last one is appended.
        let round = per_round.min(num_tasks - first);
        filling.resize_with(round as usize, RowSink::default);
        let (appended, ()) = rayon::join(
            || append(&mut out, &filled, n),
            || {
                filling.par_iter_mut().enumerate().for_each(|(k, sink)| {
                    sink.clear();
                    let lo = start + (first + k as u64) * ROWS_PER_TASK;
                    let hi = (lo + ROWS_PER_TASK).min(start + n);
                    rows(lo..hi, sink);
                    debug_assert_eq!(sink.counts.len() as u64, hi - lo, "rows must end every row");
                })
            },
        );
        appended?;
        std::mem::swap(&mut filling, &mut filled);
        if round == 0 {
            break;
        }
        first += round;
    }
    out.indices.shrink_to_fit();
    out.values.shrink_to_fit();
    Ok(out)
}

/// Appends finished sinks to `out` (of `n` rows in all), in order. After the first rows, reserves
/// the whole output from their density, on huge pages, or refuses `n` if it would not fit in
/// memory. Every growth is reserved fallibly.
fn append(out: &mut Csr, sinks: &[RowSink], n: u64) -> Result<()> {
    let before = out.num_rows();
    let mut total = *out.indptr.last().expect("indptr starts with 0");
    for sink in sinks {
        out.indptr.extend(sink.counts.iter().map(|&c| {
            total += c as i64;
            total
        }));
        grow(&mut out.indices, sink.indices.len(), n)?;
        grow(&mut out.values, sink.values.len(), n)?;
        out.indices.extend_from_slice(&sink.indices);
        out.values.extend_from_slice(&sink.values);
    }
    let done = out.num_rows();
    if before == 0 && done > 0 && (done as u64) < n {
        let per_row = out.indices.len() as f64 / done as f64;
        let bytes = 8.0 * n as f64 + (4 + 4) as f64 * per_row * n as f64;
        let what =
            format!("{n} rows (measured {per_row:.2} entries per row over the first {done})");
        memory::check("n", bytes, &what)?;
        let more = ((per_row * n as f64 * 1.02) as usize).saturating_sub(out.indices.len()) + 1024;
        grow(&mut out.indices, more, n)?;
        grow(&mut out.values, more, n)?;
        advise_huge_pages(&out.indices);
        advise_huge_pages(&out.values);
    }
    Ok(())
}

/// Room for `more` items in `v`, or an error naming `n` if the system refuses it.
fn grow<T>(v: &mut Vec<T>, more: usize, n: u64) -> Result<()> {
    v.try_reserve(more).map_err(|_| {
        Error::resource(
            "n",
            format!("the entries of {n} rows would need more memory than the system could give"),
        )
    })
}

/// Asks Linux to back `v`'s buffer with huge pages: the output is written once, and first touches
/// of 4 KiB pages (one fault each) cost more than the copying itself on virtual machines.
fn advise_huge_pages<T>(v: &Vec<T>) {
    #[cfg(not(target_os = "linux"))]
    let _ = v; // other systems: no advice
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let (at, bytes) = (v.as_ptr() as usize, v.capacity() * std::mem::size_of::<T>());
        let (start, end) = (at.next_multiple_of(PAGE), (at + bytes) / PAGE * PAGE);
        if end >= start + (2 << 20) {
            // SAFETY: the range lies inside v's allocation; advice never changes its contents.
            // Failure (e.g. no transparent huge pages) only loses the speed-up.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
}

/// The non-zero entries (NaN included) of `z` `[rows, cols]` row-major, one pass in parallel.
pub fn from_dense(z: &[f32], rows: usize, cols: usize) -> Result<Csr> {
    if rows.checked_mul(cols) != Some(z.len()) {
        return Err(Error::value("latents", format!("must be [{rows}, {cols}]")));
    }
    build_rows(0, rows as u64, |range, sink| {
        for r in range {
            let row = &z[r as usize * cols..(r as usize + 1) * cols];
            for (j, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    sink.push(j as u32, v);
                }
            }
            sink.end_row();
        }
    })
}

/// `h[r] = bias + Σ_j values[j] · vectors[indices[j]]` for every row of `csr` (`vectors` `[N, D]`
/// row-major with `N = num_features`, `bias` `[D]`), on `num_threads` threads; returns `[n, D]`
/// row-major. `csr` is checked first (errors name it `features`). Each row sums its entries in
/// stored (ascending) order, so the result does not depend on threading.
pub fn hidden(
    csr: &CsrRef<'_>,
    vectors: &[f32],
    num_features: usize,
    bias: &[f32],
    num_threads: Option<usize>,
) -> Result<Vec<f32>> {
    debug_assert_eq!(vectors.len(), num_features * bias.len());
    crate::threads::install(num_threads, || {
        csr.check("features", csr.num_rows(), num_features)?;
        let values = csr
            .values
            .ok_or_else(|| Error::value("features", "values are required"))?;
        let bytes = 4.0 * csr.num_rows() as f64 * bias.len() as f64;
        let what = format!("hidden activations [{}, {}]", csr.num_rows(), bias.len());
        memory::check("features", bytes, &what)?;
        Ok(hidden_in_pool(csr, values, vectors, bias))
    })?
}

fn hidden_in_pool(csr: &CsrRef<'_>, values: &[f32], vectors: &[f32], bias: &[f32]) -> Vec<f32> {
    let d = bias.len();
    // Zeroed pages come untouched from the allocator: advise before the workers fault them in.
    let mut out = vec![0.0f32; csr.num_rows() * d];
    advise_huge_pages(&out);
    if d == 0 {
        return out;
    }
    #[cfg(target_arch = "x86_64")]
    let wide = crate::kernel::kernel() >= crate::kernel::Kernel::Avx512;
    out.par_chunks_mut(d).enumerate().for_each(|(r, h)| {
        let (indices, values) = (&csr.indices[csr.row(r)], &values[csr.row(r)]);
        #[cfg(target_arch = "x86_64")]
        if wide {
            // SAFETY: the kernel in use runs here, and has AVX-512F.
            return unsafe { hidden_row_avx512(h, indices, values, vectors, bias) };
        }
        hidden_row(h, indices, values, vectors, bias)
    });
    out
}

/// One row of [`hidden`]. Inlined into [`hidden_row_avx512`] too: wider vectors, same bits (Rust
/// never fuses the multiply and the add).
#[inline(always)]
fn hidden_row(h: &mut [f32], indices: &[i32], values: &[f32], vectors: &[f32], bias: &[f32]) {
    let d = bias.len();
    h.copy_from_slice(bias);
    for (&i, &v) in indices.iter().zip(values) {
        let w = &vectors[i as usize * d..(i as usize + 1) * d];
        for (hk, &wk) in h.iter_mut().zip(w) {
            *hk += v * wk;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn hidden_row_avx512(
    h: &mut [f32],
    indices: &[i32],
    values: &[f32],
    vectors: &[f32],
    bias: &[f32],
) {
    hidden_row(h, indices, values, vectors, bias)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_dense_keeps_the_non_zeros_in_order() {
        let z = [0.0, 1.5, 0.0, 0.0, 2.0, -0.5];
        let csr = from_dense(&z, 3, 2).unwrap();
        assert_eq!(csr.indptr, vec![0, 1, 1, 3]);
        assert_eq!(csr.indices, vec![1, 0, 1]);
        assert_eq!(csr.values, vec![1.5, 2.0, -0.5]);
        assert!(from_dense(&z, 2, 2).is_err());
        assert_eq!(from_dense(&[], 4, 0).unwrap().indptr, vec![0; 5]);
    }

    #[test]
    fn check_rejects_every_malformed_csr_by_name() {
        let csr =
            |indptr: &'static [i64], indices: &'static [i32], values: Option<&'static [f32]>| {
                CsrRef {
                    indptr,
                    indices,
                    values,
                }
            };
        let ok = csr(&[0, 2, 2, 3], &[0, 2, 1], Some(&[1.0, 2.0, 3.0]));
        assert!(ok.check("features", 3, 3).is_ok());
        assert!(csr(&[0, 1], &[2], None).check("latents", 1, 3).is_ok());
        let bad = [
            (ok, 2, 3),                                    // rows
            (ok, 3, 2),                                    // a column out of range
            (csr(&[], &[], None), 0, 3),                   // no row pointers
            (csr(&[1, 1], &[], None), 1, 3),               // not from 0
            (csr(&[0, 2, 1], &[0, 1], None), 2, 3),        // falling
            (csr(&[0, 2], &[0], None), 1, 3),              // past the indices
            (csr(&[0, 1], &[0], Some(&[1.0, 2.0])), 1, 3), // values
            (csr(&[0, 2], &[1, 1], None), 1, 3),           // a repeat
            (csr(&[0, 2], &[1, 0], None), 1, 3),           // descending
            (csr(&[0, 1], &[-1], None), 1, 3),             // negative
        ];
        for (c, rows, cols) in bad {
            let e = c.check("latents", rows, cols).unwrap_err();
            assert!(e.to_string().starts_with("latents: "), "{e}");
        }
    }

    #[test]
    fn hidden_matches_a_dense_product() {
        let csr = Csr {
            indptr: vec![0, 2, 2, 3],
            indices: vec![0, 2, 1],
            values: vec![2.0, 0.5, -1.0],
        };
        let vectors = [1.0, 0.0, 0.0, 1.0, 4.0, 8.0]; // [3, 2]
        let h = hidden(&csr.view(), &vectors, 3, &[0.25, -0.25], Some(2)).unwrap();
        assert_eq!(
            h,
            vec![
                0.25 + 2.0 + 2.0,
                -0.25 + 4.0,
                0.25,
                -0.25,
                0.25,
                -0.25 - 1.0
            ]
        );
    }
}
