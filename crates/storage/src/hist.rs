//! A lock-free latency histogram for pool checkouts: how long callers waited for a connection
//! and how long they held it. Recording is two relaxed atomic adds, cheap enough for every
//! checkout; quantiles are approximate (4 sub-buckets per power of two: within ~20%).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const SUB: usize = 4;
const BUCKETS: usize = 40 * SUB;

pub(crate) struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    max_micros: AtomicU64,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            max_micros: AtomicU64::new(0),
        }
    }

    /// Below 8 µs one bucket per microsecond; above, four per power of two.
    fn index(micros: u64) -> usize {
        if micros < 8 {
            return micros as usize;
        }
        let power = 63 - u64::from(micros.leading_zeros());
        let fraction = ((micros >> (power - 2)) & 0b11) as usize;
        ((power as usize) * SUB + fraction).min(BUCKETS - 1)
    }

    /// The upper bound (µs) of a bucket.
    fn upper(index: usize) -> u64 {
        if index < 8 {
            return index as u64;
        }
        let power = (index / SUB) as u32;
        let fraction = (index % SUB) as u64;
        let base = 1u64 << power;
        base + (base >> 2) * (fraction + 1)
    }

    pub(crate) fn record(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[Self::index(micros)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    pub(crate) fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
        self.count.store(0, Ordering::Relaxed);
        self.max_micros.store(0, Ordering::Relaxed);
    }

    pub(crate) fn quantile(&self, q: f64) -> Duration {
        let total = self.count.load(Ordering::Relaxed);
        if total == 0 {
            return Duration::ZERO;
        }
        let target = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= target {
                let max = self.max_micros.load(Ordering::Relaxed);
                return Duration::from_micros(Self::upper(i).min(max));
            }
        }
        Duration::from_micros(self.max_micros.load(Ordering::Relaxed))
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn max(&self) -> Duration {
        Duration::from_micros(self.max_micros.load(Ordering::Relaxed))
    }
}

/// Pool checkout figures since the store was built or last reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckoutStats {
    pub checkouts: u64,
    pub wait_p50: Duration,
    pub wait_p99: Duration,
    pub wait_max: Duration,
    pub held_p50: Duration,
    pub held_p99: Duration,
    pub held_max: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_close() {
        let h = Histogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5).as_micros() as f64;
        let p99 = h.quantile(0.99).as_micros() as f64;
        assert!((450.0..=640.0).contains(&p50), "{p50}");
        assert!((950.0..=1000.0).contains(&p99), "{p99}");
        assert_eq!(h.max(), Duration::from_micros(1000));
        h.reset();
        assert_eq!(h.count(), 0);
        assert_eq!(h.quantile(0.99), Duration::ZERO);
    }

    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for us in [
            0u64,
            1,
            2,
            3,
            5,
            7,
            8,
            9,
            15,
            16,
            100,
            1_000,
            1_000_000,
            u64::MAX,
        ] {
            let i = Histogram::index(us);
            assert!(i >= last);
            assert!(Histogram::upper(i) >= us.min(Histogram::upper(BUCKETS - 1)));
            last = i;
        }
    }
}
