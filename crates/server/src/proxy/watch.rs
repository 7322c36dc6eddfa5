//! Part of step 7: the upstream's streamed body, watched. An upstream that stops sending (hung)
//! or whose connection breaks (killed, network) must not leave the client with a stream that
//! hangs or simply stops: mcpgate ends it itself, with a JSON-RPC error for the request still
//! waiting for its answer, and audits how it ended.
//!
//! SSE bodies pass event by event: the bytes of each complete event leave unchanged as soon as
//! its blank line has arrived. Holding back only the unfinished event means a stream that
//! breaks off never hands the client half an event (which a client would dispatch as soon as
//! mcpgate's own error event completed it); the client could not use half an event before its
//! end anyway. An event larger than [`HOLD_UP_TO`] is passed on in pieces as they come.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::jsonrpc::code;
use crate::policy::AuditLog;
use crate::policy::lists::event_end;

/// The most of one unfinished SSE event held back (beyond it, the event streams in pieces).
const HOLD_UP_TO: usize = 1024 * 1024;

/// Who is waiting on a stream, and where its end is recorded.
pub struct Watch {
    pub audit: Arc<AuditLog>,
    pub user_id: String,
    pub client_id: String,
    pub upstream: String,
    /// The JSON-RPC method of the request (none for a GET stream).
    pub method: Option<String>,
    pub target: Option<String>,
    /// The id of the request whose answer the stream carries, until that answer has passed.
    pub pending: Option<Value>,
    pub idle: Duration,
}

/// How a stream ended other than by the upstream finishing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Nothing arrived for the idle timeout.
    Timeout,
    /// The upstream's connection broke (or its body was malformed).
    Broken,
}

impl Ending {
    /// The audit log's `decision` for it.
    fn outcome(self) -> &'static str {
        match self {
            Self::Timeout => "stream_timeout",
            Self::Broken => "stream_broken",
        }
    }
}

impl Watch {
    /// Records the ending and returns the SSE event to close the client's stream with: a
    /// JSON-RPC error for the request still waiting, nothing when none is (on a GET stream
    /// the server must not send a response; the client reconnects).
    fn end(&mut self, ending: Ending, detail: &str) -> Option<Bytes> {
        let idle_secs = self.idle.as_secs();
        let (code, message) = match ending {
            Ending::Timeout => (
                code::UPSTREAM_TIMEOUT,
                format!(
                    "the upstream MCP server sent nothing for {idle_secs} s; mcpgate ended the stream"
                ),
            ),
            Ending::Broken => (
                code::UPSTREAM_UNAVAILABLE,
                "the upstream MCP server's stream broke off".to_owned(),
            ),
        };
        tracing::warn!(
            user.id = %self.user_id,
            upstream = %self.upstream,
            mcp.method = self.method.as_deref().unwrap_or("-"),
            outcome = ending.outcome(),
            error.detail = detail,
            "upstream stream ended by mcpgate"
        );
        metrics::counter!("mcpgate_upstream_streams_ended_total", "outcome" => ending.outcome())
            .increment(1);
        let mut event = mcpgate_storage::AuditEvent::new(
            self.method.as_deref().unwrap_or("stream"),
            ending.outcome(),
        );
        event.user_id = Some(self.user_id.clone());
        event.upstream = Some(self.upstream.clone());
        event.target = self.target.clone();
        event.detail = json!({
            "client_id": self.client_id,
            "request_id": self.pending,
            "reason": message,
            "detail": detail,
        })
        .to_string();
        self.audit.record(event);
        let id = self.pending.take()?;
        let error = json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": { "code": code, "message": message },
        });
        Some(Bytes::from(format!("event: message\ndata: {error}\n\n")))
    }

    /// Notes an event that passed: once the pending request's answer has, nothing waits.
    fn saw(&mut self, event: &[u8]) {
        if self.pending.as_ref().is_some_and(|id| answers(event, id)) {
            self.pending = None;
        }
    }
}

/// Whether an SSE event carries the JSON-RPC response (result or error) to request `id`.
fn answers(event: &[u8], id: &Value) -> bool {
    let Ok(text) = std::str::from_utf8(event) else {
        return false;
    };
    let mut data = String::new();
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    #[derive(Deserialize)]
    struct Answer {
        id: Option<Value>,
        method: Option<IgnoredAny>,
        result: Option<IgnoredAny>,
        error: Option<IgnoredAny>,
    }
    serde_json::from_str::<Answer>(&data).is_ok_and(|a| {
        a.method.is_none() && (a.result.is_some() || a.error.is_some()) && a.id.as_ref() == Some(id)
    })
}

struct State<S> {
    upstream: S,
    watch: Watch,
    /// The unfinished event held back.
    held: Vec<u8>,
    /// Part of the unfinished event has already gone out (it was larger than the hold).
    torn: bool,
    done: bool,
}

/// An SSE body, passed event by event, ended by mcpgate when the upstream goes silent for
/// the idle timeout or its connection breaks.
pub fn sse<S, E>(upstream: S, watch: Watch) -> impl Stream<Item = Result<Bytes, Infallible>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let state = State {
        upstream,
        watch,
        held: Vec::new(),
        torn: false,
        done: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            let ending = match tokio::time::timeout(s.watch.idle, s.upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    s.held.extend_from_slice(&chunk);
                    let out = s.complete_events();
                    if !out.is_empty() {
                        return Some((Ok(out), s));
                    }
                    continue;
                }
                Ok(None) => {
                    // The upstream finished its body. A last event without its blank line
                    // goes as it is (the client drops it, as it would have from the upstream).
                    s.done = true;
                    if s.held.is_empty() {
                        return None;
                    }
                    return Some((Ok(Bytes::from(std::mem::take(&mut s.held))), s));
                }
                Ok(Some(Err(e))) => (Ending::Broken, e.to_string()),
                Err(_) => (Ending::Timeout, String::new()),
            };
            s.done = true;
            let event = s.watch.end(ending.0, &ending.1)?;
            // Half an event is dropped; one already partly sent must be ended first.
            let out = if s.torn {
                let mut out = b"\n\n".to_vec();
                out.extend_from_slice(&event);
                Bytes::from(out)
            } else {
                event
            };
            return Some((Ok(out), s));
        }
    })
}

impl<S> State<S> {
    /// Takes every complete event out of the hold (and, past the hold's size, the rest too).
    fn complete_events(&mut self) -> Bytes {
        let mut end = 0;
        while let Some(n) = event_end(&self.held[end..]) {
            let event_at = end;
            end += n;
            if !self.torn {
                self.watch.saw(&self.held[event_at..end]);
            }
            self.torn = false;
        }
        if self.held.len() - end > HOLD_UP_TO {
            self.torn = true;
            return Bytes::from(std::mem::take(&mut self.held));
        }
        let rest = self.held.split_off(end);
        Bytes::from(std::mem::replace(&mut self.held, rest))
    }
}

/// A body that is not SSE (JSON, streamed because it is large or of unknown length): passed
/// chunk by chunk. On silence or a broken connection it ends with an error, so the client's
/// connection is cut rather than the body looking complete; the ending is audited.
pub fn chunks<S, E>(upstream: S, watch: Watch) -> impl Stream<Item = Result<Bytes, std::io::Error>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    futures::stream::unfold(
        (upstream, watch, false),
        |(mut upstream, mut watch, done)| async move {
            if done {
                return None;
            }
            let (ending, detail) = match tokio::time::timeout(watch.idle, upstream.next()).await {
                Ok(Some(Ok(chunk))) => return Some((Ok(chunk), (upstream, watch, false))),
                Ok(None) => return None,
                Ok(Some(Err(e))) => (Ending::Broken, e.to_string()),
                Err(_) => (Ending::Timeout, String::new()),
            };
            // No event can be added to a JSON body: the error cuts the client's connection.
            watch.pending = None;
            let _ = watch.end(ending, &detail);
            let kind = match ending {
                Ending::Timeout => std::io::ErrorKind::TimedOut,
                Ending::Broken => std::io::ErrorKind::UnexpectedEof,
            };
            Some((
                Err(std::io::Error::new(kind, ending.outcome())),
                (upstream, watch, true),
            ))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_response_to_the_pending_id_is_its_answer() {
        let id = json!(9);
        let answer =
            b"event: message\nid: 3\ndata: {\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}}\n\n";
        assert!(answers(answer, &id));
        let split = b"data: {\"jsonrpc\":\"2.0\",\ndata: \"id\":9,\"error\":{\"code\":1}}\n\n";
        assert!(answers(split, &id));
        assert!(!answers(answer, &json!("9")));
        let progress =
            b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"id\":9}\n\n";
        assert!(!answers(progress, &id));
        assert!(!answers(b"data: {\"id\":9}\n\n", &id));
        assert!(!answers(b": keep-alive\n\n", &id));
    }
}
