//! What a request may allocate. Sizes that come from users (rows, features) are checked against
//! this machine's memory before anything is allocated, and big buffers are reserved fallibly, so a
//! typo in a row count is a `ResourceError` naming the argument, never an abort.

use crate::error::{Error, Result};

/// Bytes one request may allocate: the machine's physical memory (Linux), else the largest size a
/// Rust allocation can have (`isize::MAX`; the fallible reservations below still refuse what the
/// system cannot give).
pub fn limit() -> u64 {
    physical()
        .unwrap_or(isize::MAX as u64)
        .min(isize::MAX as u64)
}

#[cfg(target_os = "linux")]
fn physical() -> Option<u64> {
    // SAFETY: sysconf only reads system constants.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && size > 0).then(|| (pages as u64).saturating_mul(size as u64))
}

#[cfg(not(target_os = "linux"))]
fn physical() -> Option<u64> {
    None
}

/// Refuses a request that needs `bytes` bytes (`what` says for what) when that is more than
/// [`limit`]: the message starts with `name`, the argument that sized it.
pub fn check(name: &'static str, bytes: f64, what: &str) -> Result<()> {
    let limit = limit();
    if bytes.is_nan() || bytes > limit as f64 {
        return Err(Error::resource(
            name,
            format!(
                "{what} would need {} of memory, more than this machine has ({})",
                human(bytes),
                human(limit as f64)
            ),
        ));
    }
    Ok(())
}

/// A vector with room for `len` items, reserved fallibly (an error naming `name` instead of an
/// abort when the system refuses).
pub fn with_capacity<T>(name: &'static str, len: u64, what: &str) -> Result<Vec<T>> {
    check(name, len as f64 * size_of::<T>() as f64, what)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len as usize).map_err(|_| {
        Error::resource(
            name,
            format!(
                "{what} would need {}, which the system refused to allocate",
                human(len as f64 * size_of::<T>() as f64)
            ),
        )
    })?;
    Ok(v)
}

/// `bytes` as a short human-readable size (`"1.5 GiB"`).
fn human(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut x = bytes;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < units.len() {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{x:.0} B")
    } else if x >= 1024.0 {
        format!("{x:.3e} {}", units[unit])
    } else {
        format!("{x:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_the_machine_cannot_hold_and_names_the_argument() {
        let e = check("n", 1e18, "10^15 rows").unwrap_err().to_string();
        assert!(e.starts_with("n: 10^15 rows would need"), "{e}");
        assert!(check("n", 1e6, "a small request").is_ok());
        let e = with_capacity::<u64>("n", u64::MAX / 2, "indptr").unwrap_err();
        assert!(e.to_string().starts_with("n: indptr would need"), "{e}");
        assert!(
            with_capacity::<u64>("n", 1000, "indptr")
                .unwrap()
                .capacity()
                >= 1000
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(512.0), "512 B");
        assert_eq!(human(1536.0), "1.5 KiB");
        assert_eq!(human(3.0 * 1024f64.powi(3)), "3.0 GiB");
    }
}
