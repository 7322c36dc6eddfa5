//! Step 5 of the `/mcp` pipeline: the upstream's own credentials for this request, resolved
//! into an immutable snapshot before anything is sent. Every upstream has the kind `none`
//! until upstream credentials are configurable; the step is here so that they plug in
//! without reshaping the pipeline.

use axum::http::HeaderMap;

/// What one request to the upstream carries to authenticate itself. Never shared between
/// requests or users.
#[derive(Debug, Default)]
pub struct Credentials {
    _private: (),
}

impl Credentials {
    /// The credentials for a request to an upstream of kind `none`.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sets the headers the credentials consist of on the upstream request.
    pub fn apply(self, headers: &mut HeaderMap) {
        let _ = headers;
    }
}
