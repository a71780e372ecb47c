//! Sparse samplers.

use crate::copula::Copula;
use crate::csr::Csr;
use crate::independent::{self, PerFeature};
use crate::world::{self, Groups};
use numpy::{
    IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

type CsrArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<f32>>,
);

/// Runs a core sampler with the GIL released and hands its CSR to NumPy without copying.
fn sampled<'py>(
    py: Python<'py>,
    sample: impl FnOnce() -> crate::Result<Csr> + Send,
) -> PyResult<CsrArrays<'py>> {
    let csr = py.detach(sample)?;
    Ok((
        csr.indptr.into_pyarray(py),
        csr.indices.into_pyarray(py),
        csr.values.into_pyarray(py),
    ))
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
        sampled(py, || self.0.sample(seed, start, n, num_threads))
    }
}

/// Hidden activations `[n, D]` from CSR arrays: `h = a·W + b` with `vectors` `[N, D]`, on
/// `num_threads` threads (`None`: rayon's global pool); releases the GIL.
#[pyfunction]
#[pyo3(signature = (indptr, indices, values, vectors, bias, num_threads=None))]
pub fn hidden_from_csr<'py>(
    py: Python<'py>,
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i32>,
    values: PyReadonlyArray1<'py, f32>,
    vectors: PyReadonlyArray2<'py, f32>,
    bias: PyReadonlyArray1<'py, f32>,
    num_threads: Option<usize>,
) -> PyResult<Bound<'py, numpy::PyArray2<f32>>> {
    let (n_features, d) = (vectors.shape()[0], vectors.shape()[1]);
    let bias = bias.as_slice()?;
    if bias.len() != d {
        return Err(crate::Error::value("bias", format!("must have shape ({d},)")).into());
    }
    let csr = Csr {
        indptr: indptr.as_slice()?.to_vec(),
        indices: indices.as_slice()?.to_vec(),
        values: values.as_slice()?.to_vec(),
        num_cols: n_features,
    };
    let valid = csr.indptr.first() == Some(&0)
        && csr.indptr.windows(2).all(|w| w[0] <= w[1])
        && csr
            .indptr
            .last()
            .is_some_and(|&e| e as usize == csr.indices.len())
        && csr.values.len() == csr.indices.len()
        && csr
            .indices
            .iter()
            .all(|&i| i >= 0 && (i as usize) < n_features);
    if !valid {
        return Err(
            crate::Error::value("features", "inconsistent CSR arrays for this dictionary").into(),
        );
    }
    let vectors = vectors.as_slice()?;
    let n = csr.num_rows();
    let h = py.detach(|| crate::csr::hidden(&csr, vectors, bias, num_threads))?;
    numpy::PyArray1::from_vec(py, h).reshape([n, d])
}

fn indices<T: Copy + TryInto<u32>>(values: &[T]) -> crate::Result<Vec<u32>> {
    values
        .iter()
        .map(|&v| {
            v.try_into()
                .map_err(|_| crate::Error::value("hierarchy", "negative or oversized index"))
        })
        .collect()
}

/// Sampler of a whole world (copula and hierarchy optional).
#[pyclass(frozen, module = "synthsae._core")]
pub struct WorldSampler(world::WorldSampler);

#[pymethods]
impl WorldSampler {
    /// `p` [N] f64; `mean`, `std` f32 (1 or N); copula: `factor` [N, r], `diag` [N], `thresholds` [N]
    /// (all or none); hierarchy groups: `gate` [G] i32, `exclusive`, `rescale` [G] bool, `ptr` [G+1]
    /// i64, `members` [M] i32.
    #[new]
    #[pyo3(signature = (p, mean, std, factor, diag, thresholds, gate, exclusive, rescale, ptr, members))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        p: PyReadonlyArray1<'_, f64>,
        mean: PyReadonlyArray1<'_, f32>,
        std: PyReadonlyArray1<'_, f32>,
        factor: Option<PyReadonlyArray2<'_, f32>>,
        diag: Option<PyReadonlyArray1<'_, f32>>,
        thresholds: Option<PyReadonlyArray1<'_, f32>>,
        gate: PyReadonlyArray1<'_, i32>,
        exclusive: PyReadonlyArray1<'_, bool>,
        rescale: PyReadonlyArray1<'_, bool>,
        ptr: PyReadonlyArray1<'_, i64>,
        members: PyReadonlyArray1<'_, i32>,
    ) -> PyResult<Self> {
        let p = p.as_slice()?;
        let n = p.len();
        let copula = match (factor, diag, thresholds) {
            (None, None, None) => None,
            (Some(f), Some(d), Some(t)) => Some(Copula::new(
                n,
                f.as_slice()?.to_vec(),
                d.as_slice()?,
                t.as_slice()?.to_vec(),
            )?),
            _ => {
                return Err(crate::Error::value(
                    "correlation_factor",
                    "factor, diag and thresholds go together",
                )
                .into())
            }
        };
        let groups = Groups {
            gate: gate.as_slice()?.to_vec(),
            exclusive: exclusive.as_slice()?.to_vec(),
            rescale: rescale.as_slice()?.to_vec(),
            ptr: indices(ptr.as_slice()?)?
                .into_iter()
                .map(|x| x as usize)
                .collect(),
            members: indices(members.as_slice()?)?,
        };
        let mean = PerFeature::from_slice(mean.as_slice()?, n, "mean_magnitudes")?;
        let std = PerFeature::from_slice(std.as_slice()?, n, "std_magnitudes")?;
        Ok(WorldSampler(world::WorldSampler::new(
            p, mean, std, copula, groups,
        )?))
    }

    #[getter]
    fn num_features(&self) -> usize {
        self.0.num_features()
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
        sampled(py, || self.0.sample(seed, start, n, num_threads))
    }
}
