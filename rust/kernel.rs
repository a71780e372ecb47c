//! Which vector instructions the hot loops use: the widest this CPU has, or a narrower one chosen
//! with [`set_kernel`] (for benchmarks and checks). Every kernel gives the same bits: the choice
//! changes speed only (tests compare them).
//!
//! | kernel        | instructions                            | where                                  |
//! |---------------|-----------------------------------------|----------------------------------------|
//! | `avx512-vnni` | AVX-512 F/BW/VL/DQ + VNNI (`vpdpwssd`)  | copula bounds, row loop, hidden rows   |
//! | `avx512`      | AVX-512 F/BW/VL/DQ (`vpmaddwd`)         | as above                               |
//! | `avx2`        | AVX2                                    | copula bounds, assignment screens      |
//! | `portable`    | `wide`'s lanes for the build target (SSE2 on baseline x86-64, NEON on arm64) | everywhere |

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// A set of vector instructions the kernels can use, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kernel {
    /// Portable SIMD (`wide`) and plain Rust, vectorized for the build's target.
    Portable = 0,
    /// AVX2 (x86-64).
    Avx2 = 1,
    /// AVX-512 F, BW, VL and DQ (x86-64).
    Avx512 = 2,
    /// AVX-512 as above, with VNNI's integer dot products.
    Avx512Vnni = 3,
}

impl Kernel {
    /// Every kernel, narrowest first.
    pub const ALL: [Kernel; 4] = [
        Kernel::Portable,
        Kernel::Avx2,
        Kernel::Avx512,
        Kernel::Avx512Vnni,
    ];

    /// The kernel's name, as [`Kernel::parse`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
            Kernel::Avx512Vnni => "avx512-vnni",
        }
    }

    /// The kernel called `name`.
    pub fn parse(name: &str) -> Result<Kernel> {
        Kernel::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                let names: Vec<_> = Kernel::ALL.iter().map(|k| k.name()).collect();
                Error::value(
                    "kernel",
                    format!("unknown kernel {name:?}; one of {names:?}"),
                )
            })
    }

    /// The widest kernel this CPU runs.
    pub fn detected() -> Kernel {
        static DETECTED: OnceLock<Kernel> = OnceLock::new();
        *DETECTED.get_or_init(detect)
    }

    /// Whether this CPU runs the kernel.
    pub fn supported(self) -> bool {
        self <= Kernel::detected()
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Kernel {
    use std::arch::is_x86_feature_detected as has;
    let wide = has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512dq");
    match (has!("avx2"), wide, has!("avx512vnni")) {
        (true, true, true) => Kernel::Avx512Vnni,
        (true, true, false) => Kernel::Avx512,
        (true, false, _) => Kernel::Avx2,
        _ => Kernel::Portable,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Kernel {
    Kernel::Portable
}

/// The chosen kernel's discriminant, or `AUTO` for the detected one.
static CHOSEN: AtomicU8 = AtomicU8::new(AUTO);
const AUTO: u8 = u8::MAX;

/// The kernel in use: the one set by [`set_kernel`], else the widest this CPU runs.
#[inline]
pub fn kernel() -> Kernel {
    match CHOSEN.load(Ordering::Relaxed) {
        AUTO => Kernel::detected(),
        k => Kernel::ALL[k as usize],
    }
}

/// Uses `kernel` from now on in every thread (`None`: the widest this CPU runs). A kernel the CPU
/// lacks is refused.
pub fn set_kernel(kernel: Option<Kernel>) -> Result<()> {
    let chosen = match kernel {
        None => AUTO,
        Some(k) if k.supported() => k as u8,
        Some(k) => {
            return Err(Error::value(
                "kernel",
                format!(
                    "this CPU does not run {:?} (the widest it runs is {:?})",
                    k.name(),
                    Kernel::detected().name()
                ),
            ))
        }
    };
    CHOSEN.store(chosen, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unsupported_kernels_are_refused() {
        for k in Kernel::ALL {
            assert_eq!(Kernel::parse(k.name()).unwrap(), k);
        }
        assert!(Kernel::parse("sse9").is_err());
        assert!(Kernel::Portable.supported());
        for k in Kernel::ALL.into_iter().filter(|k| !k.supported()) {
            assert!(set_kernel(Some(k)).is_err());
        }
        assert_eq!(
            kernel(),
            Kernel::detected(),
            "a refused kernel changes nothing"
        );
    }
}
