//! One module per `cargo xtask bench <scenario>`.

pub mod proxy;
