//! synthsae core: exact, seeded sparse sampling of synthetic SAE benchmark data.
//!
//! Pure Rust; the PyO3 bindings live in `python/` behind the `python` feature.

pub mod copula;
pub mod csr;
pub mod error;
pub mod firing;
pub mod groups;
pub mod hazard;
pub mod independent;
pub mod kernel;
pub mod lap;
pub mod memory;
pub mod metrics;
pub mod pursuit;
pub mod rng;
pub mod threads;
pub mod world;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
