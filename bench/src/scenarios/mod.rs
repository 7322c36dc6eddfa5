//! One module per `cargo xtask bench <scenario>`.
