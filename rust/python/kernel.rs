//! The vector kernels: which one runs, and choosing another.

use crate::kernel::{self as simd, Kernel};
use pyo3::prelude::*;

/// The kernel in use.
#[pyfunction]
pub fn kernel() -> &'static str {
    simd::kernel().name()
}

/// The kernels this CPU runs, narrowest first.
#[pyfunction]
pub fn kernels() -> Vec<&'static str> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.supported())
        .map(Kernel::name)
        .collect()
}

/// Uses the kernel called `name` from now on (`None`: the widest this CPU runs).
#[pyfunction]
#[pyo3(signature = (name))]
pub fn set_kernel(name: Option<&str>) -> PyResult<()> {
    Ok(simd::set_kernel(name.map(Kernel::parse).transpose()?)?)
}
