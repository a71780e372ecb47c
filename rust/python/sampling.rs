//! Sparse samplers.

use crate::csr::Csr;
use crate::independent::{self, PerFeature};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

type CsrArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<f32>>,
);

fn csr_arrays(py: Python<'_>, csr: Csr) -> CsrArrays<'_> {
    (
        csr.indptr.into_pyarray(py),
        csr.indices.into_pyarray(py),
        csr.values.into_pyarray(py),
    )
}

/// Independent-feature sampler with its hazard table built once.
#[pyclass(frozen, module = "synthsae._core")]
pub struct IndependentSampler(independent::IndependentSampler);

#[pymethods]
impl IndependentSampler {
    /// `p` [N] float64; `mean`, `std` float32 of length 1 (broadcast) or N.
    #[new]
    fn new(
        p: PyReadonlyArray1<'_, f64>,
        mean: PyReadonlyArray1<'_, f32>,
        std: PyReadonlyArray1<'_, f32>,
    ) -> PyResult<Self> {
        let p = p.as_slice()?;
        let n = p.len();
        let mean = PerFeature::from_slice(mean.as_slice()?, n, "mean_magnitudes")?;
        let std = PerFeature::from_slice(std.as_slice()?, n, "std_magnitudes")?;
        Ok(IndependentSampler(independent::IndependentSampler::new(
            p, mean, std,
        )?))
    }

    #[getter]
    fn num_features(&self) -> usize {
        self.0.num_features()
    }

    #[getter]
    fn expected_fires(&self) -> f64 {
        self.0.expected_fires()
    }

    /// Rows `start .. start + n` as CSR arrays `(indptr, indices, values)`; releases the GIL.
    #[pyo3(signature = (seed, start, n, num_threads=None))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        seed: u64,
        start: u64,
        n: u64,
        num_threads: Option<usize>,
    ) -> PyResult<CsrArrays<'py>> {
        let csr = py.detach(|| self.0.sample(seed, start, n, num_threads))?;
        Ok(csr_arrays(py, csr))
    }
}
