//! Firing-probability generators.

use crate::firing;
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;

#[pyfunction]
pub fn zipfian_firing_probabilities(
    py: Python<'_>,
    num_features: usize,
    exponent: f64,
    max_prob: f64,
    min_prob: f64,
) -> PyResult<Bound<'_, PyArray1<f32>>> {
    Ok(firing::zipfian(num_features, exponent, max_prob, min_prob)?.into_pyarray(py))
}

#[pyfunction]
pub fn linear_firing_probabilities(
    py: Python<'_>,
    num_features: usize,
    max_prob: f64,
    min_prob: f64,
) -> PyResult<Bound<'_, PyArray1<f32>>> {
    Ok(firing::linear(num_features, max_prob, min_prob)?.into_pyarray(py))
}

#[pyfunction]
pub fn constant_firing_probabilities(
    py: Python<'_>,
    num_features: usize,
    probability: f64,
) -> PyResult<Bound<'_, PyArray1<f32>>> {
    Ok(firing::constant(num_features, probability)?.into_pyarray(py))
}
