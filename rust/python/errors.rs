//! The one place where core errors become Python exceptions: each kind of [`Error`] raises its class
//! from `synthsae.errors`, the classes users catch (imported, so they are the very same objects).

use crate::error::Error;
use pyo3::PyErr;

mod classes {
    pyo3::import_exception!(synthsae.errors, ConfigError);
    pyo3::import_exception!(synthsae.errors, ConfigTypeError);
    pyo3::import_exception!(synthsae.errors, ResourceError);
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        let message = e.to_string();
        match e {
            Error::InvalidValue { .. } => classes::ConfigError::new_err(message),
            Error::InvalidType { .. } => classes::ConfigTypeError::new_err(message),
            Error::Resource { .. } => classes::ResourceError::new_err(message),
        }
    }
}
