//! `PasswordHasher`: argon2id PHC strings, computed on the bounded [`HashingPool`].
//!
//! Every hash and verify — including the dummy verify for a user who does not exist — goes
//! through the pool, so a burst of logins can neither freeze the async runtime nor queue
//! without bound, and an unknown account costs exactly what a known one does.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use mcpgate_core::SecretString;

use crate::keys::random_bytes;
use crate::{CryptoError, HasherConfig, HashingPool};

const SALT_LEN: usize = 16;

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Mismatch,
    /// The password is right. `needs_rehash`: the stored hash uses other parameters (or
    /// another argon2 variant) than the configured ones; store [`PasswordHasher::hash`] of
    /// the same password now, while it is at hand.
    Match {
        needs_rehash: bool,
    },
}

impl Verification {
    pub fn is_match(self) -> bool {
        matches!(self, Self::Match { .. })
    }

    pub fn needs_rehash(self) -> bool {
        matches!(self, Self::Match { needs_rehash: true })
    }
}

/// Argon2id hashing and verification on a bounded pool. Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
    pool: Arc<HashingPool>,
    /// A hash of no password with the current parameters: verifying against it costs what a
    /// real verify costs and never matches.
    dummy: Arc<PasswordHash>,
    /// The most memory one verify may take: a stored hash asking for more (a corrupt or
    /// planted row) would break the pool's memory budget, so it is refused unverified.
    max_m_cost_kib: u32,
}

impl PasswordHasher {
    /// Validates `config`, builds the argon2id parameters and starts the pool's threads.
    pub fn new(config: &HasherConfig) -> Result<Self, CryptoError> {
        config.validate().map_err(first_error)?;
        let pool = HashingPool::new(
            config.effective_permits(),
            config.queue_timeout(),
            config.nice,
        )?;
        Self::with_pool(config, Arc::new(pool))
    }

    /// Like [`Self::new`], on a pool the caller built (and may share).
    pub fn with_pool(config: &HasherConfig, pool: Arc<HashingPool>) -> Result<Self, CryptoError> {
        let params = Params::new(config.m_cost_kib, config.t_cost, config.p_cost, None)
            .map_err(CryptoError::Params)?;
        let dummy = dummy_hash(&params)?;
        let pool_permits = pool.permits();
        Ok(Self {
            params,
            pool,
            dummy: Arc::new(dummy),
            max_m_cost_kib: max_m_cost_kib(config, pool_permits),
        })
    }

    pub fn pool(&self) -> &HashingPool {
        &self.pool
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) for `password`, with a fresh
    /// random salt. The password is wiped from memory when the hash is done.
    pub async fn hash(&self, password: SecretString) -> Result<String, CryptoError> {
        let salt = random_bytes::<SALT_LEN>()?;
        let params = self.params.clone();
        self.pool
            .run(move || {
                let started = Instant::now();
                let hashed = hash_in_thread_memory(
                    Algorithm::Argon2id,
                    Version::V0x13,
                    &params,
                    password.expose().as_bytes(),
                    &salt,
                );
                record_duration("hash", started);
                hashed.map(|h| h.to_string()).map_err(CryptoError::Hash)
            })
            .await?
    }

    /// Checks `password` against a stored PHC string and says whether to re-hash it.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: &str,
    ) -> Result<Verification, CryptoError> {
        let parsed = PasswordHash::new(stored).map_err(|e| CryptoError::MalformedHash(e.into()))?;
        if let Ok(stored) = Params::try_from(&parsed)
            && stored.m_cost() > self.max_m_cost_kib
        {
            return Err(CryptoError::HashTooCostly {
                m_cost_kib: stored.m_cost(),
                max_kib: self.max_m_cost_kib,
            });
        }
        let needs_rehash = self.is_outdated(&parsed);
        let matched = self.verify_parsed(password, parsed).await?;
        Ok(if matched {
            Verification::Match { needs_rehash }
        } else {
            Verification::Mismatch
        })
    }

    /// For a login whose account does not exist: the same work as [`Self::verify`], through
    /// the same pool, and always [`Verification::Mismatch`], so neither the response time nor
    /// an `Overloaded` answer tells an attacker which accounts exist.
    pub async fn verify_unknown_user(
        &self,
        password: SecretString,
    ) -> Result<Verification, CryptoError> {
        let dummy = PasswordHash::clone(&self.dummy);
        // The outcome is ignored on purpose: a random hash never matches anyway.
        let _ = self.verify_parsed(password, dummy).await?;
        Ok(Verification::Mismatch)
    }

    /// [`Self::verify`] or [`Self::verify_unknown_user`], for a looked-up account's hash.
    pub async fn verify_account(
        &self,
        password: SecretString,
        stored: Option<&str>,
    ) -> Result<Verification, CryptoError> {
        match stored {
            Some(stored) => self.verify(password, stored).await,
            None => self.verify_unknown_user(password).await,
        }
    }

    /// Whether a stored hash was made with other parameters than the configured ones.
    /// Cheap: it only parses the string.
    pub fn needs_rehash(&self, stored: &str) -> Result<bool, CryptoError> {
        PasswordHash::new(stored)
            .map(|parsed| self.is_outdated(&parsed))
            .map_err(|e| CryptoError::MalformedHash(e.into()))
    }

    fn is_outdated(&self, parsed: &PasswordHash) -> bool {
        if parsed.algorithm != ARGON2ID_IDENT || parsed.version != Some(Version::V0x13.into()) {
            return true;
        }
        let Ok(stored) = Params::try_from(parsed) else {
            return true;
        };
        stored.m_cost() != self.params.m_cost()
            || stored.t_cost() != self.params.t_cost()
            || stored.p_cost() != self.params.p_cost()
            || parsed.hash.as_ref().map(Output::len) != Some(Params::DEFAULT_OUTPUT_LEN)
    }

    async fn verify_parsed(
        &self,
        password: SecretString,
        parsed: PasswordHash,
    ) -> Result<bool, CryptoError> {
        self.pool
            .run(move || {
                let started = Instant::now();
                // Parameters, variant and version come from the stored hash.
                let outcome = verify_in_thread_memory(password.expose().as_bytes(), &parsed);
                record_duration("verify", started);
                outcome.map_err(CryptoError::MalformedHash)
            })
            .await?
    }
}

thread_local! {
    /// This hashing thread's argon2 working memory (`m_cost` KiB), allocated once and reused
    /// by every hash and verify the thread runs. Allocating it per call let the allocator keep
    /// each freed buffer: RSS grew with every sign-in. With one block per pool thread, RSS is
    /// bounded by permits × the largest `m_cost` (itself bounded by the memory budget).
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// `Argon2::hash_password_with_salt`, computed in this thread's reusable memory.
fn hash_in_thread_memory(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    password: &[u8],
    salt: &[u8],
) -> Result<PasswordHash, argon2::password_hash::Error> {
    let salt = Salt::new(salt)?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let out = buffer
        .get_mut(..params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN))
        .ok_or(argon2::password_hash::Error::OutputSize)?;
    MEMORY.with(|memory| {
        let mut blocks = memory.borrow_mut();
        let needed = params.block_count();
        if blocks.len() < needed {
            blocks.resize_with(needed, Block::default);
        }
        argon2.hash_password_into_with_memory(password, &salt, out, &mut blocks[..needed])
    })?;
    Ok(PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt),
        hash: Some(Output::new(out)?),
    })
}

/// Whether `password` matches a stored hash (variant, version and parameters from the hash),
/// computed in this thread's reusable memory; the outputs compare in constant time.
fn verify_in_thread_memory(
    password: &[u8],
    stored: &PasswordHash,
) -> Result<bool, argon2::password_hash::Error> {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return Err(argon2::password_hash::Error::PasswordInvalid);
    };
    let algorithm = Algorithm::try_from(stored.algorithm.as_str())?;
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(stored)?;
    let computed = hash_in_thread_memory(algorithm, version, &params, password, salt)?;
    // `Output`'s equality is constant-time.
    Ok(computed.hash.as_ref() == Some(expected))
}

fn dummy_hash(params: &Params) -> Result<PasswordHash, CryptoError> {
    let phc = |e: argon2::password_hash::phc::Error| CryptoError::Hash(e.into());
    Ok(PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(CryptoError::Hash)?,
        salt: Some(Salt::new(&random_bytes::<SALT_LEN>()?).map_err(phc)?),
        hash: Some(Output::new(&random_bytes::<{ Params::DEFAULT_OUTPUT_LEN }>()?).map_err(phc)?),
    })
}

/// The configured cost, or the memory budget's share per permit if that is larger (hashes
/// from before a cost reduction still verify).
fn max_m_cost_kib(config: &HasherConfig, permits: usize) -> u32 {
    let share = config.memory_budget_mib.saturating_mul(1024) / (permits.max(1) as u64);
    config
        .m_cost_kib
        .max(u32::try_from(share).unwrap_or(u32::MAX))
}

fn record_duration(op: &'static str, started: Instant) {
    metrics::histogram!("mcpgate_crypto_hash_duration_seconds", "op" => op)
        .record(started.elapsed().as_secs_f64());
}

/// `new` reports the first problem; `HasherConfig::validate` lists them all.
fn first_error(errors: Vec<CryptoError>) -> CryptoError {
    errors
        .into_iter()
        .next()
        .unwrap_or_else(|| CryptoError::Config {
            field: "hashing",
            message: "invalid".into(),
        })
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use argon2::PasswordHasher as _;
    use std::time::Duration;

    use super::*;

    /// Cheap parameters: these tests are about behaviour, not cost.
    fn config(m_cost_kib: u32, t_cost: u32) -> HasherConfig {
        HasherConfig {
            m_cost_kib,
            t_cost,
            permits: NonZeroUsize::new(2),
            ..HasherConfig::default()
        }
    }

    fn hasher(config: &HasherConfig) -> PasswordHasher {
        PasswordHasher::new(config).unwrap_or_else(|e| panic!("hasher: {e}"))
    }

    fn pw(s: &str) -> SecretString {
        SecretString::new(s)
    }

    #[tokio::test]
    async fn hash_then_verify_right_and_wrong_passwords() -> Result<(), CryptoError> {
        let h = hasher(&config(1024, 1));
        let stored = h.hash(pw("correct horse")).await?;
        assert!(
            stored.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{stored}"
        );
        assert_ne!(
            stored,
            h.hash(pw("correct horse")).await?,
            "fresh salt each time"
        );
        assert_eq!(
            h.verify(pw("correct horse"), &stored).await?,
            Verification::Match {
                needs_rehash: false
            }
        );
        assert_eq!(
            h.verify(pw("correct horsE"), &stored).await?,
            Verification::Mismatch
        );
        assert!(!h.verify(pw(""), &stored).await?.is_match());
        Ok(())
    }

    #[tokio::test]
    async fn a_parameter_change_asks_for_a_rehash() -> Result<(), CryptoError> {
        let old = hasher(&config(1024, 1));
        let stored = old.hash(pw("pw")).await?;
        let new = hasher(&config(2048, 1));
        let outcome = new.verify(pw("pw"), &stored).await?;
        assert!(outcome.is_match() && outcome.needs_rehash(), "{outcome:?}");
        assert!(new.needs_rehash(&stored)?);
        // A wrong password never asks for a rehash.
        assert_eq!(
            new.verify(pw("nope"), &stored).await?,
            Verification::Mismatch
        );
        let rehashed = new.hash(pw("pw")).await?;
        assert!(!new.needs_rehash(&rehashed)?);
        assert!(new.verify(pw("pw"), &rehashed).await?.is_match());
        assert!(!old.needs_rehash(&stored)?);
        // Another argon2 variant: still verifies, and asks to move to argon2id.
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, new.params.clone())
            .hash_password_with_salt(b"pw", &[7u8; 16])
            .map_err(CryptoError::Hash)?
            .to_string();
        assert!(new.verify(pw("pw"), &argon2i).await?.needs_rehash());
        Ok(())
    }

    #[tokio::test]
    async fn a_stored_hash_beyond_the_memory_budget_is_refused() -> Result<(), CryptoError> {
        let h = hasher(&HasherConfig {
            memory_budget_mib: 8,
            ..config(1024, 1)
        });
        // 8 MiB over two permits: up to 4096 KiB per verify.
        let big = hasher(&config(8192, 1)).hash(pw("pw")).await?;
        let err = h.verify(pw("pw"), &big).await.err();
        assert!(
            matches!(
                err,
                Some(CryptoError::HashTooCostly {
                    m_cost_kib: 8192,
                    max_kib: 4096
                })
            ),
            "{err:?}"
        );
        let within = hasher(&config(4096, 1)).hash(pw("pw")).await?;
        assert!(h.verify(pw("pw"), &within).await?.needs_rehash());
        Ok(())
    }

    #[tokio::test]
    async fn malformed_hashes_are_errors_not_mismatches() {
        let h = hasher(&config(1024, 1));
        for bad in ["", "plaintext", "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA"] {
            let err = h.verify(pw("pw"), bad).await.err();
            assert!(
                matches!(err, Some(CryptoError::MalformedHash(_))),
                "{bad}: {err:?}"
            );
        }
        let bcrypt = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
        assert!(h.verify(pw("pw"), bcrypt).await.is_err());
    }

    #[tokio::test]
    async fn unknown_users_cost_a_verify_on_the_same_pool() -> Result<(), CryptoError> {
        let cfg = HasherConfig {
            queue_timeout_ms: 50,
            permits: NonZeroUsize::new(1),
            ..config(1024, 1)
        };
        let pool = Arc::new(HashingPool::new(
            cfg.effective_permits(),
            cfg.queue_timeout(),
            0,
        )?);
        let h = PasswordHasher::with_pool(&cfg, Arc::clone(&pool))?;
        assert_eq!(
            h.verify_unknown_user(pw("guess")).await?,
            Verification::Mismatch
        );
        assert_eq!(
            h.verify_account(pw("guess"), None).await?,
            Verification::Mismatch
        );
        // The dummy has the configured parameters, so it costs what a real verify costs.
        let dummy = h.dummy.to_string();
        assert!(!h.needs_rehash(&dummy)?, "{dummy}");

        // With the only permit taken, the unknown user waits in the same queue and is
        // turned away like anyone else: the dummy path never runs beside the pool.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let busy = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                pool.run(move || wait.recv_timeout(Duration::from_secs(5)))
                    .await
            })
        };
        while pool.in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let err = h.verify_unknown_user(pw("guess")).await.err();
        assert!(
            matches!(err, Some(CryptoError::Overloaded { .. })),
            "{err:?}"
        );
        let _ = release.send(());
        let _ = busy.await;
        Ok(())
    }

    #[test]
    fn bad_config_is_refused() {
        let err = PasswordHasher::new(&config(1024, 0)).err();
        assert!(
            matches!(
                err,
                Some(CryptoError::Config {
                    field: "t_cost",
                    ..
                })
            ),
            "{err:?}"
        );
    }
}
