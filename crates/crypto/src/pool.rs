//! A bounded pool of dedicated threads for CPU-heavy crypto (argon2).
//!
//! * At most `permits` jobs run at once: a job needs a semaphore permit, and the permit moves
//!   into the job, so a caller that gives up (its request was dropped) cannot free it while
//!   the hash still runs.
//! * A caller waits for a permit at most `queue_timeout`, then gets
//!   [`CryptoError::Overloaded`]: the queue is bounded by time, never grows without limit.
//! * The threads are the pool's own (one per permit, so a permitted job never waits for a
//!   thread), not tokio's blocking pool, because they run at a lower scheduling priority (a
//!   higher nice value): when every core hashes, the async runtime still gets the CPU first.
//!   Renicing tokio's shared blocking threads would slow file I/O too, and an unprivileged
//!   process cannot undo it.
//!
//! Metrics: `mcpgate_crypto_hash_queue_wait_seconds` (histogram),
//! `mcpgate_crypto_hashes_in_flight` and `mcpgate_crypto_hash_permits` (gauges),
//! `mcpgate_crypto_hash_rejected_total` (counter).

use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot};

use crate::CryptoError;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The bounded hashing pool. Dropping it lets its threads finish their job and exit.
#[derive(Debug)]
pub struct HashingPool {
    semaphore: Arc<Semaphore>,
    permits: usize,
    queue_timeout: Duration,
    in_flight: Arc<AtomicUsize>,
    jobs: mpsc::Sender<Job>,
}

impl HashingPool {
    /// Starts `permits` threads, each niced by `nice` (0 keeps the runtime's priority).
    pub fn new(
        permits: NonZeroUsize,
        queue_timeout: Duration,
        nice: u8,
    ) -> Result<Self, CryptoError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..permits.get() {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("mcpgate-hash-{i}"))
                .spawn(move || worker(&rx, nice))
                .map_err(|_| CryptoError::PoolClosed)?;
        }
        metrics::gauge!("mcpgate_crypto_hash_permits").set(permits.get() as f64);
        Ok(Self {
            semaphore: Arc::new(Semaphore::new(permits.get())),
            permits: permits.get(),
            queue_timeout,
            in_flight: Arc::new(AtomicUsize::new(0)),
            jobs: tx,
        })
    }

    pub fn permits(&self) -> usize {
        self.permits
    }

    pub fn queue_timeout(&self) -> Duration {
        self.queue_timeout
    }

    /// Jobs running right now (never more than [`Self::permits`]).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// What an overloaded caller is told: the queue timeout in whole seconds, at least one.
    pub fn retry_after(&self) -> Duration {
        let secs = self.queue_timeout.as_secs() + u64::from(self.queue_timeout.subsec_nanos() > 0);
        Duration::from_secs(secs.max(1))
    }

    /// Runs `job` on a pool thread once a permit is free, or fails with `Overloaded` after the
    /// queue timeout.
    pub async fn run<T, F>(&self, job: F) -> Result<T, CryptoError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let queued = Instant::now();
        let acquire = Arc::clone(&self.semaphore).acquire_owned();
        let permit = match tokio::time::timeout(self.queue_timeout, acquire).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Err(CryptoError::PoolClosed),
            Err(_elapsed) => {
                metrics::counter!("mcpgate_crypto_hash_rejected_total").increment(1);
                return Err(CryptoError::Overloaded {
                    retry_after: self.retry_after(),
                });
            }
        };
        metrics::histogram!("mcpgate_crypto_hash_queue_wait_seconds")
            .record(queued.elapsed().as_secs_f64());

        let (done, result) = oneshot::channel();
        let in_flight = Arc::clone(&self.in_flight);
        let boxed: Job = Box::new(move || {
            let permit = permit;
            let running = Running::enter(in_flight);
            let out = job();
            // Dropped in this order on unwinding too: the count falls before the permit frees.
            drop(running);
            // Released only here, after the work: a dropped caller cannot free it early.
            drop(permit);
            // The caller may be gone; the result is then simply dropped.
            let _ = done.send(out);
        });
        // No await between taking the permit and handing it over: it cannot leak.
        self.jobs.send(boxed).map_err(|_| CryptoError::PoolClosed)?;
        result.await.map_err(|_| CryptoError::PoolClosed)
    }
}

/// Counts a running job for [`HashingPool::in_flight`] and the gauge, also when it panics.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn enter(count: Arc<AtomicUsize>) -> Self {
        let now = count.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::gauge!("mcpgate_crypto_hashes_in_flight").set(now as f64);
        Self(count)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let now = self.0.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
        metrics::gauge!("mcpgate_crypto_hashes_in_flight").set(now as f64);
    }
}

fn worker(jobs: &Mutex<mpsc::Receiver<Job>>, nice: u8) {
    if nice > 0 {
        match crate::priority::lower_current_thread(nice) {
            Ok(value) => tracing::debug!(nice = value, "hashing thread reniced"),
            Err(e) => tracing::warn!(error = %e, "could not lower the hashing thread's priority"),
        }
    }
    loop {
        let next = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = next else {
            return; // the pool was dropped
        };
        // A panicking job drops its permit and its result sender while unwinding (the caller
        // gets `PoolClosed`); the thread stays, so the pool keeps its size.
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("a hashing job panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(permits: usize, timeout_ms: u64) -> HashingPool {
        let permits = NonZeroUsize::new(permits).unwrap_or(NonZeroUsize::MIN);
        HashingPool::new(permits, Duration::from_millis(timeout_ms), 0)
            .unwrap_or_else(|e| panic!("pool: {e}"))
    }

    #[tokio::test]
    async fn never_runs_more_jobs_than_permits() {
        let pool = Arc::new(pool(3, 10_000));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        for t in tasks {
            assert!(matches!(t.await, Ok(Ok(()))));
        }
        assert_eq!(
            peak.load(Ordering::SeqCst),
            3,
            "all permits used, never more"
        );
        assert_eq!(pool.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_dropped_caller_keeps_its_permit_until_the_job_ends() {
        let pool = Arc::new(pool(1, 50));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let started = Arc::new(tokio::sync::Notify::new());
        let caller = {
            let (pool, started) = (pool.clone(), started.clone());
            tokio::spawn(async move {
                pool.run(move || {
                    started.notify_one();
                    let _ = wait.recv();
                })
                .await
            })
        };
        started.notified().await;
        caller.abort(); // the request goes away while its hash runs
        let _ = caller.await;
        assert_eq!(pool.in_flight(), 1);
        let err = pool.run(|| ()).await.err();
        assert!(
            matches!(err, Some(CryptoError::Overloaded { .. })),
            "{err:?}"
        );
        let _ = release.send(());
        assert!(pool.run(|| ()).await.is_ok());
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_caller_and_the_pool_goes_on() {
        let pool = pool(1, 1_000);
        let err = pool.run(|| panic!("boom")).await.err();
        assert!(matches!(err, Some(CryptoError::PoolClosed)), "{err:?}");
        assert_eq!(pool.in_flight(), 0);
        assert_eq!(pool.run(|| 7).await.ok(), Some(7));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn jobs_run_on_threads_reniced_below_the_caller() -> Result<(), CryptoError> {
        let caller = crate::priority::current_thread_nice().map_err(|_| CryptoError::PoolClosed)?;
        let pool = HashingPool::new(NonZeroUsize::MIN, Duration::from_secs(5), 7)?;
        let worker = pool
            .run(crate::priority::current_thread_nice)
            .await?
            .map_err(|_| CryptoError::PoolClosed)?;
        assert_eq!(worker, (caller + 7).min(19));
        let plain = HashingPool::new(NonZeroUsize::MIN, Duration::from_secs(5), 0)?;
        let same = plain
            .run(crate::priority::current_thread_nice)
            .await?
            .map_err(|_| CryptoError::PoolClosed)?;
        assert_eq!(same, caller, "nice 0 keeps the process's priority");
        Ok(())
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        assert_eq!(pool(1, 200).retry_after(), Duration::from_secs(1));
        assert_eq!(pool(1, 2_500).retry_after(), Duration::from_secs(3));
    }
}
