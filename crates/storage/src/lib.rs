#![doc = include_str!("../README.md")]

mod error;
mod migrate;
mod pool;
mod schema;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod time;

pub use error::StorageError;
pub use pool::{Backend, PoolStatus, Store, StoreOptions};
pub use time::now_ms;
