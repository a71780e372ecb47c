//! Thread pools: `None` uses rayon's global pool (honours `RAYON_NUM_THREADS`); `Some(k)` a cached
//! pool of k threads. Results never depend on the choice (see `rng.rs`).

use crate::error::{Error, Result};
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

fn pool(num_threads: usize) -> Result<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = pools.get(&num_threads) {
        return Ok(p.clone());
    }
    let p = ThreadPoolBuilder::new()
        .num_threads(num_threads)
        .thread_name(|i| format!("synthsae-{i}"))
        .build()
        .map_err(|e| {
            Error::value(
                "num_threads",
                format!("cannot start {num_threads} threads: {e}"),
            )
        })?;
    let p = Arc::new(p);
    pools.insert(num_threads, p.clone());
    Ok(p)
}

/// Runs `f` on `num_threads` threads (`None` = rayon's global pool).
pub fn install<R: Send>(num_threads: Option<usize>, f: impl FnOnce() -> R + Send) -> Result<R> {
    match num_threads {
        None => Ok(f()),
        Some(0) => Err(Error::value("num_threads", "must be at least 1")),
        Some(k) => Ok(pool(k)?.install(f)),
    }
}
