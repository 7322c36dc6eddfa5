//! Latency samples, percentiles and the Markdown tables every scenario prints.

use std::time::Duration;

/// Latencies of one measured run.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    nanos: Vec<u64>,
}

impl Samples {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            nanos: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, d: Duration) {
        self.nanos
            .push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn extend(&mut self, other: Samples) {
        self.nanos.extend(other.nanos);
    }

    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }

    /// The `p`-th percentile (0–100), nearest-rank.
    pub fn percentile(&mut self, p: f64) -> Duration {
        if self.nanos.is_empty() {
            return Duration::ZERO;
        }
        self.nanos.sort_unstable();
        let rank = ((p / 100.0) * self.nanos.len() as f64).ceil() as usize;
        Duration::from_nanos(self.nanos[rank.clamp(1, self.nanos.len()) - 1])
    }

    pub fn mean(&self) -> Duration {
        if self.nanos.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.nanos.iter().sum::<u64>() / self.nanos.len() as u64)
    }

    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.nanos.iter().copied().max().unwrap_or(0))
    }
}

/// Formats a duration at a readable scale.
pub fn fmt_dur(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 10_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

pub fn ratio(value: f64, baseline: f64) -> String {
    if baseline == 0.0 {
        "–".into()
    } else {
        format!("{:.2}×", value / baseline)
    }
}

/// A Markdown table, printed as rows are added so a long run shows progress.
pub struct Table {
    columns: usize,
}

impl Table {
    pub fn new(title: &str, headers: &[&str]) -> Self {
        println!("\n### {title}\n");
        println!("| {} |", headers.join(" | "));
        println!("|{}", "---|".repeat(headers.len()));
        Self {
            columns: headers.len(),
        }
    }

    pub fn row(&self, cells: &[String]) {
        debug_assert_eq!(cells.len(), self.columns);
        println!("| {} |", cells.join(" | "));
    }
}

/// The facts a reader needs to weigh the figures.
pub fn print_machine(scenario: &str, short: bool) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "## mcpgate bench: {scenario}\n\nmachine: {cores} cores, {} build{}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        if short {
            ", --short (small load: proves it runs, figures are rough)"
        } else {
            ""
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut s = Samples::default();
        for ms in 1..=100 {
            s.push(Duration::from_millis(ms));
        }
        assert_eq!(s.percentile(50.0), Duration::from_millis(50));
        assert_eq!(s.percentile(99.0), Duration::from_millis(99));
        assert_eq!(s.percentile(100.0), Duration::from_millis(100));
        assert_eq!(s.max(), Duration::from_millis(100));
    }
}
