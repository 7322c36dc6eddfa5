//! Streams from upstreams that misbehave (issue 19, item 9): one that stops sending in the
//! middle of an SSE answer, and one that dies in the middle of it. Both must end the client's
//! stream with a JSON-RPC error for the pending request, promptly, and leave an audit record.
//! The upstreams are tiny servers in this process that do exactly the one wrong thing.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures::StreamExt;
use mcpgate_storage::AuditEvent;
use mcpgate_tests::{TestDb, TestServer, TestTokens, test_config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::proxy::{ALICE, messages, tool_call, upstream_config};

const PROGRESS: &str = "event: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n";

/// An upstream that answers every POST with one SSE event and then never another byte.
async fn hanging_upstream() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(|| async {
            let first = futures::stream::iter([Ok::<_, Infallible>(Bytes::from_static(
                PROGRESS.as_bytes(),
            ))]);
            let body = Body::from_stream(first.chain(futures::stream::pending()));
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(body)
                .unwrap_or_default()
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/mcp"))
}

/// An upstream that starts an SSE answer (one whole event, then half of the next) and dies:
/// the connection closes without the end of the chunked body, as when the process is killed.
async fn dying_upstream() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the whole request (head, then Content-Length bytes of body).
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= head_end + 4 + length {
                            break;
                        }
                    }
                }
                let half = "event: message\nid: 2\ndata: {\"jsonrpc\":\"2.0\",\"id\":9,\"res";
                let mut out = String::from(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                     transfer-encoding: chunked\r\n\r\n",
                );
                for part in [PROGRESS, half] {
                    out.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
                }
                let _ = socket.write_all(out.as_bytes()).await;
                let _ = socket.flush().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                // Killed: no terminating chunk, the connection just goes.
                drop(socket);
            });
        }
    });
    Ok(format!("http://{addr}/mcp"))
}

/// The gateway with one upstream `bad` at `url`, whose streams may stay silent `idle` seconds.
async fn gateway(url: &str, idle: u64) -> anyhow::Result<(TestServer, TestDb)> {
    let db = TestDb::sqlite()?;
    let mut config = test_config(db.url());
    let mut upstream = upstream_config("bad", url);
    upstream.idle_timeout_secs = Some(idle);
    config.upstreams.push(upstream);
    let gateway =
        TestServer::start_with_tokens(config, TestTokens::new([(ALICE, "alice")])).await?;
    Ok((gateway, db))
}

/// POSTs a `tools/call` with id 9 and reads the whole SSE answer (at most `limit`).
async fn call(gateway: &TestServer, limit: Duration) -> anyhow::Result<(StatusCode, String)> {
    let response = reqwest::Client::new()
        .post(gateway.url("/mcp/bad"))
        .bearer_auth(ALICE)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(tool_call(9, "slow", json!({}), false).to_string())
        .send()
        .await?;
    let status = response.status();
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    tokio::time::timeout(limit, async {
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk?);
        }
        Ok::<_, anyhow::Error>(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("the stream did not end within {limit:?}"))??;
    Ok((status, String::from_utf8(body)?))
}

/// Every `data:` line the client got must be a whole JSON-RPC message.
fn assert_whole_events(body: &str) {
    for line in body.lines().filter_map(|l| l.strip_prefix("data:")) {
        assert!(
            serde_json::from_str::<Value>(line.trim()).is_ok(),
            "a broken event reached the client: {line:?} in {body:?}"
        );
    }
}

/// Waits for the audit record of the stream's end (the writer runs off the request path).
async fn audit_record(db: &TestDb, decision: &str) -> anyhow::Result<AuditEvent> {
    let store = db.store().await?;
    for _ in 0..50 {
        if let Some(event) = store
            .recent_audit_events(100)
            .await?
            .into_iter()
            .find(|e| e.decision == decision)
        {
            return Ok(event);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("no audit record with decision {decision:?}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_upstream_stream_ends_with_a_json_rpc_error_after_the_idle_timeout()
-> anyhow::Result<()> {
    let upstream = hanging_upstream().await?;
    let (gateway, db) = gateway(&upstream, 1).await?;
    let started = Instant::now();
    let (status, body) = call(&gateway, Duration::from_secs(10)).await?;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_whole_events(&body);
    let got = messages("text/event-stream", &body);
    assert_eq!(got.len(), 2, "{body}");
    assert_eq!(got[0]["method"], "notifications/progress");
    assert_eq!(got[1]["jsonrpc"], "2.0");
    assert_eq!(got[1]["id"], 9);
    assert_eq!(got[1]["error"]["code"], -32002, "{body}");
    let event = audit_record(&db, "stream_timeout").await?;
    assert_eq!(event.user_id.as_deref(), Some("alice"));
    assert_eq!(event.upstream.as_deref(), Some("bad"));
    assert_eq!(event.action, "tools/call");
    gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_killed_mid_stream_ends_the_clients_stream_with_a_json_rpc_error()
-> anyhow::Result<()> {
    let upstream = dying_upstream().await?;
    // The idle timeout is far away: the error must come from the broken connection.
    let (gateway, db) = gateway(&upstream, 30).await?;
    let started = Instant::now();
    let (status, body) = call(&gateway, Duration::from_secs(10)).await?;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(status, StatusCode::OK);
    // The half event never reaches the client: it gets the whole one, then the error.
    assert_whole_events(&body);
    let got = messages("text/event-stream", &body);
    assert_eq!(got.len(), 2, "{body}");
    assert_eq!(got[0]["method"], "notifications/progress");
    assert_eq!(got[1]["id"], 9);
    assert_eq!(got[1]["error"]["code"], -32001, "{body}");
    let event = audit_record(&db, "stream_broken").await?;
    assert_eq!(event.user_id.as_deref(), Some("alice"));
    assert_eq!(event.upstream.as_deref(), Some("bad"));
    assert_eq!(event.target.as_deref(), Some("slow"));
    gateway.stop().await
}
