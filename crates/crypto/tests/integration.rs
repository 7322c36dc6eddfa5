//! The hashing pool under load, through the public API.

mod load {
    //! Under load: the runtime stays responsive, the permits bound the work, overload is quick.

    use std::num::NonZeroUsize;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use mcpgate_core::SecretString;
    use mcpgate_crypto::{CryptoError, HasherConfig, PasswordHasher};

    fn hasher(config: HasherConfig) -> Arc<PasswordHasher> {
        Arc::new(PasswordHasher::new(&config).unwrap_or_else(|e| panic!("hasher: {e}")))
    }

    struct Ticks {
        max_gap: Duration,
        ticks: usize,
        max_in_flight: usize,
    }

    /// Ticks every millisecond on the runtime until `stop`, noting the largest gap between two
    /// ticks and the most hashes seen in flight.
    async fn tick(hasher: Arc<PasswordHasher>, stop: Arc<tokio::sync::Notify>) -> Ticks {
        let mut out = Ticks {
            max_gap: Duration::ZERO,
            ticks: 0,
            max_in_flight: 0,
        };
        let mut last = Instant::now();
        loop {
            tokio::select! {
                _ = stop.notified() => return out,
                _ = tokio::time::sleep(Duration::from_millis(1)) => {}
            }
            let now = Instant::now();
            out.max_gap = out.max_gap.max(now - last);
            out.ticks += 1;
            out.max_in_flight = out.max_in_flight.max(hasher.pool().in_flight());
            last = now;
        }
    }

    /// 64 concurrent logins: every core hashes, yet a 1 ms ticker on the runtime keeps ticking,
    /// and the pool never runs more hashes than it has permits.
    ///
    /// Each hash costs four OWASP hashes (t = 8, 60–90 ms here), so a hash that ran on a
    /// runtime thread would stall the ticker for longer than the 50 ms bound: the test can
    /// fail, and does with hashing moved onto the runtime.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_runtime_keeps_ticking_while_64_hashes_run() -> Result<(), CryptoError> {
        let nice = std::env::var("MCPGATE_TEST_NICE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(HasherConfig::default().nice);
        let hasher = hasher(HasherConfig {
            queue_timeout_ms: 60_000,
            t_cost: 8,
            nice,
            ..HasherConfig::default()
        });
        let permits = hasher.pool().permits();
        let one = Instant::now();
        let stored = hasher.hash(SecretString::new("pw")).await?;
        let one = one.elapsed();

        let stop = Arc::new(tokio::sync::Notify::new());
        let ticker = tokio::spawn(tick(Arc::clone(&hasher), Arc::clone(&stop)));
        let started = Instant::now();
        let mut logins = Vec::new();
        for i in 0..64 {
            let (hasher, stored) = (Arc::clone(&hasher), stored.clone());
            logins.push(tokio::spawn(async move {
                let password = SecretString::new(if i % 2 == 0 { "pw" } else { "wrong" });
                hasher.verify(password, &stored).await
            }));
        }
        let mut matched = 0;
        for login in logins {
            let outcome = login.await.map_err(|_| CryptoError::PoolClosed)??;
            matched += usize::from(outcome.is_match());
        }
        let elapsed = started.elapsed();
        stop.notify_one();
        let ticks = ticker.await.map_err(|_| CryptoError::PoolClosed)?;
        eprintln!(
            "one hash {one:?}; 64 verifies in {elapsed:?} on {permits} permits (nice {nice}); \
             ticker: {} ticks, \
             largest gap {:?}, most in flight {}",
            ticks.ticks, ticks.max_gap, ticks.max_in_flight
        );

        assert_eq!(matched, 32);
        assert_eq!(ticks.max_in_flight, permits, "all permits used, never more");
        // A hash on the runtime would stall the ticker for at least one whole hash. The bound
        // is relative to that, measured in the same run, so a loaded CI machine (other tests,
        // other builds) does not fail it while hashing on the runtime still would.
        let bound = (one / 2).max(Duration::from_millis(50));
        assert!(
            ticks.max_gap < bound,
            "the runtime stalled for {:?} (bound {bound:?}, one hash {one:?})",
            ticks.max_gap
        );
        Ok(())
    }

    /// One permit, a short queue timeout, a burst of 20: the excess is turned away quickly with
    /// a `Retry-After`, nothing hangs, and the pool serves again afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_beyond_one_permit_is_overloaded_quickly() -> Result<(), CryptoError> {
        let hasher = hasher(HasherConfig {
            permits: NonZeroUsize::new(1),
            queue_timeout_ms: 100,
            t_cost: 20, // ~0.2 s per hash: a permit stays taken past the queue timeout
            ..HasherConfig::default()
        });
        let started = Instant::now();
        let burst: Vec<_> = (0..20)
            .map(|_| {
                let hasher = Arc::clone(&hasher);
                tokio::spawn(async move {
                    let r = hasher.hash(SecretString::new("pw")).await;
                    (r, Instant::now())
                })
            })
            .collect();
        let (mut ok, mut overloaded) = (0, 0);
        let mut slowest_rejection = Duration::ZERO;
        for task in burst {
            let (result, done) = tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .map_err(|_| CryptoError::PoolClosed)?
                .map_err(|_| CryptoError::PoolClosed)?;
            match result {
                Ok(_) => ok += 1,
                Err(CryptoError::Overloaded { retry_after }) => {
                    assert_eq!(retry_after, Duration::from_secs(1));
                    overloaded += 1;
                    slowest_rejection = slowest_rejection.max(done - started);
                }
                Err(e) => return Err(e),
            }
        }
        eprintln!(
            "burst: {ok} hashed, {overloaded} overloaded, slowest rejection {slowest_rejection:?}"
        );
        assert!(ok >= 1, "the permit holder finishes");
        assert!(
            overloaded >= 15,
            "the excess is rejected, {overloaded} were"
        );
        assert!(
            slowest_rejection < Duration::from_secs(2),
            "rejections come after about the queue timeout, the slowest took {slowest_rejection:?}"
        );
        assert!(hasher.hash(SecretString::new("pw")).await.is_ok());
        Ok(())
    }
}
