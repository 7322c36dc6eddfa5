//! Who calls the API: an mcpgate API token or a personal access token with the `api` scope
//! (`Authorization: Bearer`), and JSON bodies whose
//! rejections answer in the API's error shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use mcpgate_crypto::{TokenHash, TokenKind};
use mcpgate_storage::{User, now_ms};

use crate::app::AppState;
use crate::auth::AuthError;
use crate::error::{ApiError, Challenge};

/// A JSON body; malformed JSON or missing fields are a 400 `invalid_request`.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError::BadRequest(e.body_text())
    }
}

/// The user behind a valid, unrevoked API token of an enabled account.
pub struct ApiUser {
    pub user: User,
    pub token_hash: TokenHash,
}

fn invalid_token(description: &str) -> ApiError {
    ApiError::Challenge {
        status: StatusCode::UNAUTHORIZED,
        challenge: Challenge {
            error: Some("invalid_token"),
            description: Some(description.into()),
            ..Default::default()
        },
    }
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = crate::auth::bearer(&parts.headers) else {
            return Err(ApiError::Challenge {
                status: StatusCode::UNAUTHORIZED,
                challenge: Challenge::default(),
            });
        };
        let token_hash = TokenHash::of(token);
        if TokenKind::of(token) == Some(TokenKind::Personal) {
            // A personal token: from the validator's cache, and only with the `api` scope.
            let (user_id, scopes) = state.tokens.personal(token).await.map_err(|e| match e {
                AuthError::InvalidToken(_) => {
                    invalid_token("the token is unknown, expired or revoked")
                }
                AuthError::Unavailable(detail) => ApiError::Unavailable(detail),
            })?;
            if !scopes.iter().any(|s| s == crate::oauth::personal::API) {
                return Err(ApiError::Challenge {
                    status: StatusCode::FORBIDDEN,
                    challenge: Challenge {
                        error: Some("insufficient_scope"),
                        description: Some("this personal access token lacks the api scope".into()),
                        scope: Some(crate::oauth::personal::API.into()),
                        ..Default::default()
                    },
                });
            }
            let user = state.store.get_user(&user_id).await?;
            if user.is_disabled() {
                return Err(invalid_token("the token is unknown, expired or revoked"));
            }
            return Ok(Self { user, token_hash });
        }
        let record = state
            .store
            .find_access_token(token_hash.as_bytes())
            .await?
            .filter(|r| r.kind == "api" && r.is_active(now_ms()))
            .ok_or_else(|| invalid_token("the token is unknown, expired or revoked"))?;
        let user = state.store.get_user(&record.user_id).await?;
        Ok(Self { user, token_hash })
    }
}

/// An [`ApiUser`] who is an administrator; 403 for anyone else.
pub struct AdminUser(pub ApiUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = ApiUser::from_request_parts(parts, state).await?;
        if !caller.user.is_admin {
            return Err(ApiError::Forbidden("this needs an administrator".into()));
        }
        Ok(Self(caller))
    }
}
