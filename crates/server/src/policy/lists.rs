//! Filters `tools/list`, `resources/list`, `resources/templates/list` and `prompts/list`
//! results down to what the caller may use, in a JSON body or in each SSE `message` event of
//! a streamed response. Anything that is not such a result passes byte for byte.

use axum::body::Bytes;
use futures::{Stream, StreamExt};
use mcpgate_rbac::{EffectiveGrants, Item, McpMethod};
use serde_json::Value;

/// A list result to filter for one caller.
#[derive(Clone)]
pub struct ListScope {
    item: Item,
    field: &'static str,
    key: &'static str,
    grants: EffectiveGrants,
    upstream: String,
}

impl ListScope {
    /// For the result of a list method (from the MCP method table); `None` for other methods.
    pub fn for_method(method: &McpMethod, grants: EffectiveGrants, upstream: &str) -> Option<Self> {
        let kind = method.list?;
        Some(Self {
            item: kind.item,
            field: kind.field,
            key: kind.key,
            grants,
            upstream: upstream.to_owned(),
        })
    }

    /// Drops the items the caller may not use; true when the message was a list result.
    fn filter_value(&self, message: &mut Value) -> bool {
        let Some(items) = message
            .get_mut("result")
            .and_then(|r| r.get_mut(self.field))
            .and_then(Value::as_array_mut)
        else {
            return false;
        };
        let filter = self.grants.list_filter(self.item, &self.upstream);
        items.retain(|item| {
            item.get(self.key)
                .and_then(Value::as_str)
                .is_some_and(|name| filter.visible(name))
        });
        true
    }

    /// A JSON body, filtered; unchanged when it is not a list result.
    pub fn filter_json(&self, body: Bytes) -> Bytes {
        let Ok(mut message) = serde_json::from_slice::<Value>(&body) else {
            return body;
        };
        if !self.filter_value(&mut message) {
            return body;
        }
        serde_json::to_vec(&message)
            .map(Bytes::from)
            .unwrap_or(body)
    }

    /// One SSE event (its lines, without the blank line that ends it), filtered when its
    /// data is a list result; `None` when it passes unchanged.
    fn filter_event(&self, event: &str) -> Option<String> {
        let mut data = String::new();
        let mut kind = None;
        for line in event.lines() {
            if let Some(d) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            } else if let Some(k) = line.strip_prefix("event:") {
                kind = Some(k.trim());
            }
        }
        if data.is_empty() || kind.is_some_and(|k| k != "message") {
            return None;
        }
        let mut message = serde_json::from_str::<Value>(&data).ok()?;
        if !self.filter_value(&mut message) {
            return None;
        }
        let mut out = String::with_capacity(event.len());
        let mut wrote_data = false;
        for line in event.lines() {
            if line.starts_with("data:") {
                if !wrote_data {
                    out.push_str("data: ");
                    out.push_str(&message.to_string());
                    out.push('\n');
                    wrote_data = true;
                }
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        Some(out)
    }

    /// An SSE body filtered event by event; each event leaves as soon as it is complete.
    pub fn filter_sse<S, E>(self, stream: S) -> impl Stream<Item = Result<Bytes, E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        futures::stream::unfold(
            (stream, Vec::<u8>::new(), self, false),
            |(mut stream, mut buf, scope, mut done)| async move {
                loop {
                    if let Some(end) = event_end(&buf) {
                        let rest = buf.split_off(end);
                        let event = std::mem::replace(&mut buf, rest);
                        let out = scope.rewrite(event);
                        return Some((Ok(out), (stream, buf, scope, done)));
                    }
                    if done {
                        if buf.is_empty() {
                            return None;
                        }
                        // A last event without its blank line: pass it as it is.
                        let rest = Bytes::from(std::mem::take(&mut buf));
                        return Some((Ok(rest), (stream, buf, scope, done)));
                    }
                    match stream.next().await {
                        Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                        Some(Err(e)) => return Some((Err(e), (stream, buf, scope, true))),
                        None => done = true,
                    }
                }
            },
        )
    }

    /// One complete event (with its terminating blank line), filtered or as it was.
    fn rewrite(&self, event: Vec<u8>) -> Bytes {
        let text = match std::str::from_utf8(&event) {
            Ok(t) => t,
            Err(_) => return Bytes::from(event),
        };
        match self.filter_event(text.trim_end_matches(['\r', '\n'])) {
            Some(mut filtered) => {
                filtered.push('\n');
                Bytes::from(filtered)
            }
            None => Bytes::from(event),
        }
    }
}

/// Where the first complete event in `buf` ends (after its blank line), if there is one.
pub(crate) fn event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        let line_end = match buf[i] {
            b'\n' => i + 1,
            b'\r' if buf.get(i + 1) == Some(&b'\n') => i + 2,
            b'\r' if i + 1 < buf.len() => i + 1,
            b'\r' => return None,
            _ => {
                i += 1;
                continue;
            }
        };
        // A line ending directly followed by another one is the blank line.
        match buf.get(line_end) {
            Some(b'\n') => return Some(line_end + 1),
            Some(b'\r') if buf.get(line_end + 1) == Some(&b'\n') => return Some(line_end + 2),
            Some(b'\r') if line_end + 1 < buf.len() => return Some(line_end + 1),
            _ => i = line_end,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_rbac::{PolicySpec, Subject};

    fn scope() -> ListScope {
        let spec: PolicySpec = toml::from_str(
            r#"
            default_role = "m"
            [[roles]]
            name = "m"
            grants = [{ effect = "allow", action = "tools/*", upstream = "fx" },
                      { effect = "deny", action = "tools/call", upstream = "fx", target = "secret*" }]
            "#,
        )
        .unwrap();
        let policy = spec.compile().unwrap();
        let grants = policy.effective_grants(&policy.effective_roles(&Subject::default()));
        ListScope::for_method(&McpMethod::of("tools/list"), grants, "fx").unwrap()
    }

    const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"secret_a"},{"name":"x"}]}}"#;

    fn names(v: &Value) -> Vec<&str> {
        v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn json_lists_lose_what_the_caller_may_not_call() {
        let out = scope().filter_json(Bytes::from_static(LIST.as_bytes()));
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(names(&v), ["echo", "x"]);
        let other = Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        assert_eq!(scope().filter_json(other.clone()), other);
    }

    #[tokio::test]
    async fn sse_events_are_filtered_one_by_one_and_others_pass_unchanged() {
        let progress = "event: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n";
        let list = format!("event: message\r\nid: 2\r\ndata: {LIST}\r\n\r\n");
        let whole = format!("{progress}{list}: tail");
        // Split into awkward chunks, across line endings.
        let chunks: Vec<Result<Bytes, std::io::Error>> = whole
            .as_bytes()
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let out: Vec<Bytes> = scope()
            .filter_sse(futures::stream::iter(chunks))
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(out[0], progress.as_bytes());
        let second = std::str::from_utf8(&out[1]).unwrap();
        assert!(
            second.starts_with("event: message\nid: 2\ndata: "),
            "{second}"
        );
        assert!(second.ends_with("\n\n"));
        let data: Value = serde_json::from_str(
            second
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(names(&data), ["echo", "x"]);
        assert_eq!(out[2], ": tail".as_bytes());
    }
}
