//! Bindings of the assignment solver.

use crate::lap::{self, Entry};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

type Pairs<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

fn solve_array<'py, T: Entry + numpy::Element>(
    py: Python<'py>,
    cost: PyReadonlyArray2<'py, T>,
    maximize: bool,
) -> PyResult<Pairs<'py>> {
    let (rows, cols) = (cost.shape()[0], cost.shape()[1]);
    let data = cost.as_slice()?;
    let a = py.detach(|| lap::solve(data, rows, cols, maximize))?;
    let to_i64 = |v: Vec<usize>| v.into_iter().map(|x| x as i64).collect::<Vec<_>>();
    Ok((
        to_i64(a.rows).into_pyarray(py),
        to_i64(a.cols).into_pyarray(py),
    ))
}

/// `(row_ind, col_ind)` of an optimal assignment of a C-contiguous float32/float64 matrix.
#[pyfunction]
#[pyo3(signature = (cost, maximize = false))]
pub fn linear_sum_assignment<'py>(
    py: Python<'py>,
    cost: &Bound<'py, PyAny>,
    maximize: bool,
) -> PyResult<Pairs<'py>> {
    if let Ok(c) = cost.extract::<PyReadonlyArray2<'py, f32>>() {
        return solve_array(py, c, maximize);
    }
    if let Ok(c) = cost.extract::<PyReadonlyArray2<'py, f64>>() {
        return solve_array(py, c, maximize);
    }
    Err(PyTypeError::new_err(
        "cost_matrix must be a 2-D float32 or float64 array",
    ))
}
