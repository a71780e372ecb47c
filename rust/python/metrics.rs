//! Bindings of the streaming evaluation reductions.

use crate::csr::CsrRef;
use crate::metrics::{Accumulator, Batch, Latents};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Running evaluation state; `add` releases the GIL.
#[pyclass(module = "synthsae._core")]
pub struct EvalState(Accumulator);

#[pymethods]
impl EvalState {
    /// Pair `k` scores latent `pair_latents[k]` against feature `pair_features[k]` (int64
    /// `[pairs]` each); `mean` `[D]` float64 or None.
    #[new]
    #[pyo3(signature = (hidden_dim, num_features, d_sae, pair_latents, pair_features, mean=None, mean_rows=8192))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        hidden_dim: usize,
        num_features: usize,
        d_sae: usize,
        pair_latents: PyReadonlyArray1<'_, i64>,
        pair_features: PyReadonlyArray1<'_, i64>,
        mean: Option<PyReadonlyArray1<'_, f64>>,
        mean_rows: usize,
    ) -> PyResult<Self> {
        let mean = mean
            .map(|m| m.as_slice().map(<[f64]>::to_vec))
            .transpose()?;
        Ok(EvalState(Accumulator::new(
            hidden_dim,
            num_features,
            d_sae,
            pair_latents.as_slice()?,
            pair_features.as_slice()?,
            mean,
            mean_rows,
        )?))
    }

    /// Adds `b` rows: `hidden`/`reconstruction` `[b, D]` float32, `latents` a dense `[b, d_sae]`
    /// float32 array or the CSR pattern `(indptr, indices)` of its non-zeros, and the ground-truth
    /// activations as CSR.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        py: Python<'_>,
        hidden: PyReadonlyArray2<'_, f32>,
        reconstruction: PyReadonlyArray2<'_, f32>,
        latents: &Bound<'_, PyAny>,
        feature_indptr: PyReadonlyArray1<'_, i64>,
        feature_indices: PyReadonlyArray1<'_, i32>,
        feature_values: PyReadonlyArray1<'_, f32>,
    ) -> PyResult<()> {
        let dense = latents.extract::<PyReadonlyArray2<'_, f32>>().ok();
        let pattern = match dense {
            Some(_) => None,
            None => latents
                .extract::<(PyReadonlyArray1<'_, i64>, PyReadonlyArray1<'_, i32>)>()
                .ok(),
        };
        let latents = match (&dense, &pattern) {
            (Some(z), _) => Latents::Dense(z.as_slice()?),
            (None, Some((indptr, indices))) => Latents::Pattern(CsrRef {
                indptr: indptr.as_slice()?,
                indices: indices.as_slice()?,
                values: None,
            }),
            (None, None) => {
                return Err(PyTypeError::new_err(
                    "latents must be a float32 [b, d_sae] array or (indptr, indices)",
                ))
            }
        };
        let batch = Batch {
            hidden: hidden.as_slice()?,
            reconstruction: reconstruction.as_slice()?,
            latents,
            features: CsrRef {
                indptr: feature_indptr.as_slice()?,
                indices: feature_indices.as_slice()?,
                values: Some(feature_values.as_slice()?),
            },
        };
        let acc = &mut self.0;
        Ok(py.detach(|| acc.add(&batch))?)
    }

    /// The metrics so far as a dict (scalars; uint64 `fires` per latent, the other counts per pair).
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.0.summary();
        let d = PyDict::new(py);
        d.set_item("rows", s.rows)?;
        d.set_item("true_l0", s.true_l0)?;
        d.set_item("sae_l0", s.sae_l0)?;
        d.set_item("dead_latents", s.dead_latents)?;
        d.set_item("shrinkage", s.shrinkage)?;
        d.set_item("explained_variance", s.explained_variance)?;
        d.set_item(
            "explained_variance_per_sample",
            s.explained_variance_per_sample,
        )?;
        d.set_item(
            "explained_variance_per_dimension",
            s.explained_variance_per_dimension,
        )?;
        let arr = |v: Vec<u64>| -> Bound<'py, PyArray1<u64>> { v.into_pyarray(py) };
        d.set_item("fires", arr(s.fires))?;
        d.set_item("feature_fires", arr(s.feature_fires))?;
        d.set_item("true_positives", arr(s.true_positives))?;
        Ok(d)
    }
}
