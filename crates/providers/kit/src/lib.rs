#![doc = include_str!("../README.md")]

mod options;
mod pending;

pub use options::{check_common, parse_options, parse_url};
pub use pending::{PendingProvider, build_pending};
