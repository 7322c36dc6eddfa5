//! The audit log, written off the request path: a request hands its event to a bounded
//! channel and goes on; one background writer takes whatever has queued (up to a batch) and
//! writes it in one statement. A slow database makes the queue grow, never a request wait:
//! when the queue is full the event is dropped and counted (`mcpgate_audit_dropped_total`).
//! [`AuditLog::flush`] drains the queue at shutdown, so a graceful stop loses nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mcpgate_storage::{AuditEvent, Store};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub struct AuditLog {
    tx: mpsc::Sender<AuditEvent>,
    counts: Arc<Counts>,
    writer: std::sync::Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

#[derive(Default)]
struct Counts {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("written", &self.written())
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Starts the writer.
    pub fn start(store: Store, queue: usize, batch: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let (stop_tx, stop_rx) = oneshot::channel();
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn(write_loop(store, rx, stop_rx, batch.max(1), counts.clone()));
        Self {
            tx,
            counts,
            writer: std::sync::Mutex::new(Some((stop_tx, task))),
        }
    }

    /// Queues an event; never waits.
    pub fn record(&self, event: AuditEvent) {
        if self.tx.try_send(event).is_err() {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("mcpgate_audit_dropped_total").increment(1);
        }
    }

    /// Writes what is queued and stops the writer; later events are dropped (and counted).
    pub async fn flush(&self) {
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some((stop, task)) = writer {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    pub fn written(&self) -> u64 {
        self.counts.written.load(Ordering::Relaxed)
    }
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }
    pub fn failed(&self) -> u64 {
        self.counts.failed.load(Ordering::Relaxed)
    }
}

async fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<AuditEvent>,
    mut stop: oneshot::Receiver<()>,
    batch: usize,
    counts: Arc<Counts>,
) {
    let mut buf = Vec::with_capacity(batch);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            n = rx.recv_many(&mut buf, batch) => {
                if n == 0 {
                    break;
                }
                write(&store, &mut buf, &counts).await;
            }
        }
    }
    // Shutdown: no new events, then everything already queued.
    rx.close();
    while rx.recv_many(&mut buf, batch).await > 0 {
        write(&store, &mut buf, &counts).await;
    }
}

async fn write(store: &Store, buf: &mut Vec<AuditEvent>, counts: &Counts) {
    let n = buf.len() as u64;
    let result = store.insert_audit_events(buf).await;
    // One pool checkout per batch (counted once it is back): lets a test tell the writer's
    // checkouts from the request path's.
    metrics::counter!("mcpgate_audit_batches_total").increment(1);
    match result {
        Ok(()) => {
            counts.written.fetch_add(n, Ordering::Relaxed);
            metrics::counter!("mcpgate_audit_written_total").increment(n);
        }
        Err(e) => {
            counts.failed.fetch_add(n, Ordering::Relaxed);
            metrics::counter!("mcpgate_audit_failed_total").increment(n);
            tracing::warn!(error = %e, events = n, "audit events could not be written");
        }
    }
    buf.clear();
}

/// Longest text taken from a request into an audit event (an email typed at sign-in, …).
const MAX_FIELD: usize = 256;

fn bounded(text: &str) -> String {
    let mut end = text.len().min(MAX_FIELD);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// A sign-in: `signed_in` for `user_id`, or `sign_in_failed` for the account name typed (never
/// a password). `method` says how: `password`, `api`, or a provider id.
pub fn sign_in_event(user_id: Option<&str>, account: &str, method: &str, ok: bool) -> AuditEvent {
    metrics::counter!("mcpgate_signins_total", "outcome" => if ok { "ok" } else { "failed" })
        .increment(1);
    let mut event = AuditEvent::new("signin", if ok { "signed_in" } else { "sign_in_failed" });
    event.user_id = user_id.map(str::to_owned);
    event.target = Some(bounded(account));
    event.detail = serde_json::json!({ "method": bounded(method) }).to_string();
    event
}

/// An OAuth grant (`oauth.grant`, `granted`) or revocation (`oauth.revoke`, `revoked`) of
/// `client_id` by or for `user_id`.
pub fn oauth_event(
    action: &str,
    decision: &str,
    user_id: Option<&str>,
    client_id: &str,
    detail: serde_json::Value,
) -> AuditEvent {
    let mut event = AuditEvent::new(action, decision);
    event.user_id = user_id.map(str::to_owned);
    event.target = Some(bounded(client_id));
    event.detail = detail.to_string();
    event
}

/// An administrator's change: who (`admin_id`) did `action` to `target`.
pub fn admin_event(
    admin_id: &str,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> AuditEvent {
    let mut event = AuditEvent::new(action, "changed");
    event.user_id = Some(admin_id.to_owned());
    event.target = Some(bounded(target));
    event.detail = detail.to_string();
    event
}

/// The audit record of one RBAC decision on an MCP request.
pub fn decision_event(
    principal: &mcpgate_core::Principal,
    request: &mcpgate_rbac::Request<'_>,
    method: Option<&str>,
    decision: &mcpgate_rbac::Decision,
) -> AuditEvent {
    let mut event = AuditEvent::new(
        method.unwrap_or(request.action.name()),
        if decision.allowed { "allow" } else { "deny" },
    );
    event.user_id = Some(principal.user_id.clone());
    event.upstream = Some(request.upstream.to_owned());
    event.target = request.target.map(str::to_owned);
    let mut detail = serde_json::json!({
        "client_id": principal.client_id,
        "reason": decision.reason.to_string(),
    });
    if let Some(by) = &decision.decided_by {
        detail["role"] = serde_json::Value::from(&*by.role);
        detail["grant"] = serde_json::Value::from(by.grant_index);
    }
    event.detail = detail.to_string();
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_storage::StoreOptions;

    // 100 events recorded without yielding against a queue of 4: the writer (a batch takes
    // milliseconds) can take at most a few before the rest find the queue full.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_full_queue_drops_and_counts_and_a_flush_writes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("audit.db").display());
        let store = Store::connect(&StoreOptions::new(url)).await.unwrap();
        store.migrate().await.unwrap();
        let log = AuditLog::start(store.clone(), 4, 2);
        for i in 0..100 {
            log.record(AuditEvent::new(format!("e{i}"), "allow"));
        }
        let dropped = log.dropped();
        assert!(dropped >= 90, "{dropped}");
        log.flush().await;
        assert_eq!(log.failed(), 0);
        assert_eq!(log.written() + dropped, 100);
        let stored = store.recent_audit_events(1000).await.unwrap().len() as u64;
        assert_eq!(stored, log.written());
        // After the flush nothing is queued any more, and nothing waits.
        log.record(AuditEvent::new("late", "allow"));
        assert_eq!(log.dropped(), dropped + 1);
    }
}
