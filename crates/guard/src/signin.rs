//! Sign-in failure budgets and back-off, shaped so an attacker cannot lock the owner out.
//!
//! A per-account lock that anyone can trip is a denial of service against that account: one
//! wrong password every few seconds keeps its owner out. So, as identity providers do:
//!
//! - failures are budgeted per (account, address): one address guessing one account runs out
//!   of tries, and only that pair waits;
//! - failures are budgeted per address across accounts: an address spraying passwords over
//!   many accounts runs out as well;
//! - failures per account (from anywhere) start a back-off that doubles with each further
//!   failure, but only for clients the account has not signed in from before: a browser that
//!   shows it signed in to this account (the caller's device cookie) or an address the account
//!   signed in from is not held back. A known browser also skips the pair budget.
//!
//! Failures count over a window from the first one; a success forgets its pair's failures.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use moka::sync::Cache;

/// The limits; a zero count turns that limit off.
#[derive(Debug, Clone)]
pub struct Budgets {
    /// Failures count over this window, from the first one.
    pub window: Duration,
    /// Failures per (account, address) in a window; then that pair waits out the window.
    pub per_account_address: u32,
    /// Failures per address over all accounts in a window (password spraying).
    pub per_address: u32,
    /// Failures per account, from any address, after which clients the account does not know
    /// back off.
    pub account_backoff_after: u32,
    /// The first back-off; each further failure doubles it, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long a successful sign-in makes an address known for its account.
    pub known_address_ttl: Duration,
    /// Most keys each map tracks (least recently used go first).
    pub max_tracked: u64,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(15 * 60),
            per_account_address: 5,
            per_address: 20,
            account_backoff_after: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(15 * 60),
            known_address_ttl: Duration::from_secs(30 * 86_400),
            max_tracked: 100_000,
        }
    }
}

/// Which budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One address guessing one account.
    AccountAddress,
    /// One address failing over many accounts.
    Address,
    /// One account failing from anywhere: unknown clients back off.
    Account,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountAddress => "account_address",
            Self::Address => "address",
            Self::Account => "account",
        }
    }
}

/// An attempt refused before any password work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub scope: Scope,
    pub retry_after: Duration,
}

/// A budget that ran out with this failure (reported once, when it happens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub scope: Scope,
    /// How long the lock-out lasts from now (if nothing else fails).
    pub lasts: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
    last: Instant,
}

impl Failures {
    /// `self` while its window is open at `now`.
    fn live(this: Option<Self>, now: Instant, window: Duration) -> Option<Self> {
        this.filter(|f| now.saturating_duration_since(f.first) < window)
    }

    fn bumped(this: Option<Self>, now: Instant, window: Duration) -> Self {
        match Self::live(this, now, window) {
            Some(f) => Self {
                count: f.count.saturating_add(1),
                first: f.first,
                last: now,
            },
            None => Self {
                count: 1,
                first: now,
                last: now,
            },
        }
    }

    fn window_left(&self, now: Instant, window: Duration) -> Duration {
        (self.first + window).saturating_duration_since(now)
    }
}

pub struct SignInGuard {
    budgets: Budgets,
    pairs: Cache<(String, IpAddr), Failures>,
    addresses: Cache<IpAddr, Failures>,
    accounts: Cache<String, Failures>,
    known: Cache<(String, IpAddr), ()>,
}

impl std::fmt::Debug for SignInGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInGuard")
            .field("budgets", &self.budgets)
            .finish_non_exhaustive()
    }
}

impl SignInGuard {
    pub fn new(budgets: Budgets) -> Self {
        fn failures<K>(b: &Budgets) -> Cache<K, Failures>
        where
            K: std::hash::Hash + Eq + Send + Sync + 'static,
        {
            Cache::builder()
                .max_capacity(b.max_tracked)
                .time_to_idle(b.window)
                .build()
        }
        Self {
            pairs: failures(&budgets),
            addresses: failures(&budgets),
            accounts: failures(&budgets),
            known: Cache::builder()
                .max_capacity(budgets.max_tracked)
                .time_to_live(budgets.known_address_ttl)
                .build(),
            budgets,
        }
    }

    /// Whether `account` signed in from `address` before (within `known_address_ttl`).
    pub fn is_known_address(&self, account: &str, address: IpAddr) -> bool {
        self.known.contains_key(&(account.to_owned(), address))
    }

    /// May this attempt go ahead? `known_browser`: the client showed it signed in to
    /// `account` before. `account` is the normalised account name.
    pub fn check(
        &self,
        account: &str,
        address: IpAddr,
        known_browser: bool,
        now: Instant,
    ) -> Result<(), Refusal> {
        let b = &self.budgets;
        let pair = (account.to_owned(), address);
        if !known_browser
            && b.per_account_address > 0
            && let Some(f) = Failures::live(self.pairs.get(&pair), now, b.window)
            && f.count >= b.per_account_address
        {
            return Err(Refusal {
                scope: Scope::AccountAddress,
                retry_after: f.window_left(now, b.window),
            });
        }
        if b.per_address > 0
            && let Some(f) = Failures::live(self.addresses.get(&address), now, b.window)
            && f.count >= b.per_address
        {
            return Err(Refusal {
                scope: Scope::Address,
                retry_after: f.window_left(now, b.window),
            });
        }
        let known = known_browser || self.known.contains_key(&pair);
        if !known
            && b.account_backoff_after > 0
            && let Some(f) = Failures::live(self.accounts.get(account), now, b.window)
            && f.count >= b.account_backoff_after
        {
            let until = f.last + self.backoff(f.count);
            if now < until {
                return Err(Refusal {
                    scope: Scope::Account,
                    retry_after: until - now,
                });
            }
        }
        Ok(())
    }

    /// The back-off after `count` failures of one account.
    fn backoff(&self, count: u32) -> Duration {
        let b = &self.budgets;
        let doublings = count.saturating_sub(b.account_backoff_after).min(30);
        b.backoff_base
            .saturating_mul(1u32 << doublings)
            .min(b.backoff_max)
    }

    /// Records a failed attempt; returns the budgets that ran out with it.
    pub fn failed(&self, account: &str, address: IpAddr, now: Instant) -> Vec<Lockout> {
        let b = &self.budgets;
        let window = b.window;
        let bump = |prev: Option<Failures>| Failures::bumped(prev, now, window);
        let pair = self
            .pairs
            .entry((account.to_owned(), address))
            .and_upsert_with(|e| bump(e.map(|e| *e.value())))
            .into_value();
        let by_address = self
            .addresses
            .entry(address)
            .and_upsert_with(|e| bump(e.map(|e| *e.value())))
            .into_value();
        let by_account = self
            .accounts
            .entry(account.to_owned())
            .and_upsert_with(|e| bump(e.map(|e| *e.value())))
            .into_value();
        let mut lockouts = Vec::new();
        if b.per_account_address > 0 && pair.count == b.per_account_address {
            lockouts.push(Lockout {
                scope: Scope::AccountAddress,
                lasts: pair.window_left(now, window),
            });
        }
        if b.per_address > 0 && by_address.count == b.per_address {
            lockouts.push(Lockout {
                scope: Scope::Address,
                lasts: by_address.window_left(now, window),
            });
        }
        if b.account_backoff_after > 0 && by_account.count == b.account_backoff_after {
            lockouts.push(Lockout {
                scope: Scope::Account,
                lasts: self.backoff(by_account.count),
            });
        }
        lockouts
    }

    /// Records a successful sign-in: the pair's failures are forgotten and the address is
    /// known for the account from now on.
    pub fn succeeded(&self, account: &str, address: IpAddr) {
        let pair = (account.to_owned(), address);
        self.pairs.invalidate(&pair);
        self.known.insert(pair, ());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "owner@example.com";

    fn ip(last: u8) -> IpAddr {
        [10, 0, 0, last].into()
    }

    fn guard() -> SignInGuard {
        SignInGuard::new(Budgets::default())
    }

    /// An attacker at `address` trying once every 6 s, as long as they are let in.
    fn trickle(g: &SignInGuard, address: IpAddr, start: Instant, tries: u32) -> u32 {
        let mut let_in = 0;
        for i in 0..tries {
            let now = start + Duration::from_secs(6 * u64::from(i));
            if g.check(OWNER, address, false, now).is_ok() {
                let_in += 1;
                g.failed(OWNER, address, now);
            }
        }
        let_in
    }

    #[test]
    fn a_trickling_attacker_runs_out_but_the_owner_gets_in() {
        let g = guard();
        let start = Instant::now();
        // The owner signed in from home earlier.
        g.succeeded(OWNER, ip(1));
        assert_eq!(
            trickle(&g, ip(66), start, 100),
            5,
            "five tries, then the pair waits"
        );
        let later = start + Duration::from_secs(600);
        // From home, or any browser that signed in before: let in.
        assert_eq!(g.check(OWNER, ip(1), false, later), Ok(()));
        assert_eq!(g.check(OWNER, ip(2), true, later), Ok(()));
        // An unknown client from elsewhere: within the back-off, held back.
        let first_retry = start + Duration::from_secs(24) + Duration::from_millis(500);
        assert_eq!(
            g.check(OWNER, ip(3), false, first_retry)
                .map_err(|r| r.scope),
            Err(Scope::Account)
        );
    }

    #[test]
    fn many_addresses_make_unknown_clients_back_off_longer() {
        let g = guard();
        let t0 = Instant::now();
        for i in 0..10u8 {
            g.failed(OWNER, ip(100 + i), t0);
        }
        // 10 failures: 1 s doubled five times.
        let r = g.check(OWNER, ip(200), false, t0).unwrap_err();
        assert_eq!(r.scope, Scope::Account);
        assert_eq!(r.retry_after, Duration::from_secs(32));
        assert!(
            g.check(OWNER, ip(200), false, t0 + Duration::from_secs(33))
                .is_ok()
        );
        assert!(g.check(OWNER, ip(200), true, t0).is_ok(), "a known browser");
    }

    #[test]
    fn spraying_many_accounts_from_one_address_runs_out() {
        let g = guard();
        let t0 = Instant::now();
        let mut let_in = 0;
        for i in 0..100 {
            let account = format!("user{i}@example.com");
            if g.check(&account, ip(9), false, t0).is_ok() {
                let_in += 1;
                g.failed(&account, ip(9), t0);
            }
        }
        assert_eq!(let_in, 20);
        let r = g.check("fresh@example.com", ip(9), false, t0).unwrap_err();
        assert_eq!(r.scope, Scope::Address);
        assert!(g.check("fresh@example.com", ip(10), false, t0).is_ok());
        // After the window, the address may try again.
        let later = t0 + Duration::from_secs(15 * 60 + 1);
        assert!(g.check("fresh@example.com", ip(9), false, later).is_ok());
    }

    #[test]
    fn each_lockout_is_reported_once() {
        let g = guard();
        let t0 = Instant::now();
        let scopes: Vec<Vec<Scope>> = (0..7)
            .map(|_| g.failed(OWNER, ip(5), t0).iter().map(|l| l.scope).collect())
            .collect();
        assert_eq!(
            scopes[4],
            vec![Scope::AccountAddress, Scope::Account],
            "{scopes:?}"
        );
        assert!(
            scopes
                .iter()
                .enumerate()
                .all(|(i, s)| i == 4 || s.is_empty())
        );
    }

    #[test]
    fn a_success_forgets_the_pair() {
        let g = guard();
        let t0 = Instant::now();
        for _ in 0..4 {
            g.failed(OWNER, ip(7), t0);
        }
        g.succeeded(OWNER, ip(7));
        g.failed(OWNER, ip(7), t0);
        assert!(g.check(OWNER, ip(7), false, t0).is_ok());
    }
}
