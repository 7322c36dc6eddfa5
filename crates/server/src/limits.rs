//! Sign-in limits: attempts per client address and per account (governor's keyed GCRA
//! limiters), and failure budgets with a back-off that spares known clients
//! ([`mcpgate_guard::SignInGuard`]), all in memory per replica. A refused attempt costs no hash
//! and no database read. A budget that runs out is counted (`mcpgate_signin_lockouts_total`)
//! and audited (`signin.lockout`).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use mcpgate_guard::{Budgets, SignInGuard};
use mcpgate_storage::{AuditEvent, normalize_email};

use crate::config::RateLimitConfig;
use crate::error::ApiError;
use crate::policy::AuditLog;

pub struct SignInLimits {
    per_account: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    guard: SignInGuard,
    forwarded_hops: usize,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

impl SignInLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        let window = Duration::from_secs(config.failure_window_secs.max(1));
        Self {
            per_account: limiter(config.per_account_per_minute),
            per_address: limiter(config.per_address_per_minute),
            guard: SignInGuard::new(Budgets {
                window,
                per_account_address: config.failures_per_account_address,
                per_address: config.failures_per_address,
                account_backoff_after: config.account_backoff_after,
                backoff_max: Duration::from_secs(config.account_backoff_max_secs.max(1)),
                ..Budgets::default()
            }),
            forwarded_hops: config.forwarded_hops,
        }
    }

    /// The client's address: the peer, or the configured hop of `X-Forwarded-For` when
    /// mcpgate runs behind trusted proxies.
    pub fn client_address(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        if self.forwarded_hops == 0 {
            return peer.ip();
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        hops.len()
            .checked_sub(self.forwarded_hops)
            .and_then(|i| hops.get(i))
            .and_then(|ip| ip.parse().ok())
            .unwrap_or(peer.ip())
    }

    /// Counts one attempt for this address and account; 429 with `Retry-After` when over.
    /// `known_browser`: the client showed a device cookie of this account.
    pub fn check(
        &self,
        address: IpAddr,
        account: &str,
        known_browser: bool,
    ) -> Result<(), ApiError> {
        if let Some(limiter) = &self.per_address
            && let Err(not_until) = limiter.check_key(&address)
        {
            return Err(too_many(
                not_until.wait_time_from(DefaultClock::default().now()),
            ));
        }
        let key = normalize_email(account);
        self.guard
            .check(&key, address, known_browser, Instant::now())
            .map_err(|refused| too_many(refused.retry_after))?;
        let known = known_browser || self.guard.is_known_address(&key, address);
        if !known
            && let Some(limiter) = &self.per_account
            && let Err(not_until) = limiter.check_key(&key)
        {
            return Err(too_many(
                not_until.wait_time_from(DefaultClock::default().now()),
            ));
        }
        Ok(())
    }

    /// A wrong password (or unknown account): spends the budgets; a budget that ran out with
    /// it is counted, logged and audited.
    pub fn failed(&self, address: IpAddr, account: &str, audit: &AuditLog) {
        let key = normalize_email(account);
        for lockout in self.guard.failed(&key, address, Instant::now()) {
            let scope = lockout.scope.as_str();
            metrics::counter!("mcpgate_signin_lockouts_total", "scope" => scope).increment(1);
            tracing::warn!(scope, client.address = %address, "sign-in budget ran out");
            let mut event = AuditEvent::new("signin.lockout", "deny");
            event.target = Some(key.clone());
            event.detail = serde_json::json!({
                "scope": scope,
                "address": address.to_string(),
                "lasts_secs": lockout.lasts.as_secs(),
            })
            .to_string();
            audit.record(event);
        }
    }

    /// A successful sign-in: the address is known for the account from now on.
    pub fn succeeded(&self, address: IpAddr, account: &str) {
        self.guard.succeeded(&normalize_email(account), address);
    }

    /// Drops idle keys so the maps do not grow without bound (called periodically).
    pub fn shrink(&self) {
        if let Some(l) = &self.per_account {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_address {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

fn too_many(wait: Duration) -> ApiError {
    ApiError::TooManyRequests {
        retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(account: u32, address: u32, hops: usize) -> SignInLimits {
        SignInLimits::new(&RateLimitConfig {
            per_account_per_minute: account,
            per_address_per_minute: address,
            forwarded_hops: hops,
            ..RateLimitConfig::off()
        })
    }

    #[test]
    fn per_account_is_case_insensitive_and_says_when_to_retry() {
        let l = limits(2, 0, 0);
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!(l.check(ip, "a@x.com", false).is_ok());
        assert!(l.check(ip, "A@X.com ", false).is_ok());
        match l.check(ip, "a@x.com", false) {
            Err(ApiError::TooManyRequests { retry_after_secs }) => {
                assert!((1..=60).contains(&retry_after_secs), "{retry_after_secs}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            l.check(ip, "b@x.com", false).is_ok(),
            "other accounts unaffected"
        );
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let l = limits(0, 0, 0);
        for _ in 0..100 {
            assert!(l.check([10, 0, 0, 1].into(), "a@x.com", false).is_ok());
        }
    }

    #[test]
    fn forwarded_for_is_read_only_as_configured() {
        let peer: SocketAddr = "10.0.0.9:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.2.3.4, 5.6.7.8".parse().unwrap());
        assert_eq!(limits(1, 1, 0).client_address(peer, &headers), peer.ip());
        assert_eq!(
            limits(1, 1, 1).client_address(peer, &headers),
            "5.6.7.8".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            limits(1, 1, 2).client_address(peer, &headers),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        // Fewer hops than configured: a spoofing attempt or a misconfiguration; use the peer.
        assert_eq!(limits(1, 1, 3).client_address(peer, &headers), peer.ip());
    }
}
