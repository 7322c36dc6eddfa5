//! When each personal access token was last used, recorded off the request path.
//!
//! A request only offers the token's id to a bounded channel (`try_send`: it never waits, and
//! a full channel drops the note — the next use carries it again). Offers are throttled per
//! token to one per interval before they reach the channel, and a writer task coalesces what
//! arrives per token and writes it in one short transaction per interval. A write that fails
//! or waits (a busy pool, a locked database) delays only the writer: its batch is kept and
//! merged into the next one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mcpgate_storage::{Store, now_ms};
use tokio::sync::mpsc;

/// Notes waiting for the writer, at most.
const QUEUE: usize = 8_192;

#[derive(Debug)]
pub struct LastUsed {
    sender: mpsc::Sender<(String, i64)>,
    /// Tokens noted within the current interval: later uses in it are not offered again.
    recent: moka::sync::Cache<String, ()>,
    counters: Arc<Counters>,
    writer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicU64,
    written: AtomicU64,
    failed: AtomicU64,
}

impl LastUsed {
    /// Needs a tokio runtime: starts the writer.
    pub fn start(store: Store, interval: Duration) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let writer = tokio::spawn(write(store, receiver, interval, counters.clone()));
        Self {
            sender,
            recent: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(interval)
                .build(),
            counters,
            writer: std::sync::Mutex::new(Some(writer)),
        }
    }

    /// Notes a use of token `id` now. Never waits.
    pub fn record(&self, id: &str) {
        if self.recent.contains_key(id) {
            return;
        }
        self.recent.insert(id.to_owned(), ());
        if self.sender.try_send((id.to_owned(), now_ms())).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            // Offer it again on the next use.
            self.recent.invalidate(id);
        }
    }

    /// Rows the writer has updated (tokens × flushes).
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// Notes dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Writes that failed (and were retried with the next batch).
    pub fn failed(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }

    /// Stops the writer (shutdown); notes not yet written are lost, which costs only accuracy.
    pub fn stop(&self) {
        if let Ok(mut slot) = self.writer.lock()
            && let Some(task) = slot.take()
        {
            task.abort();
        }
    }
}

async fn write(
    store: Store,
    mut receiver: mpsc::Receiver<(String, i64)>,
    interval: Duration,
    counters: Arc<Counters>,
) {
    let mut pending: HashMap<String, i64> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            note = receiver.recv() => match note {
                Some((id, at)) => {
                    let slot = pending.entry(id).or_insert(at);
                    *slot = (*slot).max(at);
                }
                None => return,
            },
            _ = tick.tick() => {
                if pending.is_empty() {
                    continue;
                }
                let batch: Vec<(String, i64)> = pending.drain().collect();
                match store.touch_personal_tokens(&batch).await {
                    Ok(()) => {
                        counters.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        metrics::counter!("mcpgate_pat_last_used_written_total")
                            .increment(batch.len() as u64);
                    }
                    Err(e) => {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, tokens = batch.len(), "last-used times not written; retrying with the next batch");
                        for (id, at) in batch {
                            let slot = pending.entry(id).or_insert(at);
                            *slot = (*slot).max(at);
                        }
                    }
                }
            }
        }
    }
}
