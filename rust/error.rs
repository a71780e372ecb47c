//! The one error type of the Rust core. `rust/python/errors.rs` maps it to Python exceptions.

/// Result alias of the core.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything the core can reject. Every variant names the offending argument.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An argument has a value outside its domain (maps to `ValueError`).
    #[error("{name}: {message}")]
    InvalidValue { name: &'static str, message: String },
}

impl Error {
    /// Shorthand for [`Error::InvalidValue`].
    pub fn value(name: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidValue {
            name,
            message: message.into(),
        }
    }
}
