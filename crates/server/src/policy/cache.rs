//! The compiled policy at the newest version this process knows of, and each user's
//! effective grants keyed by (user id, policy version). Both loads are single-flight: N
//! concurrent requests after a change make one read.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use mcpgate_rbac::{EffectiveGrants, Policy};
use mcpgate_storage::StorageError;

struct Loaded {
    version: i64,
    policy: Policy,
    at: Instant,
}

pub struct PolicyCache {
    current: RwLock<Option<Arc<Loaded>>>,
    /// The newest version heard of (own changes, other replicas' notifications).
    known: AtomicI64,
    reload: tokio::sync::Mutex<()>,
    ttl: Duration,
    /// Keyed by (user, policy version, identity-context generation or 0).
    grants: moka::future::Cache<(Arc<str>, i64, u64), EffectiveGrants>,
}

impl PolicyCache {
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        Self {
            current: RwLock::new(None),
            known: AtomicI64::new(0),
            reload: tokio::sync::Mutex::new(()),
            ttl,
            grants: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }

    pub fn note_version(&self, version: i64) {
        self.known.fetch_max(version, Ordering::AcqRel);
    }

    fn fresh(&self) -> Option<(i64, Policy)> {
        let current = self.current.read().ok()?.clone()?;
        (current.version >= self.known.load(Ordering::Acquire) && current.at.elapsed() < self.ttl)
            .then(|| (current.version, current.policy.clone()))
    }

    /// The policy, reloaded through `load` when a newer version is known or the TTL passed.
    pub async fn policy<F, Fut>(&self, load: F) -> Result<(i64, Policy), StorageError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(i64, Policy), StorageError>>,
    {
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let _one_reload = self.reload.lock().await;
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let (version, policy) = load().await?;
        let previous = self
            .current
            .write()
            .ok()
            .and_then(|mut slot| {
                slot.replace(Arc::new(Loaded {
                    version,
                    policy: policy.clone(),
                    at: Instant::now(),
                }))
            })
            .map(|p| p.version);
        self.note_version(version);
        if previous != Some(version) {
            // Entries of older versions are never asked for again; free them now.
            self.grants.invalidate_all();
            metrics::counter!("mcpgate_policy_reloads_total").increment(1);
        }
        Ok((version, policy))
    }

    /// A user's grants at `version` (and identity-context `generation`), computed by `load`
    /// on a miss.
    pub async fn grants(
        &self,
        user_id: &str,
        version: i64,
        generation: u64,
        load: impl Future<Output = Result<EffectiveGrants, StorageError>>,
    ) -> Result<EffectiveGrants, StorageError> {
        self.grants
            .try_get_with((Arc::from(user_id), version, generation), load)
            .await
            .map_err(|e| match &*e {
                StorageError::Busy => StorageError::Busy,
                StorageError::NotFound => StorageError::NotFound,
                other => StorageError::Unavailable(other.to_string()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn policy() -> Policy {
        mcpgate_rbac::PolicySpec::default()
            .compile()
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[tokio::test]
    async fn reloads_only_when_a_newer_version_is_known() {
        let cache = PolicyCache::new(Duration::from_secs(60), 100);
        let loads = AtomicUsize::new(0);
        let load = |v: i64| {
            let loads = &loads;
            move || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok((v, policy()))
            }
        };
        assert_eq!(cache.policy(load(1)).await.map(|p| p.0).ok(), Some(1));
        assert_eq!(cache.policy(load(1)).await.map(|p| p.0).ok(), Some(1));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        cache.note_version(2);
        assert_eq!(cache.policy(load(2)).await.map(|p| p.0).ok(), Some(2));
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }
}
