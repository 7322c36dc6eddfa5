//! The official MCP conformance suite (`server` command, both requirement sets) against the
//! Python `mcp` SDK's server directly and through mcpgate: no check may come out worse
//! through the gateway. The suite has no OAuth, so a preload gives its requests mcpgate's
//! bearer — on both of Node's HTTP stacks, or requests would slip through unauthenticated
//! and fail for the wrong reason.

use mcpgate_tests::conformance::{ConformanceServer, Status, Suite, regressions};
use mcpgate_tests::{TestDb, TestServer, TestTokens, test_config};

use crate::proxy::upstream_config;

const TOKEN: &str = "conformance-token";

#[tokio::test(flavor = "multi_thread")]
async fn conformance_is_no_worse_through_mcpgate_in_both_revisions() -> anyhow::Result<()> {
    let test = "conformance";
    let Some(suite) = Suite::find(test)? else {
        return Ok(());
    };
    let Some(server) = ConformanceServer::start(test).await? else {
        return Ok(());
    };
    let db = TestDb::sqlite()?;
    let mut config = test_config(db.url());
    config.upstreams.push(upstream_config("conf", &server.url));
    let gateway =
        TestServer::start_with_tokens(config, TestTokens::new([(TOKEN, "alice")])).await?;
    let through = gateway.url("/mcp/conf");
    let origin = gateway.url("").trim_end_matches('/').to_owned();
    let dir = tempfile::tempdir()?;

    // The preload reaches both HTTP stacks: `fetch` and `node:http` (default and named
    // imports, URL and options forms) all get through with 200.
    let probe = dir.path().join("probe.mjs");
    std::fs::write(&probe, PROBE)?;
    let out = suite
        .node(Some((&origin, TOKEN)))
        .arg(&probe)
        .arg(&through)
        .output()
        .await?;
    let seen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        seen.trim(),
        "fetch 200\nhttp.get 405\nrequest 200\noptions 200",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for requirements in ["2025-11-25", "2026-07-28"] {
        let direct = suite
            .run(
                &server.url,
                requirements,
                None,
                &dir.path().join(format!("direct-{requirements}")),
            )
            .await?;
        let via = suite
            .run(
                &through,
                requirements,
                Some((&origin, TOKEN)),
                &dir.path().join(format!("through-{requirements}")),
            )
            .await?;
        let passed = |r: &mcpgate_tests::conformance::Results| {
            r.values().filter(|s| **s == Status::Success).count()
        };
        eprintln!(
            "conformance {requirements}: {} checks; passed {} direct, {} through mcpgate",
            direct.len(),
            passed(&direct),
            passed(&via)
        );
        assert!(
            passed(&direct) > 20,
            "the fixture passes too little to compare"
        );
        let worse = regressions(&direct, &via);
        if !worse.is_empty() {
            // Keep the suite's reports (details of every check) for whoever reads the failure.
            eprintln!("conformance reports kept in {}", dir.path().display());
            std::mem::forget(dir);
            anyhow::bail!(
                "{requirements}: worse through mcpgate than direct:\n{}",
                worse.join("\n")
            );
        }
    }

    // Every request the suite sent carried the bearer: none was refused for lacking one.
    let metrics = reqwest::get(gateway.url("/metrics")).await?.text().await?;
    let refused: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("mcpgate_http_requests_total") && l.contains("status=\"401\""))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    gateway.stop().await
}

const PROBE: &str = r#"
import http from 'node:http';
import { request } from 'node:http';
const url = process.argv[2];
const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {} } } });
const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2026-07-28', 'mcp-method': 'server/discover' };
const r = await fetch(url, { method: 'POST', headers, body });
console.log('fetch', r.status);
const viaHttp = (label, start) => new Promise((resolve, reject) => {
  const q = start((res) => { console.log(label, res.statusCode); res.resume(); res.on('end', resolve); });
  q.on('error', reject);
  q.end(body);
});
// A GET: the 2026-07-28 server answers 405 (no stream), which it can only say to a caller
// mcpgate let through; without the bearer it would be 401.
await new Promise((resolve, reject) => {
  http.get(url, { headers: { 'mcp-protocol-version': '2026-07-28' } }, (res) => {
    console.log('http.get', res.statusCode); res.resume(); res.on('end', resolve);
  }).on('error', reject);
});
await viaHttp('request', (cb) => request(url, { method: 'POST', headers }, cb));
const u = new URL(url);
await viaHttp('options', (cb) => http.request({ hostname: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers }, cb));
"#;
