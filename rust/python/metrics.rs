//! Bindings of the streaming evaluation reductions.

use crate::csr::CsrRef;
use crate::metrics::absorption::{Absorption, Parent, NONE};
use crate::metrics::{Accumulator, Batch, Latents};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Latents as they arrive from Python: a dense `[b, d_sae]` float32 array or the CSR pattern
/// `(indptr, indices)` of the non-zeros.
enum LatentArrays<'py> {
    Dense(PyReadonlyArray2<'py, f32>),
    Pattern(PyReadonlyArray1<'py, i64>, PyReadonlyArray1<'py, i32>),
}

impl<'py> LatentArrays<'py> {
    fn extract(latents: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(z) = latents.extract::<PyReadonlyArray2<'py, f32>>() {
            return Ok(LatentArrays::Dense(z));
        }
        match latents.extract::<(PyReadonlyArray1<'py, i64>, PyReadonlyArray1<'py, i32>)>() {
            Ok((indptr, indices)) => Ok(LatentArrays::Pattern(indptr, indices)),
            Err(_) => Err(PyTypeError::new_err(
                "latents must be a float32 [b, d_sae] array or (indptr, indices)",
            )),
        }
    }

    fn view(&self) -> PyResult<Latents<'_>> {
        Ok(match self {
            LatentArrays::Dense(z) => Latents::Dense(z.as_slice()?),
            LatentArrays::Pattern(indptr, indices) => Latents::Pattern(CsrRef {
                indptr: indptr.as_slice()?,
                indices: indices.as_slice()?,
                values: None,
            }),
        })
    }
}

/// Ground-truth activations as CSR arrays from Python (checked in the core).
fn features<'a>(
    indptr: &'a PyReadonlyArray1<'_, i64>,
    indices: &'a PyReadonlyArray1<'_, i32>,
    values: &'a PyReadonlyArray1<'_, f32>,
) -> PyResult<CsrRef<'a>> {
    Ok(CsrRef {
        indptr: indptr.as_slice()?,
        indices: indices.as_slice()?,
        values: Some(values.as_slice()?),
    })
}

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
        let latents = LatentArrays::extract(latents)?;
        let batch = Batch {
            hidden: hidden.as_slice()?,
            reconstruction: reconstruction.as_slice()?,
            latents: latents.view()?,
            features: features(&feature_indptr, &feature_indices, &feature_values)?,
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

/// Running absorption counts (see `metrics::absorption`); `add` releases the GIL.
#[pyclass(module = "synthsae._core")]
pub struct AbsorptionState(Absorption);

#[pymethods]
impl AbsorptionState {
    /// Parent `k` is feature `parent_features[k]` with matched latent `parent_latents[k]` (-1: none);
    /// its children are `child_features[child_ptr[k]..child_ptr[k + 1]]` with matched latents
    /// `child_latents[...]`, its near latents `near[near_ptr[k]..near_ptr[k + 1]]` (all int64).
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        num_features: usize,
        d_sae: usize,
        parent_features: PyReadonlyArray1<'_, i64>,
        parent_latents: PyReadonlyArray1<'_, i64>,
        child_ptr: PyReadonlyArray1<'_, i64>,
        child_features: PyReadonlyArray1<'_, i64>,
        child_latents: PyReadonlyArray1<'_, i64>,
        near_ptr: PyReadonlyArray1<'_, i64>,
        near: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<Self> {
        let (pf, pl) = (parent_features.as_slice()?, parent_latents.as_slice()?);
        let (cp, cf, cl) = (
            child_ptr.as_slice()?,
            child_features.as_slice()?,
            child_latents.as_slice()?,
        );
        let (np_, nl) = (near_ptr.as_slice()?, near.as_slice()?);
        let ptr_ok = |p: &[i64], len: usize| {
            p.len() == pf.len() + 1
                && p[0] == 0
                && p.windows(2).all(|w| w[0] <= w[1])
                && p[pf.len()] as usize == len
        };
        if pl.len() != pf.len()
            || cf.len() != cl.len()
            || !ptr_ok(cp, cf.len())
            || !ptr_ok(np_, nl.len())
        {
            return Err(crate::Error::value(
                "parents",
                "inconsistent parent, child or near arrays",
            )
            .into());
        }
        let index = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        let parents = (0..pf.len())
            .map(|k| {
                let (c, n) = (
                    cp[k] as usize..cp[k + 1] as usize,
                    np_[k] as usize..np_[k + 1] as usize,
                );
                Parent {
                    feature: index(pf[k]),
                    latent: if pl[k] < 0 { NONE } else { pl[k] },
                    children: cf[c.clone()]
                        .iter()
                        .zip(&cl[c])
                        .map(|(&f, &l)| (index(f), l))
                        .collect(),
                    near: nl[n].iter().map(|&l| index(l)).collect(),
                }
            })
            .collect();
        Ok(AbsorptionState(Absorption::new(
            num_features,
            d_sae,
            parents,
        )?))
    }

    /// Adds `b` rows: `latents` as for `EvalState.add` and the ground-truth activations as CSR.
    fn add(
        &mut self,
        py: Python<'_>,
        latents: &Bound<'_, PyAny>,
        feature_indptr: PyReadonlyArray1<'_, i64>,
        feature_indices: PyReadonlyArray1<'_, i32>,
        feature_values: PyReadonlyArray1<'_, f32>,
    ) -> PyResult<()> {
        let latents = LatentArrays::extract(latents)?;
        let latents = latents.view()?;
        let features = features(&feature_indptr, &feature_indices, &feature_values)?;
        let acc = &mut self.0;
        Ok(py.detach(|| acc.add(latents, features))?)
    }

    /// The counts so far: uint64 arrays per parent (`alone`, `alone_fires`, `with_child`,
    /// `with_child_fires`) and per child slot (`both`, `absorbed`, `absorbed_near`).
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.0.counts().clone();
        let d = PyDict::new(py);
        for (name, v) in [
            ("alone", c.alone),
            ("alone_fires", c.alone_fires),
            ("with_child", c.with_child),
            ("with_child_fires", c.with_child_fires),
            ("both", c.both),
            ("absorbed", c.absorbed),
            ("absorbed_near", c.absorbed_near),
        ] {
            d.set_item(name, v.into_pyarray(py))?;
        }
        Ok(d)
    }
}
