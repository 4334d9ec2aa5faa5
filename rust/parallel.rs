//! Thread-count control for the batch kernels: `None` uses rayon's global pool (sized by
//! `RAYON_NUM_THREADS` or the number of cores); `Some(n)` runs on a pool of exactly `n` threads.
//! Every kernel gives the same output whatever the thread count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};

fn pools() -> &'static Mutex<HashMap<usize, Arc<rayon::ThreadPool>>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    POOLS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Runs `f` with rayon work inside it on `num_threads` threads (pools are built once and kept).
pub fn with_threads<R: Send>(
    num_threads: Option<usize>,
    f: impl FnOnce() -> R + Send,
) -> Result<R> {
    let Some(n) = num_threads else {
        return Ok(f());
    };
    if n == 0 {
        return Err(Error::invalid(
            "num_threads",
            "must be at least 1 (or None for all cores)",
        ));
    }
    let pool = {
        let mut map = pools().lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&n) {
            Some(p) => p.clone(),
            None => {
                let p = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| {
                        Error::invalid("num_threads", format!("cannot start {n} threads: {e}"))
                    })?;
                let p = Arc::new(p);
                map.insert(n, p.clone());
                p
            }
        }
    };
    Ok(pool.install(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_the_requested_pool() {
        assert_eq!(
            with_threads(Some(1), rayon::current_num_threads).unwrap(),
            1
        );
        assert_eq!(
            with_threads(Some(3), rayon::current_num_threads).unwrap(),
            3
        );
        assert!(with_threads(Some(0), || ()).is_err());
    }
}
