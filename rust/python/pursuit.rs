//! Bindings of matching pursuit's certified picks and of their backward pass.

use crate::pursuit::{self, Gradients, Gram, Pursuit};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

type Array2<'py, T> = Bound<'py, PyArray2<T>>;

fn array2<'py, T: numpy::Element>(
    py: Python<'py>,
    rows: usize,
    cols: usize,
    v: Vec<T>,
) -> Array2<'py, T> {
    numpy::ndarray::Array2::from_shape_vec((rows, cols), v)
        .expect("the core returns rows·cols values")
        .into_pyarray(py)
}

/// Matching pursuit: `(picks int64 [rows, iterations] (-1: no positive score left), coefficients
/// float32 [rows, iterations], final residuals float32 [rows, d], exact scores computed)`.
/// `scores` `[rows, n]` = `residual` `[rows, d]` · `atoms`ᵀ from a float32 product; `gram` is None
/// (every score computed at every pick), a float32 `[n, n]` `W Wᵀ`, or that product rounded to
/// bfloat16 (a uint16 `[n, n]` array of its bit patterns). All C-contiguous. Runs on
/// `num_threads` threads (None: rayon's default); the results do not depend on it.
#[pyfunction]
#[pyo3(signature = (scores, residual, atoms, iterations, gram=None, num_threads=None))]
#[allow(clippy::type_complexity)]
pub fn pursuit_picks<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray2<'py, f32>,
    residual: PyReadonlyArray2<'py, f32>,
    atoms: PyReadonlyArray2<'py, f32>,
    iterations: usize,
    gram: Option<&Bound<'py, PyAny>>,
    num_threads: Option<usize>,
) -> PyResult<(Array2<'py, i64>, Array2<'py, f32>, Array2<'py, f32>, u64)> {
    let rows = residual.shape()[0];
    let (n, d) = (atoms.shape()[0], atoms.shape()[1]);
    let single: PyReadonlyArray2<'py, f32>;
    let rounded: PyReadonlyArray2<'py, u16>;
    let gram = match gram {
        None => Gram::Exhaustive,
        Some(g) => {
            if let Ok(g) = g.extract::<PyReadonlyArray2<'py, f32>>() {
                single = g;
                Gram::F32(single.as_slice()?)
            } else if let Ok(g) = g.extract::<PyReadonlyArray2<'py, u16>>() {
                rounded = g;
                Gram::Bf16(rounded.as_slice()?)
            } else {
                return Err(crate::Error::type_(
                    "gram",
                    "None, a float32 [n, n] array or a uint16 [n, n] array of bfloat16 bits",
                )
                .into());
            }
        }
    };
    let p = Pursuit {
        scores: scores.as_slice()?,
        residual: residual.as_slice()?,
        atoms: atoms.as_slice()?,
        n,
        d,
        gram,
        iterations,
    };
    let out = py.detach(|| crate::threads::install(num_threads, || pursuit::pursue(&p)))??;
    Ok((
        array2(py, rows, iterations, out.index),
        array2(py, rows, iterations, out.coef),
        array2(py, rows, d, out.residual),
        out.counts.exact_scores,
    ))
}

/// The gradients `(∂L/∂r₀ float32 [rows, d], ∂L/∂atoms float32 [n, d])` through a pursuit whose
/// outputs (`index`, `coef`, final `residual`, from [`pursuit_picks`]) received `grad_residual`
/// `[rows, d]` and `grad_coef` `[rows, k]` (None: zero). Deterministic for any `num_threads`.
#[pyfunction]
#[pyo3(signature = (atoms, index, coef, residual, grad_residual, grad_coef=None, num_threads=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn pursuit_backward<'py>(
    py: Python<'py>,
    atoms: PyReadonlyArray2<'py, f32>,
    index: PyReadonlyArray2<'py, i64>,
    coef: PyReadonlyArray2<'py, f32>,
    residual: PyReadonlyArray2<'py, f32>,
    grad_residual: PyReadonlyArray2<'py, f32>,
    grad_coef: Option<PyReadonlyArray2<'py, f32>>,
    num_threads: Option<usize>,
) -> PyResult<(Array2<'py, f32>, Array2<'py, f32>)> {
    let (n, d) = (atoms.shape()[0], atoms.shape()[1]);
    let rows = residual.shape()[0];
    let g = Gradients {
        atoms: atoms.as_slice()?,
        n,
        d,
        index: index.as_slice()?,
        coef: coef.as_slice()?,
        residual: residual.as_slice()?,
        grad_residual: grad_residual.as_slice()?,
        grad_coef: grad_coef.as_ref().map(|g| g.as_slice()).transpose()?,
    };
    let (grad_r0, grad_atoms) =
        py.detach(|| crate::threads::install(num_threads, || pursuit::backward(&g)))??;
    Ok((array2(py, rows, d, grad_r0), array2(py, n, d, grad_atoms)))
}
