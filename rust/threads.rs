//! Thread pools: `None` uses a pool of rayon's default size (honours `RAYON_NUM_THREADS`);
//! `Some(k)` a pool of k threads. Results never depend on the choice (see `rng.rs`).
//!
//! Every parallel section of the crate runs inside [`install`], never on rayon's global pool: pools
//! are kept per process, so a child made by `fork` (a torch DataLoader worker, `multiprocessing`)
//! builds its own instead of waiting forever on threads that `fork` did not copy.

use crate::error::{Error, Result};
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The pools of process `pid`, by thread count (0 = rayon's default).
#[derive(Default)]
struct Pools {
    pid: u32,
    pools: HashMap<usize, Arc<ThreadPool>>,
}

fn pool(num_threads: usize) -> Result<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if pools.pid != pid {
        // Inherited through fork: their threads do not exist here, and dropping them could block.
        std::mem::forget(std::mem::take(&mut pools.pools));
        pools.pid = pid;
    }
    if let Some(p) = pools.pools.get(&num_threads) {
        return Ok(p.clone());
    }
    let mut builder = ThreadPoolBuilder::new().thread_name(|i| format!("synthsae-{i}"));
    if num_threads > 0 {
        builder = builder.num_threads(num_threads);
    }
    let p = builder.build().map_err(|e| {
        Error::resource(
            "num_threads",
            format!("cannot start {num_threads} threads: {e}"),
        )
    })?;
    let p = Arc::new(p);
    pools.pools.insert(num_threads, p.clone());
    Ok(p)
}

/// Runs `f` on `num_threads` threads (`None` = rayon's default number).
pub fn install<R: Send>(num_threads: Option<usize>, f: impl FnOnce() -> R + Send) -> Result<R> {
    match num_threads {
        Some(0) => Err(Error::value("num_threads", "must be at least 1")),
        k => Ok(pool(k.unwrap_or(0))?.install(f)),
    }
}
