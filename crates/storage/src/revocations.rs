//! Revocations announced to other replicas. Each replica caches token checks in memory; on
//! PostgreSQL a revocation is published with `NOTIFY mcpgate_revoke` and every replica's
//! listener turns it into a [`Revoked`] for its cache, so a revoked token stops working
//! everywhere within a moment instead of within the cache's lifetime. On SQLite (one process)
//! there is nobody to tell.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::pool::with_conn;
use crate::{StorageError, Store};

const CHANNEL: &str = "mcpgate_revoke";
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What was revoked, as other replicas' caches need to hear it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// One access token, by its SHA-256.
    Token([u8; 32]),
    /// Every token of a family (a refresh token's revocation, reuse).
    Family(String),
    /// Every token of a user (disabled, password changed, signed out everywhere).
    User(String),
    /// The listener (re)connected: announcements may have been missed, drop everything.
    Anything,
}

impl Revoked {
    fn payload(&self) -> Option<String> {
        Some(match self {
            Self::Token(hash) => {
                let mut s = String::with_capacity(66);
                s.push_str("t:");
                for b in hash {
                    s.push_str(&format!("{b:02x}"));
                }
                s
            }
            Self::Family(id) => format!("f:{id}"),
            Self::User(id) => format!("u:{id}"),
            Self::Anything => return None,
        })
    }

    fn parse(payload: &str) -> Option<Self> {
        let (kind, value) = payload.split_once(':')?;
        match kind {
            "t" if value.len() == 64 => {
                let mut hash = [0u8; 32];
                for (i, byte) in hash.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(value.get(2 * i..2 * i + 2)?, 16).ok()?;
                }
                Some(Self::Token(hash))
            }
            "f" => Some(Self::Family(value.to_owned())),
            "u" => Some(Self::User(value.to_owned())),
            _ => None,
        }
    }
}

impl Store {
    /// Tells every replica's listener about a revocation that is already stored. A no-op on
    /// SQLite.
    pub async fn announce_revocation(&self, revoked: &Revoked) -> Result<(), StorageError> {
        let (Some(_), Some(payload)) = (self.postgres_url(), revoked.payload()) else {
            return Ok(());
        };
        with_conn!(self, |conn| {
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<diesel::sql_types::Text, _>(CHANNEL)
                .bind::<diesel::sql_types::Text, _>(payload)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Revocations announced by any replica (this one included). On PostgreSQL a task holds one
    /// plain connection outside the pool, `LISTEN`s, and reconnects after a failure, sending
    /// [`Revoked::Anything`] each time it (re)connects since announcements in between are
    /// lost. It ends when the receiver is dropped. On SQLite nothing is ever received.
    pub fn revocations(&self) -> mpsc::Receiver<Revoked> {
        let (tx, rx) = mpsc::channel(1024);
        if let Some(url) = self.postgres_url() {
            let url = url.to_owned();
            tokio::spawn(async move { listen(url, tx).await });
        } else {
            // Keep the channel open (a closed one would read as "listener gone").
            tokio::spawn(async move { tx.closed().await });
        }
        rx
    }
}

async fn listen(url: String, tx: mpsc::Sender<Revoked>) {
    loop {
        tokio::select! {
            () = tx.closed() => return,
            result = listen_once(&url, &tx) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "revocation listener lost its connection; reconnecting");
                }
            }
        }
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(RECONNECT_AFTER) => {}
        }
    }
}

async fn listen_once(url: &str, tx: &mpsc::Sender<Revoked>) -> Result<(), StorageError> {
    let mut conn = tokio::time::timeout(Duration::from_secs(5), AsyncPgConnection::establish(url))
        .await
        .map_err(|_| StorageError::Unavailable("connecting timed out".into()))?
        .map_err(|e| StorageError::Unavailable(e.to_string()))?;
    conn.batch_execute(&format!(
        "SET application_name = 'mcpgate-listener'; LISTEN {CHANNEL}"
    ))
    .await?;
    if tx.send(Revoked::Anything).await.is_err() {
        return Ok(());
    }
    let mut notifications = std::pin::pin!(conn.notifications_stream());
    while let Some(notification) = notifications.next().await {
        let notification = notification?;
        if let Some(revoked) = Revoked::parse(&notification.payload)
            && tx.send(revoked).await.is_err()
        {
            return Ok(());
        }
    }
    Err(StorageError::Unavailable(
        "the notification stream ended".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        for r in [
            Revoked::Token([0xab; 32]),
            Revoked::Family("fam-1".into()),
            Revoked::User("u:with:colons".into()),
        ] {
            assert_eq!(Revoked::parse(&r.payload().unwrap()), Some(r));
        }
        assert_eq!(Revoked::parse("t:zz"), None);
        assert_eq!(Revoked::parse("x:1"), None);
        assert_eq!(Revoked::Anything.payload(), None);
    }
}
