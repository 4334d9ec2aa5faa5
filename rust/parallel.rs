//! Thread-count control for the batch kernels: `None` runs on a pool of the default size (set by
//! `RAYON_NUM_THREADS`, else the number of cores); `Some(n)` runs on a pool of exactly `n`
//! threads, and `Some(1)` on the calling thread itself (see [`with_threads`]).
//! Every kernel gives the same output whatever the thread count. [`shares`] cuts work into one
//! run per thread for passes that keep a state per thread.
//!
//! Rayon's global pool is never used: a forked child inherits a pool's bookkeeping but not its
//! threads, so work sent there would wait forever. The pools here are this module's own, owned
//! by one process id; a child that finds another id drops them from its books and builds new
//! ones (see [`shared_pool`]).

use std::cell::Cell;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};

/// How many pools of distinct sizes are kept; the least recently used one beyond that is dropped
/// and its threads exit when its last call ends.
pub const KEPT_POOLS: usize = 3;

/// The kept pools, least recently used first, and the process that built them.
struct Pools {
    pid: u32,
    kept: Vec<(usize, Arc<rayon::ThreadPool>)>,
}

fn pools() -> &'static Mutex<Pools> {
    static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();
    POOLS.get_or_init(|| {
        Mutex::new(Pools {
            pid: std::process::id(),
            kept: Vec::new(),
        })
    })
}

/// Runs `f` with rayon work inside it on `num_threads` threads (pools are built once and the
/// last [`KEPT_POOLS`] sizes used are kept).
///
/// One thread means the calling thread: handing the work to a pool thread costs a wake-up, and
/// that thread's core may not hold the data in its cache (a 2 ms fit took 15% longer so). Each
/// thread that asks for one thread gets a one-thread pool of its own, whose one thread is that
/// thread (rayon leaks such a pool's small registry when the thread ends). Rayon then counts the
/// thread as a worker of that pool for good. `None` inside a call stays on the pool of that call;
/// outside any call it goes to the kept pool of the default size, never to rayon's global pool.
/// Kernels that use rayon are called through here (with `None` at least) so that this holds for
/// all of them.
pub fn with_threads<R: Send>(
    num_threads: Option<usize>,
    f: impl FnOnce() -> R + Send,
) -> Result<R> {
    thread_local! {
        // None when this thread already works for another pool
        static HERE: Option<rayon::ThreadPool> = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .use_current_thread()
            .build()
            .ok();
        // whether HERE holds a pool, and how many calls on it are under way
        static HERE_BUILT: Cell<bool> = const { Cell::new(false) };
        static HERE_DEPTH: Cell<u32> = const { Cell::new(0) };
    }
    match num_threads {
        // inside a call: a one-thread one, or on a worker of another pool
        None if HERE_DEPTH.get() > 0 => Ok(f()),
        None if !HERE_BUILT.get() && rayon::current_thread_index().is_some() => Ok(f()),
        None => shared_pool(0).map(|p| p.install(f)),
        Some(0) => Err(Error::invalid(
            "num_threads",
            "must be at least 1 (or None for all cores)",
        )),
        Some(1) => {
            let mut f = Some(f);
            let here = HERE.with(|pool| {
                let pool = pool.as_ref()?;
                HERE_BUILT.set(true);
                HERE_DEPTH.set(HERE_DEPTH.get() + 1);
                // (the depth goes back down even if `f` panics)
                let _down = Defer(|| HERE_DEPTH.set(HERE_DEPTH.get() - 1));
                Some(pool.install(|| f.take().map(|f| f())))
            });
            match (here, f.take()) {
                (Some(Some(out)), _) => Ok(out),
                (_, Some(f)) => shared_pool(1).map(|p| p.install(f)),
                (_, None) => unreachable!("f ran but gave nothing"),
            }
        }
        Some(n) => shared_pool(n).map(|p| p.install(f)),
    }
}

/// Runs its closure when dropped.
struct Defer<F: FnMut()>(F);

impl<F: FnMut()> Drop for Defer<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// The kept pool of `n` threads (0: the default number, `RAYON_NUM_THREADS` or the cores), built
/// when missing; the least recently used pool beyond [`KEPT_POOLS`] is let go.
///
/// In a forked child the kept pools are the parent's, whose threads are not there: they are
/// forgotten, never dropped (dropping would signal threads that do not exist), and new ones
/// built. That leaks their bookkeeping once per fork, a few hundred bytes a pool.
fn shared_pool(n: usize) -> Result<Arc<rayon::ThreadPool>> {
    let mut pools = pools().lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if pools.pid != pid {
        for (_, pool) in pools.kept.drain(..) {
            std::mem::forget(pool);
        }
        pools.pid = pid;
    }
    if let Some(i) = pools.kept.iter().position(|(size, _)| *size == n) {
        let used = pools.kept.remove(i);
        let pool = used.1.clone();
        pools.kept.push(used);
        return Ok(pool);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(move |i| format!("textsieve-{n}-{i}"))
        .build()
        .map_err(|e| Error::invalid("num_threads", format!("cannot start {n} threads: {e}")))?;
    let pool = Arc::new(pool);
    pools.kept.push((n, pool.clone()));
    let dropped: Vec<_> = if pools.kept.len() > KEPT_POOLS {
        let extra = pools.kept.len() - KEPT_POOLS;
        pools.kept.drain(..extra).collect()
    } else {
        Vec::new()
    };
    drop(pools);
    // (outside the lock: a dropped pool tells its threads to exit, they do so when idle)
    drop(dropped);
    Ok(pool)
}

/// The sizes of the kept pools, least recently used first (for tests).
#[cfg(test)]
fn kept_sizes() -> Vec<usize> {
    let pools = pools().lock().unwrap_or_else(|e| e.into_inner());
    pools.kept.iter().map(|(n, _)| *n).collect()
}

/// `items` cut into one run of consecutive items per thread of the current pool, of about
/// equal total `size`, for passes that keep one state per thread and merge the states at the
/// end: as many states as threads (rayon's adaptive splitting can make more).
pub fn shares<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let total: usize = items.iter().map(|t| size(t) + 1).sum();
    let per = total.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let mut out = Vec::new();
    let (mut start, mut run) = (0, 0);
    for (i, t) in items.iter().enumerate() {
        run += size(t) + 1;
        if run >= per {
            out.push(&items[start..=i]);
            (start, run) = (i + 1, 0);
        }
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn shares_cover_every_item_once_in_order() {
        let items: Vec<usize> = (0..100).map(|i| (i * 37) % 11).collect();
        for n in [1, 2, 3, 7] {
            let got = with_threads(Some(n), || shares(&items, |&x| x)).unwrap();
            assert!(got.len() <= n && !got.is_empty());
            assert_eq!(got.concat(), items);
        }
        let none: Vec<usize> = Vec::new();
        assert!(shares(&none, |&x| x).is_empty());
    }

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

    #[test]
    fn only_the_last_pools_used_are_kept() {
        // (other tests use pools at the same time: they can only make more pools go)
        let used: Vec<_> = (2..=9)
            .map(|n| {
                let pool = shared_pool(n).unwrap();
                assert_eq!(
                    with_threads(Some(n), rayon::current_num_threads).unwrap(),
                    n
                );
                Arc::downgrade(&pool)
            })
            .collect();
        let alive = used.iter().filter(|w| w.upgrade().is_some()).count();
        assert!(alive <= KEPT_POOLS, "{alive} pools alive");
        assert!(kept_sizes().len() <= KEPT_POOLS);
        // reusing a kept pool makes it the most recent one
        let nine = shared_pool(9).unwrap();
        assert!(Arc::ptr_eq(
            &nine,
            &used[7].upgrade().unwrap_or_else(|| nine.clone())
        ));
    }

    #[test]
    fn a_forked_child_builds_its_own_pools() {
        // a child sees another process id than the one that built the pools; pretend to be one
        let before = shared_pool(5).unwrap();
        pools().lock().unwrap().pid = u32::MAX;
        let after = shared_pool(5).unwrap();
        assert!(!Arc::ptr_eq(&before, &after));
        assert_eq!(pools().lock().unwrap().pid, std::process::id());
        assert_eq!(
            with_threads(Some(5), rayon::current_num_threads).unwrap(),
            5
        );
        // the parent's pools were forgotten, not dropped: this one still works
        assert_eq!(before.install(rayon::current_num_threads), 5);
    }

    #[test]
    fn all_cores_never_use_the_global_pool() {
        let all = with_threads(None, || {
            let name = std::thread::current().name().map(str::to_owned);
            (rayon::current_num_threads(), name)
        });
        let (n, name) = all.unwrap();
        let default = rayon::ThreadPoolBuilder::new().build().unwrap();
        assert_eq!(n, default.current_num_threads());
        assert!(name.unwrap_or_default().starts_with("textsieve-"));
    }

    #[test]
    fn one_thread_is_the_calling_thread_in_any_thread() {
        let items: Vec<u64> = (0..10_000).collect();
        let run = || {
            let me = std::thread::current().id();
            let (here, sum) = with_threads(Some(1), || {
                let sum: u64 = items.par_iter().map(|&x| x * x).sum();
                (std::thread::current().id(), sum)
            })
            .unwrap();
            assert_eq!(here, me);
            assert_eq!(sum, items.iter().map(|&x| x * x).sum::<u64>());
            // again, and nested
            let nested = with_threads(Some(1), || {
                with_threads(Some(1), rayon::current_num_threads)
            });
            assert_eq!(nested.unwrap().unwrap(), 1);
        };
        run();
        // threads that use it come and go (their pools must not hold them up)
        for _ in 0..4 {
            std::thread::scope(|s| {
                s.spawn(run);
            });
        }
        // from inside another pool's worker: the work still runs, on the kept one-thread pool
        let two = with_threads(Some(2), || {
            with_threads(Some(1), rayon::current_num_threads)
        });
        assert_eq!(two.unwrap().unwrap(), 1);
    }

    #[test]
    fn all_cores_after_one_thread() {
        // a thread that has run work on one thread is a worker of its own pool for rayon; its
        // later calls for all cores must still get them, inside a one-thread call they stay on it
        std::thread::scope(|s| {
            s.spawn(|| {
                let all = with_threads(None, rayon::current_num_threads).unwrap();
                with_threads(Some(1), || ()).unwrap();
                assert_eq!(with_threads(None, rayon::current_num_threads).unwrap(), all);
                let inner = with_threads(Some(1), || {
                    with_threads(None, rayon::current_num_threads).unwrap()
                });
                assert_eq!(inner.unwrap(), 1);
                // a panic inside a one-thread call leaves the thread as it was
                let caught = std::panic::catch_unwind(|| with_threads(Some(1), || panic!("boom")));
                assert!(caught.is_err());
                assert_eq!(with_threads(None, rayon::current_num_threads).unwrap(), all);
            });
        });
    }
}
