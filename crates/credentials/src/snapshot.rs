//! What a credential source sees of one request, and what it hands back: an immutable
//! [`CredentialSnapshot`] the forwarder applies before sending.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use mcpgate_core::{Principal, UserContext};

/// Facts about the user a credential is produced for. Per-user kinds key their caches on
/// `user_id`; the assertion carries the rest.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The mcpgate user id (`Principal::user_id`).
    pub user_id: &'a str,
    pub email: Option<&'a str>,
    pub roles: &'a [String],
}

impl<'a> Caller<'a> {
    /// A caller known by id only (no email, no roles).
    pub fn new(user_id: &'a str) -> Self {
        Self {
            user_id,
            email: None,
            roles: &[],
        }
    }

    /// The caller of an MCP request with the user facts of its context (`UserContext`).
    pub fn from_context(principal: &'a Principal, context: &'a UserContext) -> Self {
        Self {
            user_id: &principal.user_id,
            email: context.email.as_deref(),
            roles: &context.roles,
        }
    }
}

/// The outgoing request as the upstream will get it (headers already filtered by the proxy,
/// the body fully buffered: SigV4 signs its hash).
#[derive(Clone, Copy)]
pub struct OutgoingRequest<'a> {
    pub method: &'a Method,
    /// The full upstream URL, query included.
    pub url: &'a url::Url,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl fmt::Debug for OutgoingRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingRequest")
            .field("method", self.method)
            .field("url", &self.url.as_str())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The credential for one request of one user: headers to set on the outgoing request (a
/// SigV4 signature is headers too). Not `Clone`: it is made for one request and consumed by
/// [`CredentialSnapshot::apply`]. Every value is marked sensitive, so `http`'s own `Debug`
/// and hyper's HPACK indexing skip it; this type's `Debug` shows header names only.
#[derive(Default)]
pub struct CredentialSnapshot {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl CredentialSnapshot {
    /// A snapshot that sets nothing (kind `none`).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Adds a header; the value is marked sensitive. A later header of the same name
    /// replaces an earlier one.
    pub fn with_header(mut self, name: HeaderName, mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value));
        self
    }

    pub(crate) fn merge(mut self, other: CredentialSnapshot) -> Self {
        for (name, value) in other.headers {
            self = self.with_header(name, value);
        }
        self
    }

    /// The headers to set, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.headers.iter().map(|(n, v)| (n, v))
    }

    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// Sets every header on the outgoing request, replacing any value of the same name.
    pub fn apply(self, headers: &mut HeaderMap) {
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
    }
}

impl fmt::Debug for CredentialSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialSnapshot")
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_not_values_and_values_are_sensitive() {
        let snap = CredentialSnapshot::empty().with_header(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cr3t-value"),
        );
        let shown = format!("{snap:?}");
        assert!(shown.contains("authorization"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(snap.headers().all(|(_, v)| v.is_sensitive()));
        let mut map = HeaderMap::new();
        map.insert(http::header::AUTHORIZATION, HeaderValue::from_static("old"));
        snap.apply(&mut map);
        assert_eq!(map.len(), 1);
        assert_eq!(map[http::header::AUTHORIZATION], "Bearer s3cr3t-value");
    }
}
