//! Bindings of the streaming evaluation reductions.

use crate::csr::CsrRef;
use crate::metrics::absorption::{Absorption, Other, Parent, NONE};
use crate::metrics::{Accumulator, Batch};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// CSR `(indptr int64, indices int32, values float32)` from Python (checked in the core).
type CsrArrays<'py> = (
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, i32>,
    PyReadonlyArray1<'py, f32>,
);

fn csr<'a>((indptr, indices, values): &'a CsrArrays<'_>) -> PyResult<CsrRef<'a>> {
    Ok(CsrRef {
        indptr: indptr.as_slice()?,
        indices: indices.as_slice()?,
        values: Some(values.as_slice()?),
    })
}

/// The non-zeros of a dense float32 `[b, d]` batch as CSR `(indptr, indices, values)`, in one
/// parallel pass with the GIL released.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn dense_to_csr<'py>(
    py: Python<'py>,
    z: PyReadonlyArray2<'py, f32>,
) -> PyResult<(
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<f32>>,
)> {
    let (rows, cols) = z.as_array().dim();
    let dense = z.as_slice()?;
    let out = py.detach(|| crate::csr::from_dense(dense, rows, cols))?;
    Ok((
        out.indptr.into_pyarray(py),
        out.indices.into_pyarray(py),
        out.values.into_pyarray(py),
    ))
}

/// Running evaluation state; `add` releases the GIL.
#[pyclass(module = "synthsae._core")]
pub struct EvalState(Accumulator);

#[pymethods]
impl EvalState {
    /// Pair `k` scores latent `pair_latents[k]` against feature `pair_features[k]` (int64
    /// `[pairs]` each); the pairs `union_pairs` form one union per feature; `mean` `[D]` float64 or
    /// None.
    #[new]
    #[pyo3(signature = (hidden_dim, num_features, d_sae, pair_latents, pair_features, union_pairs, mean=None, mean_rows=8192))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        hidden_dim: usize,
        num_features: usize,
        d_sae: usize,
        pair_latents: PyReadonlyArray1<'_, i64>,
        pair_features: PyReadonlyArray1<'_, i64>,
        union_pairs: PyReadonlyArray1<'_, i64>,
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
            union_pairs.as_slice()?,
            mean,
            mean_rows,
        )?))
    }

    /// Adds `b` rows: `hidden`/`reconstruction` `[b, D]` float32, the latents' non-zeros and the
    /// ground-truth activations, each as CSR `(indptr, indices, values)`.
    fn add(
        &mut self,
        py: Python<'_>,
        hidden: PyReadonlyArray2<'_, f32>,
        reconstruction: PyReadonlyArray2<'_, f32>,
        latents: CsrArrays<'_>,
        features: CsrArrays<'_>,
    ) -> PyResult<()> {
        let batch = Batch {
            hidden: hidden.as_slice()?,
            reconstruction: reconstruction.as_slice()?,
            latents: csr(&latents)?,
            features: csr(&features)?,
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
        d.set_item("union_hits", arr(s.union_hits))?;
        Ok(d)
    }
}

/// Running absorption counts (see `metrics::absorption`); `add` releases the GIL.
#[pyclass(module = "synthsae._core")]
pub struct AbsorptionState(Absorption);

#[pymethods]
impl AbsorptionState {
    /// Parent `k` is feature `parent_features[k]` with matched latent `parent_latents[k]` (-1: none);
    /// and coefficient `parent_coefs[k]` (float64); its children are
    /// `child_features[child_ptr[k]..child_ptr[k + 1]]` with matched latents `child_latents[...]`,
    /// its candidate absorbers `other_latents[other_ptr[k]..other_ptr[k + 1]]` with coefficients
    /// `other_coefs[...]` (float64) and near flags `other_near[...]` (bool); the rest int64.
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        num_features: usize,
        d_sae: usize,
        parent_features: PyReadonlyArray1<'_, i64>,
        parent_latents: PyReadonlyArray1<'_, i64>,
        parent_coefs: PyReadonlyArray1<'_, f64>,
        child_ptr: PyReadonlyArray1<'_, i64>,
        child_features: PyReadonlyArray1<'_, i64>,
        child_latents: PyReadonlyArray1<'_, i64>,
        other_ptr: PyReadonlyArray1<'_, i64>,
        other_latents: PyReadonlyArray1<'_, i64>,
        other_coefs: PyReadonlyArray1<'_, f64>,
        other_near: PyReadonlyArray1<'_, bool>,
    ) -> PyResult<Self> {
        let (pf, pl, pc) = (
            parent_features.as_slice()?,
            parent_latents.as_slice()?,
            parent_coefs.as_slice()?,
        );
        let (cp, cf, cl) = (
            child_ptr.as_slice()?,
            child_features.as_slice()?,
            child_latents.as_slice()?,
        );
        let (op, ol, oc, on) = (
            other_ptr.as_slice()?,
            other_latents.as_slice()?,
            other_coefs.as_slice()?,
            other_near.as_slice()?,
        );
        let ptr_ok = |p: &[i64], len: usize| {
            p.len() == pf.len() + 1
                && p[0] == 0
                && p.windows(2).all(|w| w[0] <= w[1])
                && p[pf.len()] as usize == len
        };
        if pl.len() != pf.len()
            || pc.len() != pf.len()
            || cf.len() != cl.len()
            || oc.len() != ol.len()
            || on.len() != ol.len()
            || !ptr_ok(cp, cf.len())
            || !ptr_ok(op, ol.len())
        {
            return Err(crate::Error::value(
                "parents",
                "inconsistent parent, child or absorber arrays",
            )
            .into());
        }
        let index = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        let parents = (0..pf.len())
            .map(|k| {
                let (c, o) = (
                    cp[k] as usize..cp[k + 1] as usize,
                    op[k] as usize..op[k + 1] as usize,
                );
                Parent {
                    feature: index(pf[k]),
                    latent: if pl[k] < 0 { NONE } else { pl[k] },
                    coef: pc[k],
                    children: cf[c.clone()]
                        .iter()
                        .zip(&cl[c])
                        .map(|(&f, &l)| (index(f), l))
                        .collect(),
                    others: o
                        .map(|i| Other {
                            latent: index(ol[i]),
                            coef: oc[i],
                            near: on[i],
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(AbsorptionState(Absorption::new(
            num_features,
            d_sae,
            parents,
        )?))
    }

    /// Adds `b` rows: the latents' non-zeros and the ground-truth activations as for
    /// `EvalState.add`.
    fn add(
        &mut self,
        py: Python<'_>,
        latents: CsrArrays<'_>,
        features: CsrArrays<'_>,
    ) -> PyResult<()> {
        let (latents, features) = (csr(&latents)?, csr(&features)?);
        let acc = &mut self.0;
        Ok(py.detach(|| acc.add(latents, features))?)
    }

    /// The counts so far: uint64 arrays per parent (`alone`, `alone_fires`, `with_child`,
    /// `with_child_fires`), float64 `fraction` per parent and uint64 per child slot (`both`,
    /// `both_fires`, `absorbed`, `absorbed_near`).
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.0.counts().clone();
        let d = PyDict::new(py);
        d.set_item("fraction", c.fraction.into_pyarray(py))?;
        for (name, v) in [
            ("alone", c.alone),
            ("alone_fires", c.alone_fires),
            ("with_child", c.with_child),
            ("with_child_fires", c.with_child_fires),
            ("both", c.both),
            ("both_fires", c.both_fires),
            ("absorbed", c.absorbed),
            ("absorbed_near", c.absorbed_near),
        ] {
            d.set_item(name, v.into_pyarray(py))?;
        }
        Ok(d)
    }
}
