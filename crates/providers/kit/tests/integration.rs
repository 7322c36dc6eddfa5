//! The kit's HTTP adapter under `oauth2`: JSON bodies on demand, 5xx as transient whatever the
//! body says, errors inside HTTP 200 classified, redirects never followed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mcpgate_core::{ProviderError, SecretString};
use mcpgate_provider_kit::{ClientAuth, HttpClient, OAuthClient, OAuthConfig, shared_client};
use serde_json::{Value, json};

async fn serve(app: Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(base)
}

/// Answers a token only for a JSON body with the refresh grant and the client credentials.
async fn json_only(headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type != "application/json" {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_request"})),
        )
            .into_response();
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let want = json!({"grant_type": "refresh_token", "refresh_token": "rt-1",
        "client_id": "id", "client_secret": "secret"});
    if body != want {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_request", "error_description": body.to_string()})),
        )
            .into_response();
    }
    axum::Json(json!({"access_token": "at-2", "token_type": "Bearer", "expires_in": "60", "refresh_token": "rt-2"}))
        .into_response()
}

fn client(base: &str, path: &str, json_bodies: bool) -> anyhow::Result<OAuthClient> {
    let http = HttpClient::new(shared_client()?);
    let http = if json_bodies {
        http.json_bodies()
    } else {
        http
    };
    Ok(OAuthClient::new(
        OAuthConfig {
            client_id: "id".into(),
            client_secret: Some(SecretString::new("secret")),
            auth: ClientAuth::Post,
            authorization_url: format!("{base}/authorize").parse()?,
            token_url: format!("{base}{path}").parse()?,
            scopes: Vec::new(),
            pkce: false,
            extra_authorize_params: Vec::new(),
        },
        http,
    ))
}

#[tokio::test]
async fn json_bodies_carry_the_same_fields_as_json() -> anyhow::Result<()> {
    let base = serve(Router::new().route("/token", post(json_only))).await?;
    let rt = SecretString::new("rt-1");
    let answer = client(&base, "/token", true)?.refresh(&rt).await?;
    assert_eq!(answer.access_token.secret(), "at-2");
    assert_eq!(answer.expires_in, Some(60), "a numeric string");
    // The same request as a form is refused by this endpoint: the conversion is what passes.
    let err = client(&base, "/token", false)?.refresh(&rt).await.err();
    assert!(
        matches!(err, Some(ProviderError::Misconfigured(_))),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn server_errors_are_transient_whatever_the_body_says() -> anyhow::Result<()> {
    let app = Router::new().route(
        "/token",
        post(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"error": "invalid_grant"})),
            )
        }),
    );
    let base = serve(app).await?;
    let err = client(&base, "/token", false)?
        .refresh(&SecretString::new("rt"))
        .await
        .err();
    assert!(matches!(err, Some(ProviderError::Transient(_))), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn an_error_inside_http_200_is_classified() -> anyhow::Result<()> {
    let app = Router::new().route(
        "/token",
        post(|| async { axum::Json(json!({"error": "bad_refresh_token"})) }),
    );
    let base = serve(app).await?;
    let err = client(&base, "/token", false)?
        .refresh(&SecretString::new("rt"))
        .await
        .err();
    assert!(
        matches!(err, Some(ProviderError::InvalidGrant(_))),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn redirects_are_not_followed() -> anyhow::Result<()> {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/token",
            post(|| async { (StatusCode::TEMPORARY_REDIRECT, [("location", "/elsewhere")]) }),
        )
        .route(
            "/elsewhere",
            post(|State(hits): State<Arc<AtomicUsize>>| async move {
                hits.fetch_add(1, Ordering::Relaxed);
                axum::Json(json!({"access_token": "stolen", "token_type": "Bearer"}))
            }),
        )
        .with_state(hits.clone());
    let base = serve(app).await?;
    let err = client(&base, "/token", false)?
        .refresh(&SecretString::new("rt"))
        .await
        .err();
    assert!(
        matches!(err, Some(ProviderError::Misconfigured(_))),
        "{err:?}"
    );
    assert_eq!(
        hits.load(Ordering::Relaxed),
        0,
        "the credentials were not replayed"
    );
    Ok(())
}
