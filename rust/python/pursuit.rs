//! Binding of matching pursuit's certified picks.

use crate::pursuit::{self, Gram, Pursuit};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// The picks `[rows, iterations]` (int64) of matching pursuit and the number of exact scores it
/// computed. `scores` `[rows, n]` = `residual` `[rows, d]` · `atoms`ᵀ from a float32 product; `gram`
/// is None (every score computed at every pick), a float32 `[n, n]` `W Wᵀ`, or a pair of uint16
/// `[n, n]` arrays holding bfloat16 `A` and `C` (see the core's documentation). All C-contiguous.
/// Runs on `num_threads` threads (None: rayon's default); the picks do not depend on it.
#[pyfunction]
#[pyo3(signature = (scores, residual, atoms, iterations, gram=None, num_threads=None))]
pub fn pursuit_picks<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray2<'py, f32>,
    residual: PyReadonlyArray2<'py, f32>,
    atoms: PyReadonlyArray2<'py, f32>,
    iterations: usize,
    gram: Option<&Bound<'py, PyAny>>,
    num_threads: Option<usize>,
) -> PyResult<(Bound<'py, PyArray2<i64>>, u64)> {
    let rows = residual.shape()[0];
    let (n, d) = (atoms.shape()[0], atoms.shape()[1]);
    let single: PyReadonlyArray2<'py, f32>;
    let pair: (PyReadonlyArray2<'py, u16>, PyReadonlyArray2<'py, u16>);
    let gram = match gram {
        None => Gram::Exhaustive,
        Some(g) => {
            if let Ok(g) = g.extract::<PyReadonlyArray2<'py, f32>>() {
                single = g;
                Gram::F32(single.as_slice()?)
            } else if let Ok(p) =
                g.extract::<(PyReadonlyArray2<'py, u16>, PyReadonlyArray2<'py, u16>)>()
            {
                pair = p;
                Gram::Split {
                    a: pair.0.as_slice()?,
                    c: pair.1.as_slice()?,
                }
            } else {
                return Err(crate::Error::type_(
                    "gram",
                    "None, a float32 [n, n] array or a pair of uint16 [n, n] arrays",
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
    let (picks, counts) =
        py.detach(|| crate::threads::install(num_threads, || pursuit::pursue(&p)))??;
    let picks = numpy::ndarray::Array2::from_shape_vec((rows, iterations), picks)
        .expect("the core returns rows·iterations picks");
    Ok((picks.into_pyarray(py), counts.exact_scores))
}
