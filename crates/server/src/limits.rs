//! Sign-in rate limits: per account and per client address (governor's keyed GCRA limiters,
//! in memory per replica). A refused attempt costs no hash and no database read.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimitConfig;
use crate::error::ApiError;

pub struct SignInLimits {
    per_account: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    forwarded_hops: usize,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

impl SignInLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            per_account: limiter(config.per_account_per_minute),
            per_address: limiter(config.per_address_per_minute),
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
    pub fn check(&self, address: IpAddr, account: &str) -> Result<(), ApiError> {
        if let Some(limiter) = &self.per_address
            && let Err(not_until) = limiter.check_key(&address)
        {
            return Err(too_many(
                not_until.wait_time_from(DefaultClock::default().now()),
            ));
        }
        if let Some(limiter) = &self.per_account {
            let key = mcpgate_storage::normalize_email(account);
            if let Err(not_until) = limiter.check_key(&key) {
                return Err(too_many(
                    not_until.wait_time_from(DefaultClock::default().now()),
                ));
            }
        }
        Ok(())
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
        retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
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
        })
    }

    #[test]
    fn per_account_is_case_insensitive_and_says_when_to_retry() {
        let l = limits(2, 0, 0);
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!(l.check(ip, "a@x.com").is_ok());
        assert!(l.check(ip, "A@X.com ").is_ok());
        match l.check(ip, "a@x.com") {
            Err(ApiError::TooManyRequests { retry_after_secs }) => {
                assert!((1..=60).contains(&retry_after_secs), "{retry_after_secs}");
            }
            other => panic!("{other:?}"),
        }
        assert!(l.check(ip, "b@x.com").is_ok(), "other accounts unaffected");
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let l = limits(0, 0, 0);
        for _ in 0..100 {
            assert!(l.check([10, 0, 0, 1].into(), "a@x.com").is_ok());
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
