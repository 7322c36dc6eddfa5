//! Client-facing session ids. The upstream's `Mcp-Session-Id` never reaches the client: mcpgate
//! hands out the upstream id sealed (XChaCha20-Poly1305, [`SecretBox`]) to the place
//! `(mcp_session, upstream name, user id)`. Any replica with the key ring can open it — no
//! database write, no sticky sessions — and it opens only for the same user at the same
//! upstream, so another user's id, a tampered id and an unknown id all look alike: 404.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_crypto::{Place, SecretBox};

const TABLE: &str = "mcp_session";
/// Sessions whose client declared URL-mode elicitation at `initialize` (2025-11-25): the
/// same id sealed to another place, so the flag cannot be added or removed by the client.
const TABLE_URL_ELICITATION: &str = "mcp_session_url_elicitation";

#[derive(Debug, Clone)]
pub struct SessionIds {
    secret_box: Arc<SecretBox>,
}

/// The client's session id does not open for this user and upstream.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownSession;

impl SessionIds {
    pub fn new(secret_box: Arc<SecretBox>) -> Self {
        Self { secret_box }
    }

    /// The client-facing id for `upstream_id`: base64url, so visible ASCII (0x21–0x7E).
    pub fn seal(&self, user_id: &str, upstream: &str, upstream_id: &[u8]) -> Option<String> {
        self.seal_with(user_id, upstream, upstream_id, false)
    }

    /// [`SessionIds::seal`], remembering whether the client declared URL elicitation.
    pub fn seal_with(
        &self,
        user_id: &str,
        upstream: &str,
        upstream_id: &[u8],
        url_elicitation: bool,
    ) -> Option<String> {
        let table = if url_elicitation {
            TABLE_URL_ELICITATION
        } else {
            TABLE
        };
        let place = Place::new(table, upstream, user_id);
        match self.secret_box.seal(upstream_id, &place) {
            Ok(sealed) => Some(URL_SAFE_NO_PAD.encode(sealed)),
            Err(e) => {
                tracing::error!(error = %e, "cannot seal a session id");
                None
            }
        }
    }

    /// The upstream's id behind a client-facing one, if it was sealed for this user and
    /// upstream.
    pub fn open(
        &self,
        user_id: &str,
        upstream: &str,
        client_id: &[u8],
    ) -> Result<Vec<u8>, UnknownSession> {
        self.open_with(user_id, upstream, client_id)
            .map(|(id, _)| id)
    }

    /// [`SessionIds::open`], with whether the client declared URL elicitation.
    pub fn open_with(
        &self,
        user_id: &str,
        upstream: &str,
        client_id: &[u8],
    ) -> Result<(Vec<u8>, bool), UnknownSession> {
        let sealed = URL_SAFE_NO_PAD
            .decode(client_id)
            .map_err(|_| UnknownSession)?;
        for (table, flag) in [(TABLE, false), (TABLE_URL_ELICITATION, true)] {
            if let Ok(plain) = self
                .secret_box
                .open(&sealed, &Place::new(table, upstream, user_id))
            {
                return Ok((plain.to_vec(), flag));
            }
        }
        Err(UnknownSession)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn ids() -> SessionIds {
        let ring = SecretBox::new("k", [("k".to_owned(), Zeroizing::new([7u8; 32]))]);
        SessionIds::new(Arc::new(ring.unwrap_or_else(|e| panic!("{e}"))))
    }

    #[test]
    fn opens_only_for_the_same_user_and_upstream() {
        let ids = ids();
        let sid = ids.seal("alice", "up", b"upstream-1").unwrap_or_default();
        assert!(sid.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{sid}");
        assert_eq!(
            ids.open("alice", "up", sid.as_bytes()),
            Ok(b"upstream-1".to_vec())
        );
        assert_eq!(ids.open("bob", "up", sid.as_bytes()), Err(UnknownSession));
        assert_eq!(
            ids.open("alice", "other", sid.as_bytes()),
            Err(UnknownSession)
        );
        let mut tampered = sid.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(ids.open("alice", "up", &tampered), Err(UnknownSession));
        assert_eq!(ids.open("alice", "up", b"upstream-1"), Err(UnknownSession));
        let flagged = ids
            .seal_with("alice", "up", b"upstream-2", true)
            .unwrap_or_default();
        assert_eq!(
            ids.open_with("alice", "up", flagged.as_bytes()),
            Ok((b"upstream-2".to_vec(), true))
        );
        assert_eq!(
            ids.open_with(
                "alice",
                "up",
                ids.seal("alice", "up", b"u").unwrap_or_default().as_bytes()
            ),
            Ok((b"u".to_vec(), false))
        );
        assert_eq!(
            ids.open("bob", "up", flagged.as_bytes()),
            Err(UnknownSession)
        );
    }
}
