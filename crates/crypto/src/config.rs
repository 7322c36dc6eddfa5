//! `HasherConfig`: argon2id parameters and the hashing pool's bounds. The server embeds it
//! under `auth.hashing`; every field has a default, unknown keys are errors.

use std::num::NonZeroUsize;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::CryptoError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HasherConfig {
    /// Argon2id memory cost in KiB per hash (OWASP minimum: 19456 = 19 MiB).
    pub m_cost_kib: u32,
    /// Argon2id passes over the memory (OWASP with 19 MiB: 2).
    pub t_cost: u32,
    /// Argon2id lanes (OWASP: 1). Lanes run one after another on the hash's thread.
    pub p_cost: u32,
    /// Hashes that may run at once. Unset: the core count, lowered so that
    /// `permits × m_cost_kib` stays within `memory_budget_mib`; at least 1.
    pub permits: Option<NonZeroUsize>,
    /// Memory all hashes running at once may use, in MiB; bounds the default `permits`.
    pub memory_budget_mib: u64,
    /// How long a login waits for a free permit before it gets 503 with `Retry-After`.
    pub queue_timeout_ms: u64,
    /// How much lower than the async runtime's the hashing threads' priority is: a Linux nice
    /// increment, 0–19 (0 keeps the same priority). With every core hashing, requests that
    /// only need a few microseconds of CPU still get it at once.
    pub nice: u8,
}

impl Default for HasherConfig {
    fn default() -> Self {
        Self {
            m_cost_kib: 19_456,
            t_cost: 2,
            p_cost: 1,
            permits: None,
            memory_budget_mib: 512,
            queue_timeout_ms: 2_000,
            nice: 10,
        }
    }
}

impl HasherConfig {
    /// The permits in force: the configured number, or the default from cores and memory.
    pub fn effective_permits(&self) -> NonZeroUsize {
        if let Some(permits) = self.permits {
            return permits;
        }
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let by_memory = (self.memory_budget_mib.saturating_mul(1024)
            / u64::from(self.m_cost_kib.max(1))) as usize;
        NonZeroUsize::new(cores.min(by_memory)).unwrap_or(NonZeroUsize::MIN)
    }

    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }

    /// Every problem at once; `field` names are relative to this table.
    pub fn validate(&self) -> Result<(), Vec<CryptoError>> {
        let mut errors = Vec::new();
        let mut check = |ok: bool, field: &'static str, message: &str| {
            if !ok {
                errors.push(CryptoError::Config {
                    field,
                    message: message.to_owned(),
                });
            }
        };
        check(
            self.m_cost_kib >= 8 * self.p_cost.max(1),
            "m_cost_kib",
            "must be at least 8 × p_cost (argon2's minimum); OWASP recommends 19456",
        );
        check(self.t_cost >= 1, "t_cost", "must be at least 1");
        check(
            (1..=0xFF_FFFF).contains(&self.p_cost),
            "p_cost",
            "must be between 1 and 16777215",
        );
        check(
            self.queue_timeout_ms >= 1,
            "queue_timeout_ms",
            "must be at least 1",
        );
        check(self.nice <= 19, "nice", "must be between 0 and 19");
        check(
            self.permits.is_some() || self.memory_budget_mib >= 1,
            "memory_budget_mib",
            "must be at least 1 when permits is unset",
        );
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_owasp_and_permits_fit_cores_and_memory() {
        let c = HasherConfig::default();
        assert_eq!((c.m_cost_kib, c.t_cost, c.p_cost), (19_456, 2, 1));
        assert!(c.validate().is_ok());
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert_eq!(c.effective_permits().get(), cores.min(26));
        // A budget for two hashes gives two permits, however many cores there are.
        let tight = HasherConfig {
            memory_budget_mib: 40,
            ..HasherConfig::default()
        };
        assert_eq!(tight.effective_permits().get(), cores.min(2));
        let tiny = HasherConfig {
            memory_budget_mib: 1,
            ..HasherConfig::default()
        };
        assert_eq!(tiny.effective_permits().get(), 1);
    }

    #[test]
    fn deserializes_partial_tables_and_rejects_unknown_keys() {
        let c: HasherConfig = serde_json::from_str(r#"{"permits": 3, "queue_timeout_ms": 250}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.effective_permits().get(), 3);
        assert_eq!(c.queue_timeout(), Duration::from_millis(250));
        assert_eq!(c.m_cost_kib, 19_456);
        assert!(serde_json::from_str::<HasherConfig>(r#"{"memory_cost": 1}"#).is_err());
        assert!(serde_json::from_str::<HasherConfig>(r#"{"permits": 0}"#).is_err());
    }

    #[test]
    fn validate_reports_every_problem() {
        let c = HasherConfig {
            t_cost: 0,
            queue_timeout_ms: 0,
            nice: 20,
            ..HasherConfig::default()
        };
        let fields: Vec<_> = c
            .validate()
            .err()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| match e {
                CryptoError::Config { field, .. } => Some(field),
                _ => None,
            })
            .collect();
        assert_eq!(fields, ["t_cost", "queue_timeout_ms", "nice"]);
    }
}
