//! The one place where core errors become Python exceptions.

use crate::error::Error;
use pyo3::exceptions::PyValueError;
use pyo3::PyErr;

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::InvalidValue { .. } => PyValueError::new_err(e.to_string()),
        }
    }
}
