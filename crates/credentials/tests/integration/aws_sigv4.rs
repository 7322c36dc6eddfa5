//! `aws_sigv4`: the signature checked by an independent implementation (botocore, when the
//! machine's python3 has it), combined with an identity assertion, and the credential resolver
//! kept off the request path.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use futures::future::join_all;
use mcpgate_credentials::aws_sigv4::AwsSigner;
use mcpgate_credentials::{AssertionSigner, Caller, CredentialError, Dependencies};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Request, build, header};

const KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn static_config(extra_kind: &str) -> String {
    format!(
        r#"
        {extra_kind}
        [[credentials]]
        kind = "aws_sigv4"
        service = "execute-api"
        region = "eu-west-1"
        credentials = {{ source = "static", access_key_id = "{KEY_ID}", secret_access_key = "{SECRET}" }}
        "#
    )
}

/// What botocore's SigV4Auth computes for the same request and timestamp, or `None` when
/// python3 with botocore is not installed.
fn botocore_authorization(request: &Request, amz_date: &str, payload_hash: &str) -> Option<String> {
    const SCRIPT: &str = r#"
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
i = json.load(sys.stdin)
auth = SigV4Auth(Credentials(i["key"], i["secret"]), i["service"], i["region"])
req = AWSRequest(method=i["method"], url=i["url"], data=i["body"].encode(), headers=i["headers"])
req.context["timestamp"] = i["amz_date"]
canonical = auth.canonical_request(req)
signature = auth.signature(auth.string_to_sign(req, canonical), req)
signed = auth.signed_headers(auth.headers_to_sign(req))
print("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
    i["key"], auth.credential_scope(req), signed, signature))
"#;
    let mut headers = serde_json::Map::new();
    for (name, value) in &request.headers {
        headers.insert(name.to_string(), value.to_str().unwrap_or_default().into());
    }
    headers.insert("x-amz-date".into(), amz_date.into());
    headers.insert("x-amz-content-sha256".into(), payload_hash.into());
    let input = serde_json::json!({
        "key": KEY_ID, "secret": SECRET, "service": "execute-api", "region": "eu-west-1",
        "method": request.method.as_str(), "url": request.url.as_str(),
        "body": String::from_utf8_lossy(&request.body), "headers": headers,
        "amz_date": amz_date,
    });
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()?
        .write_all(input.to_string().as_bytes())
        .ok()?;
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains("No module named"), "botocore failed: {err}");
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn sample_request() -> Request {
    let mut request = Request::post(
        "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/mcp?b=2&a=1",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
    );
    request.headers.insert(
        "mcp-protocol-version",
        http::HeaderValue::from_static("2025-11-25"),
    );
    request
}

#[tokio::test]
async fn the_signature_matches_an_independent_implementation() {
    let source = build("aws", &static_config(""), &Dependencies::default());
    let request = sample_request();
    // Static credentials are published by the background task right after build.
    let mut snapshot = None;
    for _ in 0..100 {
        match source
            .resolve(&Caller::new("alice"), &request.outgoing())
            .await
        {
            Ok(s) => {
                snapshot = Some(s);
                break;
            }
            Err(CredentialError::Unavailable { .. }) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let snapshot = snapshot.unwrap_or_else(|| panic!("credentials never resolved"));
    let authorization = header(&snapshot, "authorization").unwrap_or_default();
    let amz_date = header(&snapshot, "x-amz-date").unwrap_or_default();
    let payload_hash = header(&snapshot, "x-amz-content-sha256").unwrap_or_default();
    assert_eq!(
        payload_hash,
        format!("{:x}", Sha256::digest(&request.body)),
        "the body hash"
    );
    assert!(
        authorization.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential={KEY_ID}/{}/eu-west-1/execute-api/aws4_request, ",
            &amz_date[..8]
        )),
        "{authorization}"
    );
    assert!(
        authorization.contains(
            "SignedHeaders=content-type;host;mcp-protocol-version;x-amz-content-sha256;x-amz-date,"
        ),
        "{authorization}"
    );
    assert!(snapshot.headers().all(|(_, v)| v.is_sensitive()));
    match botocore_authorization(&request, &amz_date, &payload_hash) {
        Some(expected) => assert_eq!(authorization, expected),
        None => eprintln!("python3 botocore is not installed: the botocore comparison is skipped"),
    }
}

#[tokio::test]
async fn an_identity_assertion_is_signed_too() {
    let signer = AssertionSigner::new(
        "https://gateway.example",
        "k",
        [("k".to_owned(), Zeroizing::new([3u8; 32]))],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let deps = Dependencies {
        assertion_signer: Some(Arc::new(signer)),
        ..Dependencies::default()
    };
    let source = build(
        "aws-asserted",
        &static_config("[[credentials]]\nkind = \"identity_assertion\""),
        &deps,
    );
    let request = sample_request();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let snapshot = source
        .resolve(&Caller::new("alice"), &request.outgoing())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let authorization = header(&snapshot, "authorization").unwrap_or_default();
    assert!(header(&snapshot, "x-mcpgate-assertion").is_some());
    assert!(
        authorization.contains(";x-amz-date;x-mcpgate-assertion,"),
        "the assertion header is signed: {authorization}"
    );
    // botocore agrees on the request as the upstream receives it (assertion header included).
    let mut sent = sample_request();
    if let Some(value) = header(&snapshot, "x-mcpgate-assertion") {
        sent.headers.insert(
            "x-mcpgate-assertion",
            value.parse().unwrap_or_else(|e| panic!("{e}")),
        );
    }
    let amz_date = header(&snapshot, "x-amz-date").unwrap_or_default();
    let hash = header(&snapshot, "x-amz-content-sha256").unwrap_or_default();
    if let Some(expected) = botocore_authorization(&sent, &amz_date, &hash) {
        assert_eq!(authorization, expected);
    }
}

/// Hands out AKID-1 (expiring soon) at once, then AKID-2 only after `slow`.
#[derive(Debug)]
struct SlowProvider {
    calls: Arc<AtomicUsize>,
    first_delay: Duration,
    slow: Duration,
}

impl ProvideCredentials for SlowProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let (delay, expiry) = if n == 1 {
            (
                self.first_delay,
                Some(SystemTime::now() + self.first_delay + Duration::from_secs(3601)),
            )
        } else {
            (self.slow, None)
        };
        future::ProvideCredentials::new(async move {
            tokio::time::sleep(delay).await;
            Ok(Credentials::new(
                format!("AKID-{n}"),
                SECRET,
                None,
                expiry,
                "test",
            ))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resolution_runs_in_the_background_and_never_on_the_request_path() {
    let calls = Arc::new(AtomicUsize::new(0));
    let provider = SlowProvider {
        calls: calls.clone(),
        first_delay: Duration::from_millis(400),
        slow: Duration::from_millis(1500),
    };
    // refresh_before 3600 s with an expiry in 3601 s: the refresh is due after about 1 s.
    let signer = Arc::new(
        AwsSigner::start(
            "aws-slow",
            "execute-api",
            "eu-west-1",
            SharedCredentialsProvider::new(provider),
            Duration::from_secs(3600),
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    let request = sample_request();
    let sign = |signer: Arc<AwsSigner>| {
        let request = &request;
        async move {
            let started = Instant::now();
            let result = mcpgate_credentials::CredentialSource::resolve(
                signer.as_ref(),
                &Caller::new("u"),
                &request.outgoing(),
            )
            .await;
            (result, started.elapsed())
        }
    };

    // Before the first resolution: a quick Unavailable, no waiting.
    let (early, took) = sign(signer.clone()).await;
    assert!(
        matches!(early, Err(CredentialError::Unavailable { .. })),
        "{early:?}"
    );
    assert!(took < Duration::from_millis(200), "{took:?}");

    assert!(signer.wait_ready(Duration::from_secs(3)).await);
    assert_eq!(signer.access_key_id().as_deref(), Some("AKID-1"));

    // The refresh starts after ~1 s and takes 1.5 s: during it, requests sign at once with
    // the current credentials, and none of them starts another resolution.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the refresh is under way");
    let results = join_all((0..50).map(|_| sign(signer.clone()))).await;
    for (result, took) in results {
        let snapshot = result.unwrap_or_else(|e| panic!("{e}"));
        let authorization = header(&snapshot, "authorization").unwrap_or_default();
        assert!(
            authorization.contains("Credential=AKID-1/"),
            "{authorization}"
        );
        assert!(took < Duration::from_millis(300), "{took:?}");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "requests never resolve credentials"
    );

    // Then the refreshed credentials are used.
    let deadline = Instant::now() + Duration::from_secs(5);
    while signer.access_key_id().as_deref() != Some("AKID-2") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (after, _) = sign(signer.clone()).await;
    let after = after.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        header(&after, "authorization")
            .unwrap_or_default()
            .contains("Credential=AKID-2/")
    );
    // AKID-2 does not expire: no further resolution.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Debug never shows the secret.
    assert!(!format!("{signer:?}").contains(SECRET));
}

#[test]
fn outside_a_runtime_building_sigv4_is_an_error_not_a_panic() {
    let problems = mcpgate_credentials::build(
        &super::upstream("aws-no-runtime"),
        &super::parse(&static_config("")),
        "u",
        &Dependencies::default(),
    )
    .err()
    .unwrap_or_default();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "u[0]");
    assert!(
        problems[0].message.contains("tokio runtime"),
        "{problems:?}"
    );
}

/// Resolves until the background task has published credentials (at most 5 s).
async fn signed(
    source: &dyn mcpgate_credentials::CredentialSource,
    request: &Request,
) -> mcpgate_credentials::CredentialSnapshot {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match source.resolve(&Caller::new("u"), &request.outgoing()).await {
            Ok(snapshot) => return snapshot,
            Err(CredentialError::Unavailable { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn a_profile_of_the_shared_files_is_used() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let credentials = dir.path().join("credentials");
    let config = dir.path().join("config");
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = x\n\n\
             [mcpgate]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = {SECRET}\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&config, "").unwrap_or_else(|e| panic!("{e}"));
    let source = build(
        "aws-profile",
        &format!(
            r#"
            [credentials]
            kind = "aws_sigv4"
            service = "execute-api"
            region = "eu-west-1"
            credentials = {{ source = "profile", profile = "mcpgate", credentials_file = {:?}, config_file = {:?} }}
            "#,
            credentials.display().to_string(),
            config.display().to_string()
        ),
        &Dependencies::default(),
    );
    let snapshot = signed(source.as_ref(), &sample_request()).await;
    let authorization = header(&snapshot, "authorization").unwrap_or_default();
    assert!(
        authorization.contains("Credential=AKIDPROFILE/"),
        "{authorization}"
    );
}

mod sts {
    //! A fake STS: `AssumeRole` signed with the base credentials, counted.

    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::{Form, State};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;

    #[derive(Default)]
    pub struct Seen {
        pub calls: Vec<(String, HashMap<String, String>)>,
    }

    async fn assume_role(
        State(seen): State<Arc<Mutex<Seen>>>,
        headers: HeaderMap,
        Form(form): Form<HashMap<String, String>>,
    ) -> Response {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .calls
            .push((authorization.clone(), form.clone()));
        if form.get("Action").map(String::as_str) != Some("AssumeRole")
            || !authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDBASE/")
        {
            return (StatusCode::FORBIDDEN, "<ErrorResponse/>").into_response();
        }
        let body = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/mcp/mcpgate</Arn>
      <AssumedRoleId>AROAEXAMPLE:mcpgate</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAASSUMED</AccessKeyId>
      <SecretAccessKey>assumed-secret-key</SecretAccessKey>
      <SessionToken>assumed-session-token</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#;
        ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
    }

    pub fn router(seen: Arc<Mutex<Seen>>) -> Router {
        Router::new().route("/", post(assume_role)).with_state(seen)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_signs_with_the_assumed_session_credentials() {
    let seen = Arc::new(std::sync::Mutex::new(sts::Seen::default()));
    let sts_url = super::fakes::serve(sts::router(seen.clone())).await;
    let source = build(
        "aws-role",
        &format!(
            r#"
            [credentials]
            kind = "aws_sigv4"
            service = "execute-api"
            region = "eu-west-1"
            [credentials.credentials]
            source = "assume_role"
            role_arn = "arn:aws:iam::123456789012:role/mcp"
            external_id = "ext-1"
            sts_endpoint = "{sts_url}"
            base = {{ source = "static", access_key_id = "AKIDBASE", secret_access_key = "{SECRET}" }}
            "#
        ),
        &Dependencies::default(),
    );
    let request = sample_request();
    let snapshot = signed(source.as_ref(), &request).await;
    let authorization = header(&snapshot, "authorization").unwrap_or_default();
    assert!(
        authorization.contains("Credential=ASIAASSUMED/"),
        "{authorization}"
    );
    assert_eq!(
        header(&snapshot, "x-amz-security-token").as_deref(),
        Some("assumed-session-token")
    );
    // Later requests reuse the published credentials: still one AssumeRole.
    for _ in 0..20 {
        signed(source.as_ref(), &request).await;
    }
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(seen.calls.len(), 1);
    let (sts_authorization, form) = &seen.calls[0];
    assert!(
        sts_authorization.contains("/eu-west-1/sts/aws4_request"),
        "{sts_authorization}"
    );
    assert_eq!(
        form.get("RoleArn").map(String::as_str),
        Some("arn:aws:iam::123456789012:role/mcp")
    );
    assert_eq!(
        form.get("RoleSessionName").map(String::as_str),
        Some("mcpgate")
    );
    assert_eq!(form.get("ExternalId").map(String::as_str), Some("ext-1"));
}
