//! Bindings of the assignment solver.

use crate::lap::{self, Entry};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

type Pairs<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);
/// Rows, columns and values of an assignment.
type Solution<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
);

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
    Err(crate::Error::type_("cost_matrix", "a 2-D float32 or float64 array").into())
}

/// An assignment of the rows of a `[rows, cols]` float32 matrix (rows ≤ cols) that is never
/// stored: blocks of whole rows come in through `add_rows` (every row once, in order), then
/// through `supply` for the rows each `next_rows` names, until it names none.
#[pyclass(module = "synthsae._core")]
pub struct StreamedAssignment(lap::Streamed);

fn block_slice<'a>(block: &'a PyReadonlyArray2<'_, f32>) -> PyResult<&'a [f32]> {
    Ok(block.as_slice()?)
}

#[pymethods]
impl StreamedAssignment {
    #[new]
    #[pyo3(signature = (rows, cols, maximize = false))]
    fn new(rows: usize, cols: usize, maximize: bool) -> PyResult<Self> {
        Ok(StreamedAssignment(lap::Streamed::new(
            rows, cols, maximize,
        )?))
    }

    /// The next rows of the first pass: C-contiguous float32 `[k, cols]`.
    fn add_rows(&mut self, py: Python<'_>, block: PyReadonlyArray2<'_, f32>) -> PyResult<()> {
        let data = block_slice(&block)?;
        let inner = &mut self.0;
        Ok(py.detach(|| inner.add_rows(data))?)
    }

    /// int64 `[k]`: the rows whose entries are needed next, in order (empty: solved).
    fn next_rows<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let inner = &mut self.0;
        let rows = py.detach(|| {
            inner
                .next_rows()
                .map(|r| r.iter().map(|&i| i as i64).collect::<Vec<_>>())
        })?;
        Ok(rows.into_pyarray(py))
    }

    /// Entries of the next rows asked for: C-contiguous float32 `[k, cols]`.
    fn supply(&mut self, py: Python<'_>, block: PyReadonlyArray2<'_, f32>) -> PyResult<()> {
        let data = block_slice(&block)?;
        let inner = &mut self.0;
        Ok(py.detach(|| inner.supply(data))?)
    }

    /// `(rows, cols, values)` of the optimal assignment: int64, int64, float64 `[rows]`.
    fn assignment<'py>(&self, py: Python<'py>) -> PyResult<Solution<'py>> {
        let (a, values) = self.0.assignment()?;
        let to_i64 = |v: Vec<usize>| v.into_iter().map(|x| x as i64).collect::<Vec<_>>();
        Ok((
            to_i64(a.rows).into_pyarray(py),
            to_i64(a.cols).into_pyarray(py),
            values.into_pyarray(py),
        ))
    }
}
