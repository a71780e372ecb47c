//! PyO3 bindings: the private extension module `synthsae._core`. Inputs arrive validated for type
//! and shape by the Python layer; value checks happen in the core and surface as
//! `synthsae.errors` classes (see `errors.rs`).

mod errors;
mod firing;
mod kernel;
mod lap;
mod metrics;
mod pursuit;
mod sampling;

use pyo3::prelude::*;

#[pymodule]
mod _core {
    use pyo3::prelude::*;

    #[pymodule_export]
    use super::firing::{
        constant_firing_probabilities, linear_firing_probabilities, zipfian_firing_probabilities,
    };
    #[pymodule_export]
    use super::kernel::{kernel, kernels, set_kernel};
    #[pymodule_export]
    use super::lap::{linear_sum_assignment, StreamedAssignment};
    #[pymodule_export]
    use super::metrics::{dense_to_csr, AbsorptionState, EvalState};
    #[pymodule_export]
    use super::pursuit::{pursuit_backward, pursuit_picks};
    #[pymodule_export]
    use super::sampling::{hidden_from_csr, IndependentSampler, Sampler, WorldSampler};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("RNG_ALGORITHM", crate::rng::RNG_ALGORITHM)?;
        m.add("MEMORY_LIMIT", crate::memory::limit())?;
        m.add(
            "TARGET",
            format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        )
    }
}
