//! Bindings of the samplers (one base class, two constructors) and of the hidden product.

use crate::copula::Copula;
use crate::csr::CsrRef;
use crate::groups::Groups;
use crate::independent::{self, PerFeature};
use crate::world;
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

/// What [`Sampler`] draws from.
enum Core {
    Independent(independent::IndependentSampler),
    World(Box<world::WorldSampler>),
}

/// The methods both samplers share; built by [`IndependentSampler`] or [`WorldSampler`].
#[pyclass(frozen, subclass, module = "synthsae._core")]
pub struct Sampler(Core);

#[pymethods]
impl Sampler {
    #[getter]
    fn num_features(&self) -> usize {
        match &self.0 {
            Core::Independent(s) => s.num_features(),
            Core::World(s) => s.num_features(),
        }
    }

    /// Rows `start .. start + n` as CSR arrays `(indptr, indices, values)`, handed to NumPy without
    /// copying; releases the GIL.
    #[pyo3(signature = (seed, start, n, num_threads=None))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        seed: u64,
        start: u64,
        n: u64,
        num_threads: Option<usize>,
    ) -> PyResult<CsrArrays<'py>> {
        let csr = py.detach(|| match &self.0 {
            Core::Independent(s) => s.sample(seed, start, n, num_threads),
            Core::World(s) => s.sample(seed, start, n, num_threads),
        })?;
        Ok((
            csr.indptr.into_pyarray(py),
            csr.indices.into_pyarray(py),
            csr.values.into_pyarray(py),
        ))
    }
}

/// Independent-feature sampler with its hazard table built once.
#[pyclass(frozen, extends = Sampler, module = "synthsae._core")]
pub struct IndependentSampler;

#[pymethods]
impl IndependentSampler {
    /// `p` [N] float64; `mean`, `std` float32 of length 1 (broadcast) or N.
    #[new]
    fn new(
        p: PyReadonlyArray1<'_, f64>,
        mean: PyReadonlyArray1<'_, f32>,
        std: PyReadonlyArray1<'_, f32>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let p = p.as_slice()?;
        let n = p.len();
        let mean = PerFeature::from_slice(mean.as_slice()?, n, "mean_magnitudes")?;
        let std = PerFeature::from_slice(std.as_slice()?, n, "std_magnitudes")?;
        let core = independent::IndependentSampler::new(p, mean, std)?;
        Ok(PyClassInitializer::from(Sampler(Core::Independent(core)))
            .add_subclass(IndependentSampler))
    }
}

/// Hidden activations `[n, D]` from CSR arrays: `h = a·W + b` with `vectors` `[N, D]`, on
/// `num_threads` threads (`None`: rayon's default number); releases the GIL.
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
    let features = CsrRef {
        indptr: indptr.as_slice()?,
        indices: indices.as_slice()?,
        values: Some(values.as_slice()?),
    };
    let vectors = vectors.as_slice()?;
    let n = features.num_rows();
    let h = py.detach(|| crate::csr::hidden(&features, vectors, n_features, bias, num_threads))?;
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
#[pyclass(frozen, extends = Sampler, module = "synthsae._core")]
pub struct WorldSampler;

#[pymethods]
impl WorldSampler {
    /// `p` [N] f64; `mean`, `std` f32 (1 or N); copula (all or none): `factor` [N, r], `diag` [N],
    /// `thresholds` [N]; hierarchy groups: `gate` [G] i32, `exclusive`, `rescale` [G] bool,
    /// `ptr` [G+1] i64, `members` [M] i32.
    #[new]
    #[pyo3(signature = (
        p, mean, std, factor, diag, thresholds, gate, exclusive, rescale, ptr, members
    ))]
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
    ) -> PyResult<PyClassInitializer<Self>> {
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
        let core = world::WorldSampler::new(p, mean, std, copula, groups)?;
        Ok(
            PyClassInitializer::from(Sampler(Core::World(Box::new(core))))
                .add_subclass(WorldSampler),
        )
    }
}
