//! The one error type of the Rust core. `rust/python/errors.rs` maps each kind to its Python class
//! in `synthsae.errors`.

/// Result alias of the core.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything the core can reject. Every variant names the offending argument.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An argument has a value outside its domain (maps to `ConfigError`, a `ValueError`).
    #[error("{name}: {message}")]
    InvalidValue { name: &'static str, message: String },
    /// An argument has the wrong type; `expected` completes "`name` must be ..." (maps to
    /// `ConfigTypeError`, a `TypeError`).
    #[error("{name} must be {expected}")]
    InvalidType {
        name: &'static str,
        expected: &'static str,
    },
    /// A valid request that this machine cannot serve: more memory than it has, an allocation or
    /// threads the system refused (maps to `ResourceError`, a `ValueError`).
    #[error("{name}: {message}")]
    Resource { name: &'static str, message: String },
}

impl Error {
    /// Shorthand for [`Error::InvalidValue`].
    pub fn value(name: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidValue {
            name,
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::InvalidType`].
    pub fn type_(name: &'static str, expected: &'static str) -> Self {
        Error::InvalidType { name, expected }
    }

    /// Shorthand for [`Error::Resource`].
    pub fn resource(name: &'static str, message: impl Into<String>) -> Self {
        Error::Resource {
            name,
            message: message.into(),
        }
    }

    /// The argument the error is about.
    pub fn name(&self) -> &'static str {
        match self {
            Error::InvalidValue { name, .. }
            | Error::InvalidType { name, .. }
            | Error::Resource { name, .. } => name,
        }
    }
}
