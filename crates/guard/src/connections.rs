//! Open connections per client address: a slow or idle client can hold only so many.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Counts open connections per address. An entry exists only while its address has a
/// connection open, so the map is bounded by the number of open sockets.
#[derive(Debug, Clone)]
pub struct ConnectionCap {
    max_per_address: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One accepted connection; dropping it gives the slot back.
#[derive(Debug)]
pub struct ConnectionPermit {
    address: IpAddr,
    open: Option<Arc<Mutex<HashMap<IpAddr, usize>>>>,
}

impl ConnectionCap {
    /// `max_per_address` 0: no cap.
    pub fn new(max_per_address: usize) -> Self {
        Self {
            max_per_address,
            open: Arc::default(),
        }
    }

    /// A permit for one more connection from `address`, or `None` when it already has the
    /// maximum open.
    pub fn try_acquire(&self, address: IpAddr) -> Option<ConnectionPermit> {
        if self.max_per_address == 0 {
            return Some(ConnectionPermit {
                address,
                open: None,
            });
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(address).or_insert(0);
        if *count >= self.max_per_address {
            return None;
        }
        *count += 1;
        Some(ConnectionPermit {
            address,
            open: Some(self.open.clone()),
        })
    }

    /// Connections open from `address` now.
    pub fn open_from(&self, address: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&address).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let Some(open) = &self.open else { return };
        let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_per_address_and_slots_come_back() {
        let cap = ConnectionCap::new(2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let p1 = cap.try_acquire(a).unwrap();
        let _p2 = cap.try_acquire(a).unwrap();
        assert!(cap.try_acquire(a).is_none(), "a third from a is refused");
        assert!(cap.try_acquire(b).is_some(), "b is not affected");
        drop(p1);
        assert_eq!(cap.open_from(a), 1);
        assert!(cap.try_acquire(a).is_some(), "a slot came back");
    }

    #[test]
    fn no_entry_outlives_its_connections() {
        let cap = ConnectionCap::new(1);
        for i in 0..1000u32 {
            let _permit = cap.try_acquire(IpAddr::from(i.to_be_bytes())).unwrap();
        }
        assert!(cap.open.lock().unwrap().is_empty());
    }

    #[test]
    fn zero_means_no_cap() {
        let cap = ConnectionCap::new(0);
        let a: IpAddr = [10, 0, 0, 1].into();
        let permits: Vec<_> = (0..100).map(|_| cap.try_acquire(a).unwrap()).collect();
        assert_eq!(permits.len(), 100);
    }
}
